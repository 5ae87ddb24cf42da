// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages | FileCheck %s
// Assigning twice gives the same schedule (a scheduled loop keeps its attributes).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-assign-stages | FileCheck %s
// tessera-tile-to-gpu follows the schedule: the override adds a copy group (the third
// loop starts its own prologue instead of taking over the second's copies).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tile-to-gpu | FileCheck %s --check-prefix=LOWERED

// The D = 128 causal softmax's shape on sm_90a (num_stages = 2): masked, unmasked and
// masked loops over the same key / value tiles. Only the first product's operand (K) is
// double-buffered, which leaves shared memory for 3 blocks an SM; its copies run one
// iteration ahead and across the loops: the second and third loops take over the copies
// the loop before them left in flight.
// CHECK-LABEL: func.func @causal_d128
// LOWERED-LABEL: gpu.func @causal_d128_kernel0
// LOWERED-COUNT-8: tgpu.async_commit_group
// LOWERED-NOT: tgpu.async_commit_group
// CHECK: tile.grid{{.*}}tgpu.blocks_per_sm = 3 : i64, tgpu.num_stages = 2 : i64
// CHECK: %[[L1:.*]] = scf.for
// CHECK: %[[K1:.*]] = tile.load %{{.*}} {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK-NEXT: %[[V1:.*]] = tile.load %{{[a-z0-9_]+}}[
// CHECK: tile.trans %[[K1]]
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[L1]])
// CHECK: tile.load %{{.*}} {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK: } {tgpu.continues_prefetch, tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64, tile.continues_previous}
// CHECK: scf.for
// CHECK: } {tgpu.continues_prefetch, tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64, tile.continues_previous}

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @causal_d128(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // The masked / unmasked / masked split points.
  %c2 = arith.constant 2 : index
  %a = arith.divui %tiles, %c2 : index
  %b = arith.subi %tiles, %c1 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %a step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    %acc2 = scf.for %t = %a to %b step %c1 iter_args(%x = %acc1) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    } {tile.continues_previous}
    %acc3 = scf.for %t = %b to %tiles step %c1 iter_args(%x = %acc2) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    } {tile.continues_previous}
    tile.store %acc3, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// The same loops without tile.continues_previous: a shape that merely matches is not a
// promise, so each loop starts its own copies (no tgpu.continues_prefetch): 10 copy
// groups instead of 8.
// CHECK-LABEL: func.func @causal_d128_unpromised
// LOWERED-LABEL: gpu.func @causal_d128_unpromised_kernel0
// LOWERED-COUNT-10: tgpu.async_commit_group
// LOWERED-NOT: tgpu.async_commit_group
// CHECK: scf.for
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}
// CHECK-NOT: tgpu.continues_prefetch
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}
// CHECK-NOT: tgpu.continues_prefetch
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @causal_d128_unpromised(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // The masked / unmasked / masked split points.
  %c2 = arith.constant 2 : index
  %a = arith.divui %tiles, %c2 : index
  %b = arith.subi %tiles, %c1 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %a step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    %acc2 = scf.for %t = %a to %b step %c1 iter_args(%x = %acc1) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    %acc3 = scf.for %t = %b to %tiles step %c1 iter_args(%x = %acc2) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc3, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// A user's override: one stage (no prefetching) for the unmasked loop. The schedule
// changes around it: the third loop has no copies in flight to take over.
// CHECK-LABEL: func.func @one_stage_override
// LOWERED-LABEL: gpu.func @one_stage_override_kernel0
// LOWERED-COUNT-9: tgpu.async_commit_group
// LOWERED-NOT: tgpu.async_commit_group
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}
// CHECK: %[[MID:.*]] = scf.for
// CHECK-NOT: tgpu.prefetch_distance = 1
// CHECK: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64}
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[MID]])
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @one_stage_override(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // The masked / unmasked / masked split points.
  %c2 = arith.constant 2 : index
  %a = arith.divui %tiles, %c2 : index
  %b = arith.subi %tiles, %c1 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %a step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    %acc2 = scf.for %t = %a to %b step %c1 iter_args(%x = %acc1) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    } {tgpu.prefetch_distance = 0}
    %acc3 = scf.for %t = %b to %tiles step %c1 iter_args(%x = %acc2) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc3, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// mma.sync (sm_80): every staged tile of the loop is prefetched into registers one
// iteration ahead; no stage plan.
// CHECK-LABEL: func.func @register_prefetch
// CHECK: tile.grid
// CHECK-SAME: tgpu.num_stages = 2 : i64
// CHECK-NOT: tgpu.blocks_per_sm
// CHECK: %[[K:.*]] = tile.load %{{.*}} {tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<padded_rows, pad = 16>}
// CHECK-NEXT: %[[V:.*]] = tile.load %{{.*}} {tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<padded_rows, pad = 16>}
// CHECK: tile.trans %[[K]]
// CHECK: } {tgpu.pipeline = "registers", tgpu.prefetch_distance = 1 : i64}

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @register_prefetch(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // The masked / unmasked / masked split points.
  %c2 = arith.constant 2 : index
  %a = arith.divui %tiles, %c2 : index
  %b = arith.subi %tiles, %c1 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// num_stages = 1: nothing is prefetched.
// CHECK-LABEL: func.func @one_stage
// CHECK-NOT: tgpu.prefetch_distance = 1
// CHECK: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64}

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @one_stage(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // The masked / unmasked / masked split points.
  %c2 = arith.constant 2 : index
  %a = arith.divui %tiles, %c2 : index
  %b = arith.subi %tiles, %c1 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// A block list written by an earlier grid is an input by the time the second grid runs:
// the second grid's loop, whose reads the program promises in bounds at any induction
// value (tile.speculable: the list has an entry past the last tile), reads the list one
// iteration early and prefetches K and V.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @list_from_earlier_grid
// CHECK: tile.grid
// CHECK: memref.store
// CHECK: tile.grid
// CHECK: %[[ENTRY:.*]] = memref.load
// CHECK: %[[INDEX:.*]] = arith.index_cast %[[ENTRY]]
// CHECK: tile.load %{{.*}} {tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<padded_rows, pad = 16>}
// CHECK: tile.load %{{.*}} {tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<padded_rows, pad = 16>}
// CHECK: } {tgpu.pipeline = "registers", tgpu.prefetch_distance = 1 : i64, tile.speculable}
func.func @list_from_earlier_grid(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant 0 : i32
    memref.store %zero, %list[%c0] : memref<?xi32>
  }
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %entry = memref.load %list[%t] : memref<?xi32>
      %block = arith.index_cast %entry : i32 to index
      %n0 = arith.muli %block, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    } {tile.speculable}
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// Without tile.speculable the read is not issued early: nothing in the loop is prefetched.
// CHECK-LABEL: func.func @list_unpromised
// CHECK: tile.grid
// CHECK: tile.grid
// CHECK: memref.load
// CHECK-NOT: tgpu.prefetch_distance = 1
// CHECK: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64}
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @list_unpromised(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant 0 : i32
    memref.store %zero, %list[%c0] : memref<?xi32>
  }
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %entry = memref.load %list[%t] : memref<?xi32>
      %block = arith.index_cast %entry : i32 to index
      %n0 = arith.muli %block, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}
