// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-allocate-shared | FileCheck %s
// Allocating twice gives the same plan (offsets on the ops are kept).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-allocate-shared --tessera-tgpu-allocate-shared | FileCheck %s
// Each buffer's kind, size, alignment and live range (tile ops in pre-order, the grid 0).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-allocate-shared=report=true -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// With TMA the mbarriers (one per stage of each buffer TMA fills) follow the buffers.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-allocate-shared | FileCheck %s --check-prefix=TMA
// tessera-tile-to-gpu follows the plan: the launch's smem is the plan's bytes + 1024.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-allocate-shared --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=LOWERED

// The D = 128 causal softmax on sm_90a (as tessera-gpu makes it, reduced to one head):
// Q 16 KiB at 0, K double-buffered (32 KiB) above it, V 16 KiB above that: 64 KiB, three
// blocks an SM. The three loops load K and V through the first loop's buffers; O goes
// out after the loops through Q's bytes, which nothing reads any more.
// CHECK-LABEL: func.func @causal_d128
// The staged loads are copies into their buffers (tessera-tgpu-copy-staged-loads), each
// buffer made just before its first use: its live range starts there.
// CHECK: tile.grid{{.*}}tgpu.shared_bytes = 65536 : i64
// CHECK: %[[Q:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK-NEXT: tgpu.async_copy %{{.*}} into %[[Q]] :
// CHECK: %[[K:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 16384>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
// CHECK-NEXT: %[[V:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 49152>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// Each loop's prologue (tessera-tgpu-pipeline-loops) copies its first K tile into K's
// stage 0 before it: the buffers' ranges start where they did.
// CHECK-NEXT: arith.constant 0 : index
// CHECK-NEXT: arith.muli
// CHECK-NEXT: tgpu.async_copy %{{.*}} into %[[K]][%{{.*}}] :
// CHECK-NEXT: scf.for
// CHECK-NEXT: tgpu.barrier
// CHECK: tgpu.async_copy %{{.*}} into %[[V]] :
// CHECK-NEXT: arith.muli
// CHECK-NEXT: tgpu.async_copy %{{.*}} into %[[K]][%{{.*}}] {tgpu.prefetch_distance = 1 : i64}
// CHECK-NOT: tgpu.shared_offset
// CHECK: tile.store %{{.*}} {tgpu.shared_offset = array<i64: 0>}
// REPORT: remark: shared tile buffer: 16384 bytes at 0 (align 1024), live over ops 3-68
// REPORT: remark: shared tile buffer: 32768 bytes at 16384 (align 1024), live over ops 7-68
// REPORT: remark: shared tile buffer: 16384 bytes at 49152 (align 1024), live over ops 8-68
// REPORT: remark: shared output buffer: 16384 bytes at 0 (align 1024), live over ops 70-70
// TMA-LABEL: func.func @causal_d128
// TMA: tile.grid{{.*}}tgpu.shared_bytes = 65568 : i64, tgpu.shared_offset = array<i64: 65536>
// LOWERED-LABEL: func.func @causal_d128
// LOWERED-SAME: smem = 66560 : i64

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xbf16, strided<[?, ?], offset: ?>>
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
    %ob = arith.truncf %acc3 : tensor<64x128xf32, #acc> to tensor<64x128xbf16, #acc>
    tile.store %ob, %o[%row, %c0] : tensor<64x128xbf16, #acc>, !out
  }
  return
}

// -----

