// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops | FileCheck %s
// Rotating twice changes nothing (a rotated loop is marked).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tgpu-pipeline-loops | FileCheck %s
// tessera-tile-to-gpu lowers a grid the pass did not see the same way (outlining rotates
// its loops first): one kernel either way.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads --tessera-tile-to-gpu > %t.unrotated
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads --tessera-tgpu-pipeline-loops --tessera-tile-to-gpu > %t.rotated
// RUN: diff %t.unrotated %t.rotated
// RUN: FileCheck %s --check-prefix=LOWERED < %t.rotated

// The first product's operands only (the schedule's choice at D = 128): K's copy for
// the first iteration goes before the loop into stage 0; each iteration starts with a
// barrier (everyone is done with the other stage), copies V, then the next iteration's
// K into the other stage, and reads K from its own stage, which it hands on to the next.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xbf16, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @first_product
// CHECK: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
// CHECK-NEXT: %[[V:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK-NEXT: %[[S0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[N0:.*]] = arith.muli %c0, %c64
// CHECK-NEXT: tgpu.async_copy %arg1[%[[N0]], %c0] into %[[K]][%[[S0]]] :
// CHECK-NEXT: %{{.*}} = scf.for %[[T:.*]] = %c0 to %{{.*}} step %c1 iter_args(%{{.*}} = %{{.*}}, %[[STAGE:.*]] = %[[S0]]) -> ({{.*}}, index) {
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT: %[[OTHER:.*]] = arith.subi %[[ONE]], %[[STAGE]]
// CHECK-NEXT: %[[NEXT:.*]] = arith.addi %[[T]], %c1
// CHECK-NEXT: %[[N:.*]] = arith.muli %[[T]], %c64
// CHECK-NEXT: tgpu.async_copy %arg2[%[[N]], %c0] into %[[V]] :
// CHECK-NEXT: %[[NN:.*]] = arith.muli %[[NEXT]], %c64
// CHECK-NEXT: tgpu.async_copy %arg1[%[[NN]], %c0] into %[[K]][%[[OTHER]]] {tgpu.prefetch_distance = 1 : i64}
// CHECK-NEXT: tgpu.local_load %[[K]][%[[STAGE]]] :
// CHECK: tgpu.local_load %[[V]] :
// CHECK: scf.yield %{{.*}}, %[[OTHER]] : {{.*}}, index
// CHECK-NEXT: } {tgpu.pipeline = "cp_async_first_product", tgpu.pipelined, tgpu.prefetch_distance = 1 : i64}
// LOWERED-LABEL: gpu.func @first_product_kernel
// LOWERED-COUNT-32: nvgpu.device_async_copy
// LOWERED-NOT: nvgpu.device_async_copy
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

