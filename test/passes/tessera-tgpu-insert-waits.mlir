// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-insert-waits | FileCheck %s
// A second run changes nothing (a grid with its waits placed is marked).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-insert-waits --tessera-tgpu-insert-waits | FileCheck %s
// Barrier insertion finds nothing to add: the iterations' barriers and the waits' own
// order every copy the IR shows against its readers (what part 3 builds on).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-insert-waits > %t.waits
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-insert-waits --tessera-tgpu-insert-barriers > %t.barriers
// RUN: diff %t.waits %t.barriers
// Persistent grids: each work item ends with its copies waited for and the item's
// barrier, and the lowering follows that too.
// RUN: tessera-opt %s -split-input-file --tessera-persistent-grid --tessera-tgpu-stage-operands --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-insert-waits | FileCheck %s --check-prefix=PERSISTENT
// RUN: tessera-opt %s -split-input-file --tessera-persistent-grid --tessera-tgpu-stage-operands --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-allocate-shared --tessera-tile-to-gpu > %t.own
// RUN: tessera-opt %s -split-input-file --tessera-persistent-grid --tessera-tgpu-stage-operands --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-allocate-shared --tessera-tgpu-insert-waits --tessera-tile-to-gpu > %t.followed
// RUN: diff %t.own %t.followed
// The lowering follows the waits: the same cp.async waits, none of its own.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-insert-waits --tessera-tile-to-gpu | FileCheck %s --check-prefix=LOWERED

// The first product's operands double-buffered (D = 128): each iteration's Q·Kᵀ waits
// for K (V and the next iteration's K, the two newer copies, may still be landing), P·V
// for V (the next K may), each wait with its proxy fence (wgmma reads through the async
// proxy) and the barrier that makes every thread's copies visible, before the reads of
// the buffers; the output's conversion after the loop waits for the copy in flight past
// the last iteration, with the barrier the lowering owes the copies there.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xbf16, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @first_product
// CHECK: tile.grid{{.*}}tgpu.waits_placed
// CHECK: scf.for
// CHECK-NEXT: tgpu.barrier
// CHECK: tgpu.async_copy %arg2
// CHECK: tgpu.async_copy %arg1
// CHECK: %{{.*}} = tgpu.async_wait pending = 2
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.trans
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.dot
// CHECK: %{{.*}} = tgpu.async_wait pending = 1
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.dot
// CHECK: scf.yield
// CHECK-NEXT: } {tgpu.pipeline = "cp_async_first_product", tgpu.pipelined
// CHECK-NEXT: %{{.*}} = tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: arith.truncf
// CHECK: tile.store
// PERSISTENT-LABEL: func.func @first_product
// PERSISTENT: scf.for %{{.*}} : i32 {
// PERSISTENT: scf.for
// PERSISTENT: tgpu.async_wait pending = 2
// PERSISTENT: tgpu.async_wait pending = 1
// PERSISTENT: } {tgpu.pipeline = "cp_async_first_product", tgpu.pipelined
// PERSISTENT-NEXT: tgpu.async_wait pending = 0
// PERSISTENT: tile.store
// PERSISTENT-NEXT: tgpu.async_wait pending = 0
// PERSISTENT-NEXT: tgpu.fence_async_shared
// PERSISTENT-NEXT: tgpu.barrier
// PERSISTENT-NEXT: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64, tgpu.work_items}
// LOWERED-LABEL: gpu.func @first_product_kernel
// LOWERED: scf.for
// LOWERED: tgpu.async_wait pending = 2
// LOWERED-NOT: tgpu.async_wait
// LOWERED: tgpu.async_wait pending = 1
// LOWERED-NOT: tgpu.async_wait
// LOWERED: scf.yield
// LOWERED: tgpu.async_wait pending = 0
// LOWERED-NOT: tgpu.async_wait
// LOWERED: gpu.return
func.func @first_product(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
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
    %ob = arith.truncf %acc1 : tensor<64x128xf32, #acc> to tensor<64x128xbf16, #acc>
    tile.store %ob, %o[%row, %c0] : tensor<64x128xbf16, #acc>, !out
  }
  return
}

// -----

// Two loops prefetching different tiles: the second loop's prologue waits for the copy
// the first left in flight (past its last iteration) before its first copy, and the
// barrier that follows it: every thread is done with the bytes it overwrites.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @two_loops
// CHECK: scf.for
// CHECK-NEXT: tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK: } {tgpu.pipeline = "cp_async", tgpu.pipelined
// CHECK-NEXT: %[[V:.*]] = tgpu.local_alloc
// CHECK-NEXT: arith.constant 0 : index
// CHECK-NEXT: %{{.*}} = tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.async_copy %arg2[%c0, %c0] into %[[V]][%c0
// CHECK-NEXT: scf.for
// CHECK-NEXT: tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
func.func @two_loops(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x64xbf16, #lhs>
    %acc0 = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc1 = scf.for %t = %c0 to %n step %c64 iter_args(%x = %acc0) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] : !in -> tensor<64x64xbf16, #rhs>
      %s = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %s : tensor<64x64xf32, #acc>
    }
    %acc2 = scf.for %t = %c0 to %n step %c64 iter_args(%x = %acc1) -> (tensor<64x64xf32, #acc>) {
      %vt = tile.load %v[%t, %c0] : !in -> tensor<64x64xbf16, #rhs>
      %s = tile.dot %qt, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %s : tensor<64x64xf32, #acc>
    }
    tile.store %acc2, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}


// -----

// Copies before a branch: each branch waits for what its product reads (the then
// branch's K, not the V copied after it), and ends with no copy in flight.

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @branch
// CHECK: scf.if
// CHECK: tgpu.async_wait pending = 1
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.dot
// CHECK-NEXT: tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: scf.yield
// CHECK: } else {
// CHECK: tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.dot
// CHECK-NEXT: scf.yield
func.func @branch(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x64xbf16, #lhs>
    %kt = tile.load %k[%row, %c0] : !in -> tensor<64x64xbf16, #rhs>
    %vt = tile.load %v[%row, %c0] : !in -> tensor<64x64xbf16, #rhs>
    %acc0 = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %flag = arith.cmpi ult, %row, %c64 : index
    %r = scf.if %flag -> (tensor<64x64xf32, #acc>) {
      %s = tile.dot %qt, %kt, %acc0 : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %s : tensor<64x64xf32, #acc>
    } else {
      %s = tile.dot %qt, %vt, %acc0 : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %s : tensor<64x64xf32, #acc>
    }
    tile.store %r, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}
