// RUN: tessera-opt %s -split-input-file --tessera-tgpu-stage-operands -verify-diagnostics
// A staged grid's loads are checked: what the lowering cannot follow is reported at the
// load.

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @right_operand_unstaged(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    // expected-error @+1 {{a right operand every warp reads whole (#tgpu.shared_operand) needs a tgpu.staged buffer}}
    %wt = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @wgmma_left_unstaged(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @+1 {{a wgmma left operand is read from shared memory: it needs a tgpu.staged buffer}}
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @wgmma_padded(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    // expected-error @+1 {{a 'bf16' operand of wgmma products is staged as #tgpu.shared<swizzle_128b>, not #tgpu.shared<padded_rows, pad = 16>}}
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @mma_sync_swizzled(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    // expected-error @+1 {{a 'bf16' operand of mma.sync products is staged as #tgpu.shared<padded_rows, pad = 16>, not #tgpu.shared<swizzle_128b>}}
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#row = #tgpu.slice<dim = 1, parent = #acc>
func.func @not_an_operand(%m: memref<64xf32>, %o: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    // expected-error @+1 {{only product operands (#tgpu.dot_operand<a>, #tgpu.shared_operand) are staged; this tile is read in registers}}
    %mt = tile.load %m[%c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64xf32> -> tensor<64xf32, #row>
    tile.store %mt, %o[%c0] : tensor<64xf32, #row>, memref<64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @left_read_in_registers(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @+1 {{a left operand staged for mma.sync products is read by products only (as their left operand)}}
    %at = tile.load %a[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    %a2 = arith.addf %at, %at : tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %a2, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @not_a_layout(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    // expected-error @+1 {{tgpu.staged is a #tgpu.shared layout, got "padded"}}
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = "padded"} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

func.func @no_layouts(%m: memref<64xf32>, %o: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{the tile program has no GPU layouts: run tessera-tile-to-tgpu before tessera-tgpu-stage-operands}}
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %mt = tile.load %m[%c0] : memref<64xf32> -> tensor<64xf32>
    tile.store %mt, %o[%c0] : tensor<64xf32>, memref<64xf32>
  }
  return
}

// -----

// A grid marked for TMA copies must have tiles TMA can copy (32 columns are not a whole
// 64-column box).
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @tensor_copies_refused(%a: memref<?x64xbf16>, %w: memref<?x64xbf16>, %o: memref<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.tensor_copies} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @+1 {{a tgpu.tensor_copies grid copies this tile by TMA, which it cannot: its tile is not whole 64-column blocks of 8 to 256 rows in eights}}
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x32xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<?x64xbf16> -> tensor<32x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x32xbf16, #lhs>, tensor<32x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  return
}

// -----

// The kernels of a function share its descriptors: one grid copies by TMA.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @two_tensor_copy_grids(%a: memref<?x64xbf16>, %w: memref<?x64xbf16>, %o: memref<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.tensor_copies} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  // expected-error @+1 {{one grid of a function copies by TMA (tgpu.tensor_copies): its kernels share the function's descriptors}}
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.tensor_copies} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#row = #tgpu.slice<dim = 1, parent = #acc>
func.func @tensor_copies_without_swizzled_tiles(%m: memref<64xf32>, %o: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{tgpu.tensor_copies on a grid with no operand tile staged swizzled (wgmma, 16-bit)}}
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.tensor_copies} {
    %mt = tile.load %m[%c0] : memref<64xf32> -> tensor<64xf32, #row>
    tile.store %mt, %o[%c0] : tensor<64xf32, #row>, memref<64xf32>
  }
  return
}