// Every tile two iterations ahead (num_stages = 3, a user's schedule): the prologue
// copies iterations 0 and 1 into stages 0 and 1; each iteration waits for its own tile
// (one newer copy may stay in flight), then copies iteration t + 2 into the stage the
// last one read (stage - 1, wrapping) and hands stage + 1 on.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @two_ahead
// CHECK: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 3, mutable>
// CHECK-NEXT: %[[S0:.*]] = arith.constant 0 : index
// CHECK-NEXT: tgpu.async_copy %arg1[%c0, %c0] into %[[K]][%[[S0]]] :
// CHECK-NEXT: %[[S1:.*]] = arith.constant 1 : index
// CHECK-NEXT: %[[M:.*]] = arith.muli %[[S1]], %c64
// CHECK-NEXT: %[[IV1:.*]] = arith.addi %c0, %[[M]]
// CHECK-NEXT: tgpu.async_copy %arg1[%[[IV1]], %c0] into %[[K]][%[[S1]]] :
// CHECK-NEXT: scf.for %[[T:.*]] = %c0 to %{{.*}} step %c64 iter_args(%{{.*}} = %{{.*}}, %[[STAGE:.*]] = %[[S0]])
// CHECK-NEXT: tgpu.async_wait pending = 1
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT: %[[LAST:.*]] = arith.constant 2 : index
// CHECK-NEXT: %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[ATZERO:.*]] = arith.cmpi eq, %[[STAGE]], %[[ZERO]]
// CHECK-NEXT: %[[ATLAST:.*]] = arith.cmpi eq, %[[STAGE]], %[[LAST]]
// CHECK-NEXT: %[[DOWN:.*]] = arith.subi %[[STAGE]], %[[ONE]]
// CHECK-NEXT: %[[FILL:.*]] = arith.select %[[ATZERO]], %[[LAST]], %[[DOWN]]
// CHECK-NEXT: %[[UP:.*]] = arith.addi %[[STAGE]], %[[ONE]]
// CHECK-NEXT: %[[FOLLOWING:.*]] = arith.select %[[ATLAST]], %[[ZERO]], %[[UP]]
// CHECK-NEXT: %[[D:.*]] = arith.muli %[[LAST]], %c64
// CHECK-NEXT: %[[TARGET:.*]] = arith.addi %[[T]], %[[D]]
// CHECK-NEXT: tgpu.async_copy %arg1[%[[TARGET]], %c0] into %[[K]][%[[FILL]]] {tgpu.prefetch_distance = 2 : i64}
// CHECK: tgpu.local_load %[[K]][%[[STAGE]]]
// CHECK: scf.yield %{{.*}}, %[[FOLLOWING]]
// CHECK-NEXT: } {tgpu.pipeline = "cp_async", tgpu.pipelined, tgpu.prefetch_distance = 2 : i64}
// LOWERED-LABEL: gpu.func @two_ahead_kernel
// LOWERED: nvgpu.device_async_copy
func.func @two_ahead(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 3, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 3 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = scf.for %t = %c0 to %n step %c64 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.buffer_stages = 3 : i64, tgpu.prefetch_distance = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 2 : i64}
    tile.store %a, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// A loop that continues the previous one's copies (a masked / unmasked split) starts
// from the stage that loop hands on, with no prologue of its own.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @continued
// CHECK: tgpu.async_copy %arg1{{.*}} into %[[K:.*]][%[[S0:.*]]] :
// CHECK-NEXT: %[[FIRST:.*]]:2 = scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %[[S0]])
// CHECK: tgpu.async_copy %arg1{{.*}} into %[[K]][%{{.*}}] {tgpu.prefetch_distance = 1 : i64}
// CHECK: } {tgpu.pipeline = "cp_async", tgpu.pipelined, tgpu.prefetch_distance = 1 : i64}
// CHECK-NEXT: scf.for {{.*}} iter_args(%{{.*}} = %[[FIRST]]#0, %[[STAGE:.*]] = %[[FIRST]]#1)
// CHECK: tgpu.async_copy %arg1{{.*}} into %[[K]][%{{.*}}] {tgpu.prefetch_distance = 1 : i64}
// CHECK: tgpu.local_load %[[K]][%[[STAGE]]]
// CHECK: } {tgpu.continues_prefetch, tgpu.pipeline = "cp_async", tgpu.pipelined, tgpu.prefetch_distance = 1 : i64, tile.continues_previous}
// LOWERED-LABEL: gpu.func @continued_kernel
// LOWERED: nvgpu.device_async_copy
func.func @continued(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %half = arith.divsi %n, %c64 : index
  %mid = arith.muli %half, %c64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 2 : i64, tgpu.operands_staged} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = scf.for %t = %c0 to %mid step %c64 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64}
    %b = scf.for %t = %mid to %n step %c64 iter_args(%x = %a) -> (tensor<64x64xf32, #acc>) {
      %kt = tile.load %k[%t, %c0] {tgpu.buffer_stages = 2 : i64, tgpu.prefetch_distance = 1 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
      %d = tile.dot %qt, %kt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d : tensor<64x64xf32, #acc>
    } {tgpu.continues_prefetch, tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 1 : i64, tile.continues_previous}
    tile.store %b, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}