// mma.sync (sm_80): K and V staged in padded rows (64 x 136 bf16, 17408 bytes each,
// 128-byte aligned), both read in the loop: one above the other.
// CHECK-LABEL: func.func @staged_mma_sync
// CHECK: tile.grid{{.*}}tgpu.shared_bytes = 34816 : i64
// CHECK: %[[K:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: %[[V:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 17408>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: tgpu.async_copy %arg2{{.*}} into %[[V]]
// REPORT: remark: shared staging buffer: 17408 bytes at 0 (align 128), live over ops 6-18
// REPORT: remark: shared staging buffer: 17408 bytes at 17408 (align 128), live over ops 7-18
// LOWERED-LABEL: func.func @staged_mma_sync
// LOWERED-SAME: smem = 35840 : i64

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @staged_mma_sync(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
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

// Liveness: K is read only in the first sweep, V only in the second, so V takes K's
// bytes (the lowering waits for K's readers with a barrier before V's first copy, which
// is the barrier before that copy too: one, not two).
// CHECK-LABEL: func.func @two_sweeps
// CHECK: tile.grid{{.*}}tgpu.shared_bytes = 17408 : i64
// CHECK: %[[K:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: %[[V:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: tgpu.async_copy %arg2{{.*}} into %[[V]]
// REPORT: remark: shared staging buffer: 17408 bytes at 0 (align 128), live over ops 6-13
// REPORT: remark: shared staging buffer: 17408 bytes at 0 (align 128), live over ops 15-21
// LOWERED-LABEL: func.func @two_sweeps
// LOWERED-SAME: smem = 18432 : i64
// LOWERED: gpu.func @two_sweeps_kernel0
// LOWERED: memref.view %{{.*}}[%[[AT:[0-9a-z_]+]]][] : {{.*}} to memref<64x136xbf16
// LOWERED-NEXT: memref.view %{{.*}}[%[[AT]]][] : {{.*}} to memref<64x136xbf16
// LOWERED: scf.yield
// LOWERED: scf.for
// LOWERED-NEXT: arith.muli
// LOWERED-NEXT: tgpu.barrier
// LOWERED-NEXT: memref.dim

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @two_sweeps(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %s = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %next = tile.dot %qt, %ktt, %x : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %next : tensor<64x64xf32, #acc>
    }
    %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
    %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
    %o1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %o1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// A user's offset on one op is kept (V above K although it could share K's bytes); the
// others are placed around it.
// CHECK-LABEL: func.func @user_offset
// CHECK: tile.grid{{.*}}tgpu.shared_bytes = 34816 : i64
// CHECK: %[[K:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: %[[V:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 17408>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: tgpu.async_copy %arg2{{.*}} into %[[V]]
// LOWERED-LABEL: func.func @user_offset
// LOWERED-SAME: smem = 35840 : i64

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @user_offset(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %s = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %next = tile.dot %qt, %ktt, %x : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %next : tensor<64x64xf32, #acc>
    }
    %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
    %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
    %o1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %vt = tile.load %v[%n0, %c0] {tgpu.shared_offset = array<i64: 17408>} : !in -> tensor<64x128xbf16, #rhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %o1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// A hand-written plan (tgpu.shared_bytes on the grid, an offset on every requesting op)
// is followed as it is: V below K (the loads' offsets move to their copies' buffers).
// CHECK-LABEL: func.func @hand_plan
// CHECK: tile.grid{{.*}}tgpu.shared_bytes = 40960 : i64
// CHECK: %[[K:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 20480>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: %[[V:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK: tgpu.async_copy %arg2{{.*}} into %[[V]]
// LOWERED-LABEL: func.func @hand_plan
// LOWERED-SAME: smem = 41984 : i64

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @hand_plan(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.shared_bytes = 40960 : i64} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] {tgpu.shared_offset = array<i64: 20480>} : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x128xbf16, #rhs>
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

// Two 64-column pieces of one source row (the backward's K pieces of dQᵀ = Kᵀ dSᵀ at
// D = 128) are live together: a buffer each, not one shared by both.
// CHECK-LABEL: func.func @column_pieces
// CHECK: %[[Q:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>}
// CHECK-NEXT: tgpu.async_copy %arg0{{.*}} into %[[Q]]
// CHECK-NEXT: %[[LO:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 8192>}
// CHECK-NEXT: tgpu.async_copy %arg1[%{{.*}}, %c0] into %[[LO]]
// CHECK-NEXT: %[[HI:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 16384>}
// CHECK-NEXT: tgpu.async_copy %arg1[%{{.*}}, %c64] into %[[HI]]
// REPORT-LABEL: remark: shared tile buffer: 8192 bytes at 0
// REPORT: remark: shared tile buffer: 8192 bytes at 8192
// REPORT: remark: shared tile buffer: 8192 bytes at 16384

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @column_pieces(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x64xbf16, #lhs>
    %lo = tile.load %k[%row, %c0] : !in -> tensor<64x64xbf16, #rhs>
    %hi = tile.load %k[%row, %c64] : !in -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = tile.dot %qt, %lo, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    %b = tile.dot %qt, %hi, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %a, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
    tile.store %b, %o[%row, %c64] : tensor<64x64xf32, #acc>, !out
  }
  return
}
