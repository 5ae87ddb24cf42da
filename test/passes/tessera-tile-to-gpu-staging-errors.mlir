// RUN: tessera-opt %s -split-input-file --tessera-tile-to-gpu -verify-diagnostics
// tessera-tile-to-gpu follows the staging tessera-tgpu-stage-operands wrote (computed
// operands' buffers, the grid TMA copies: tgpu.tensor_copies) and checks it.

// A warp-specialised grid the user unmarked: its producer has no TMA copies to issue.
func.func @without_tma(%arg0: memref<?x128xbf16, strided<[?, ?], offset: ?>>, %arg1: memref<?x128xbf16, strided<[?, ?], offset: ?>>, %arg2: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %dim = memref.dim %arg0, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %0 = arith.ceildivsi %dim, %c64 : index
  tile.grid[%0] config = <block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    // expected-error @below {{a warp-specialised kernel's producer copies every staged tile by TMA: its grid is marked tgpu.tensor_copies (tessera-tgpu-stage-operands{tma=true}) and stages no tile in a padded buffer}}
    tgpu.warp_specialize num_warps = [4] registers = [40] default_registers = 216 default {
      %1 = tile.program_id 0 : index
      %2 = arith.muli %1, %c64 : index
      %3 = tile.load %arg0[%2, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>
      %4 = tile.load %arg1[%2, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, transposed = true>>
      %5 = tile.trans %4 : tensor<64x128xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, transposed = true>> -> tensor<128x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>>
      %cst = arith.constant dense<0.000000e+00> : tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
      %6 = tile.dot %3, %5, %cst : tensor<64x128xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>, tensor<128x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>> -> tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
      tile.store %6, %arg2[%2, %c0] : tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, memref<?x64xf32, strided<[?, ?], offset: ?>>
      tgpu.warp_yield
    } partitions {
      %1 = tile.program_id 0 : index
      %2 = arith.muli %1, %c64 : index
      %3 = tile.load %arg0[%2, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>
      %4 = tile.load %arg1[%2, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, transposed = true>>
      tgpu.warp_return
    }
  }
  return
}


// -----

// A marked grid with a tile TMA cannot copy (32 columns: not a whole 64-column box).
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @narrow(%a: memref<?x64xbf16, strided<[?, 1], offset: ?>>, %w: memref<?x64xbf16, strided<[?, 1], offset: ?>>,
                  %o: memref<?x64xf32, strided<[?, 1], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.tensor_copies} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @+1 {{a tgpu.tensor_copies grid copies this tile by TMA, which it cannot: its tile is not whole 64-column blocks of 8 to 256 rows in eights}}
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16, strided<[?, 1], offset: ?>> -> tensor<64x32xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<?x64xbf16, strided<[?, 1], offset: ?>> -> tensor<32x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x32xbf16, #lhs>, tensor<32x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32, strided<[?, 1], offset: ?>>
  }
  return
}

// -----

// A staged grid whose product reads a computed right operand from registers (its
// buffer taken out by hand).
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @operand_in_registers(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %s32 = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    %s = arith.truncf %s32 : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
    // expected-error @+1 {{this product's right operand is in registers and no shared buffer holds it}}
    %r = tile.dot %at, %s, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #acc> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

// A computed operand of mma.sync products in a swizzled buffer (wgmma's layout).
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @operand_swizzled(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %s32 = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    %s = arith.truncf %s32 : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
    // expected-error @+1 {{a computed operand of mma.sync products is staged untransposed in padded rows; got '!tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>'}}
    %sb = tgpu.local_alloc %s : (tensor<64x64xbf16, #acc>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>
    %sr = tgpu.local_load %sb : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %sr, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

// A copy into an explicit stage with no software-pipelined loop to belong to (its
// stages are a pipelined loop's: tessera-tgpu-pipeline-loops).
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @copy_with_stage(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.loads_copied} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %kbuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    // expected-error @below {{a copy into an explicit stage belongs to a software-pipelined loop of a wgmma kernel (tessera-tgpu-pipeline-loops), in its body or before it, into swizzled rows}}
    %tk = tgpu.async_copy %k[%row, %c0] into %kbuf[%c0] : !in -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    %kt = tgpu.local_load %kbuf : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable> -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A read of a copied buffer before any copy has filled it.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @read_before_copy(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.loads_copied} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %kbuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    // expected-error @below {{reads a buffer that neither a value nor a copy has filled here}}
    %kt = tgpu.local_load %kbuf : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable> -> tensor<64x64xbf16, #rhs>
    %tk = tgpu.async_copy %k[%row, %c0] into %kbuf : !in -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A read of a stage of a buffer no software-pipelined loop's copy fills.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @stage_read_without_copy(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged, tgpu.loads_copied} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %kbuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    // expected-error @below {{reads a stage of a buffer no copy of a software-pipelined loop fills (swizzled rows of a wgmma kernel)}}
    %kt = tgpu.local_load %kbuf[%c0] : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable> -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A wait naming the copies it waits for: the lowering counts groups (one per copy).
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @wait_naming_copies(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.loads_copied} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %kbuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    %tk = tgpu.async_copy %k[%row, %c0] into %kbuf : !in -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    // expected-error @below {{the GPU lowering counts each copy as a group: give `pending` alone}}
    %w = tgpu.async_wait %tk pending = 0
    %kt = tgpu.local_load %kbuf : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable> -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A grid whose waits are ops (tessera-tgpu-insert-waits) with none before the product
// that reads the copy: the lowering makes no wait of its own there.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @wait_missing(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.loads_copied, tgpu.waits_placed} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qbuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    %tq = tgpu.async_copy %q[%row, %c0] into %qbuf : !in -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    %kbuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    %tk = tgpu.async_copy %k[%row, %c0] into %kbuf : !in -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    // A wait for Q alone (K's copy, the newer, may stay in flight) is not enough.
    %w = tgpu.async_wait pending = 1
    tgpu.barrier
    %qt = tgpu.local_load %qbuf : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable> -> tensor<64x64xbf16, #lhs>
    %kt = tgpu.local_load %kbuf : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable> -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @below {{a cp.async copy may still be in flight here, where the lowering needs all but 0 of the 1 copy groups landed: no tgpu.async_wait comes before it in this tgpu.waits_placed grid (tessera-tgpu-insert-waits)}}
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}
