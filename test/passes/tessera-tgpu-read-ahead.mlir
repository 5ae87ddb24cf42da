// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-read-ahead | FileCheck %s
// Idempotent: the entry read ahead feeds no copy's indices.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-read-ahead --tessera-tgpu-read-ahead | FileCheck %s
// The loops read ahead lower (the carried entry a scalar of the loop).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-read-ahead --tessera-tile-to-gpu | FileCheck %s --check-prefix=LOWERED
// LOWERED-COUNT-7: gpu.func

// One stage: nothing is prefetched, so K and V's copies would wait for the list entry.
// The entry for the lower bound is read before the loop and carried first; each
// iteration reads the next one's at its top (in bounds: tile.speculable) and the tile's
// indices come from the carried value. The loop keeps its attributes.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @one_stage_list
// CHECK: tile.grid
// CHECK: %[[FIRST:.*]] = memref.load %{{.*}}[%[[C0:.*]]] : memref<?xi32>
// CHECK: %[[LOOP:.*]]:2 = scf.for %[[T:.*]] = %[[C0]] to %{{.*}} step %[[C1:.*]] iter_args(%[[ENTRY:.*]] = %[[FIRST]], %[[ACC:.*]] = %{{.*}}) -> (i32, tensor<64x128xf32, #{{.*}}>)
// CHECK-NEXT: %[[NEXT_T:.*]] = arith.addi %[[T]], %[[C1]] : index
// CHECK-NEXT: %[[NEXT:.*]] = memref.load %{{.*}}[%[[NEXT_T]]] : memref<?xi32>
// CHECK-NEXT: %[[BLOCK:.*]] = arith.index_cast %[[ENTRY]] : i32 to index
// CHECK-NEXT: %[[N0:.*]] = arith.muli %[[BLOCK]]
// CHECK-NEXT: tile.load %{{.*}}[%[[N0]], %[[C0]]]
// CHECK-NOT: memref.load
// CHECK: scf.yield %[[NEXT]], %{{.*}} : i32, tensor<64x128xf32, #{{.*}}>
// CHECK-NEXT: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64, tile.speculable}
// CHECK: tile.store %[[LOOP]]#1
func.func @one_stage_list(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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

// Two stages: K and V are copied an iteration ahead, which needs their indices known an
// iteration early; a carried entry is not, so the loop is left as it is.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @prefetched_list
// CHECK: scf.for %[[T:.*]] = %{{.*}} iter_args(%{{.*}}) -> (tensor<64x128xf32, #{{.*}}>)
// CHECK-NEXT: memref.load %{{.*}}[%[[T]]]
// CHECK: } {tgpu.pipeline = "registers", tgpu.prefetch_distance = 1 : i64, tile.speculable}
func.func @prefetched_list(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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

// Two stages, but the user keeps the loop at one (tgpu.prefetch_distance = 0): its copies
// wait for the entry again, which is then read ahead.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @user_keeps_one_stage
// CHECK: %[[FIRST:.*]] = memref.load
// CHECK: scf.for %{{.*}} iter_args(%{{.*}} = %[[FIRST]], %{{.*}}) -> (i32, tensor<64x128xf32, #{{.*}}>)
// CHECK: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64, tile.speculable}
func.func @user_keeps_one_stage(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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
    } {tgpu.prefetch_distance = 0 : i64, tile.speculable}
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// Without tile.speculable the read of the entry after the last may be out of bounds: the
// loop is left as it is.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @unpromised
// CHECK: scf.for %[[T:.*]] = %{{.*}} iter_args(%{{.*}}) -> (tensor<64x128xf32, #{{.*}}>)
// CHECK-NEXT: memref.load %{{.*}}[%[[T]]]
// CHECK: } {tgpu.pipeline = "none", tgpu.prefetch_distance = 0 : i64}
func.func @unpromised(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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

// -----

// A list the kernel writes is not an input: its entry is read where the program reads it.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @list_written_by_the_kernel
// CHECK: memref.store
// CHECK: scf.for %[[T:.*]] = %{{.*}} iter_args(%{{.*}}) -> (tensor<64x128xf32, #{{.*}}>)
// CHECK-NEXT: memref.load %{{.*}}[%[[T]]]
func.func @list_written_by_the_kernel(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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
    %seven = arith.constant 7 : i32
    memref.store %seven, %list[%row] : memref<?xi32>
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

// An entry whose place is carried (not a function of the induction variable) is not
// known an iteration early.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @entry_from_a_carried_place
// CHECK: scf.for %{{.*}} iter_args(%{{.*}}, %[[AT:.*]] = %{{.*}}) -> (tensor<64x128xf32, #{{.*}}>, index)
// CHECK-NEXT: memref.load %{{.*}}[%[[AT]]]
func.func @entry_from_a_carried_place(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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
    %acc1:2 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0, %at = %c0) -> (tensor<64x128xf32, #acc>, index) {
      %entry = memref.load %list[%at] : memref<?xi32>
      %block = arith.index_cast %entry : i32 to index
      %n0 = arith.muli %block, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next, %t : tensor<64x128xf32, #acc>, index
    } {tile.speculable}
    tile.store %acc1#0, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// Only reads the copies' indices come from are moved: a read of the same list that
// nothing but arithmetic uses stays.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @read_beside_the_copies
// CHECK: %[[FIRST:.*]] = memref.load
// CHECK: scf.for %[[T:.*]] = %{{.*}} iter_args(%{{.*}} = %[[FIRST]], %{{.*}}) -> (i32, tensor<64x128xf32, #{{.*}}>)
// CHECK: %[[OTHER_PLACE:.*]] = arith.addi %[[T]], %{{.*}} : index
// CHECK: memref.load %{{.*}}[%[[OTHER_PLACE]]]
// CHECK: arith.addi %{{.*}} : i32
func.func @read_beside_the_copies(%q: !in, %k: !in, %v: !in, %o: !out, %list: memref<?xi32>) {
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
      %entry = memref.load %list[%t] : memref<?xi32>
      %block = arith.index_cast %entry : i32 to index
      %n0 = arith.muli %block, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %c5 = arith.constant 5 : index
      %p5 = arith.addi %t, %c5 : index
      %other = memref.load %list[%p5] : memref<?xi32>
      %sum = arith.addi %other, %entry : i32
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
