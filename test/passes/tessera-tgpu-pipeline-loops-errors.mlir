// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops -verify-diagnostics
// A schedule tessera-tgpu-pipeline-loops cannot rotate a loop by is reported at the loop
// or at the copy (which carries its load's location).

// A loop claiming the previous loop's copies, which steps differently.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @not_a_continuation(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = scf.for %t = %c0 to %row step %c64 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    // expected-error @below {{tgpu.continues_prefetch: the loop before it leaves no copies of these tiles in flight}}
    %b = scf.for %t = %row to %n step %c128 iter_args(%x = %a) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.continues_prefetch, tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    tile.store %b, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// Copies two iterations ahead for the first product alone.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @first_product_two_ahead(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 3, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 3 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @below {{tgpu.prefetch_distance = 2 needs a "cp_async" loop and 3 buffer stages}}
    %a = scf.for %t = %c0 to %n step %c64 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.buffer_stages = 3 : i64, tgpu.prefetch_distance = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 2 : i64}
    tile.store %a, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A cp.async loop with nothing prefetched.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @nothing_prefetched(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    // expected-error @below {{tgpu.pipeline = "cp_async" does not fit this loop: "none" for a loop with no prefetched copy}}
    %a = scf.for %t = %c0 to %n step %c64 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    tile.store %a, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A prefetched tile in a buffer of one stage.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @one_stage(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = scf.for %t = %c0 to %n step %c64 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      // expected-error @below {{a prefetched tile needs a multi-buffered swizzled buffer; got '!tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>'}}
      %kt = tile.load %k[%t, %c0] {tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    tile.store %a, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// Two prefetched tiles of one buffer in one loop (rows t and t + 64 of K).
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @one_buffer_twice(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = scf.for %t = %c0 to %n step %c128 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %k0 = tile.load %k[%t, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %t1 = arith.addi %t, %c64 : index
      // expected-error @below {{two prefetched copies into one buffer in one loop}}
      %k1 = tile.load %k[%t1, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %k0, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %e = tile.dot %qt, %k1, %d : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %e : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    tile.store %a, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A prefetched tile whose row comes from the carried state: not known an iteration early.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @carried_row(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a:2 = scf.for %t = %c0 to %n step %c64 iter_args(%x = %zero, %r = %c0) -> (tensor<64x64xf32, #acc>, index) {
      // expected-error @below {{tgpu.prefetch_distance on a copy that cannot be prefetched}}
      %kt = tile.load %k[%r, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %r1 = arith.addi %r, %c64 : index
      scf.yield %d, %r1 : tensor<64x64xf32, #acc>, index
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    tile.store %a#0, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}
