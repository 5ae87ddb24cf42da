// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads -verify-diagnostics
// A load tessera-tgpu-copy-staged-loads cannot make a cp.async copy into its buffer is
// reported at the load.

// Loads of one buffer (source, tile type, column) with different stages.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @stages_differ(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %k0 = tile.load %k[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
    // expected-error @below {{loads sharing one buffer differ in tgpu.buffer_stages: 2 here, 1 at the first}}
    %k1 = tile.load %k[%c0, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %k0, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    %t = tile.dot %qt, %k1, %s : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %t, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A copy fills rows past the source with zeros: a staged tile padded otherwise.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @padded(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x64xbf16, #lhs>
    // expected-error @below {{a staged tile is padded with zeros (its copy fills what lies outside the source with them), not 1.000000e+00 : bf16}}
    %kt = tile.load %k[%row, %c0] {padding = 1.0 : bf16} : !in -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A hand-written offset on a load that shares an earlier load's buffer: only the first
// requests it.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @offset_on_a_sharer(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x64xbf16, #lhs>
    %k0 = tile.load %k[%row, %c0] : !in -> tensor<64x64xbf16, #rhs>
    // expected-error @below {{tgpu.shared_offset on a load whose buffer an earlier load requests (loads sharing a buffer are copies into it)}}
    %k1 = tile.load %k[%c0, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %k0, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    %t = tile.dot %qt, %k1, %s : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %t, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}
