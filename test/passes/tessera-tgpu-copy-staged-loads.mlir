// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads | FileCheck %s
// Rewriting twice changes nothing (a copied grid is marked).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tgpu-copy-staged-loads | FileCheck %s
// A grid not scheduled yet is scheduled first: the same copies.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-copy-staged-loads | FileCheck %s
// tessera-tile-to-gpu lowers the copies as it lowered the loads (it rewrites a grid
// itself where the pass did not run): one kernel either way.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tile-to-gpu > %t.loads
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-assign-stages --tessera-tgpu-copy-staged-loads --tessera-tile-to-gpu > %t.copies
// RUN: diff %t.loads %t.copies
// RUN: FileCheck %s --check-prefix=LOWERED < %t.copies

// One query tile and a loop over key / value tiles (D = 128, two stages): K prefetched
// into a double buffer, V and Q single. Each buffer is made just before its first use,
// each reader reads it right before it (the transpose of K reads K's buffer).
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xbf16, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @prefetched
// CHECK: tile.grid{{.*}}tgpu.loads_copied
// CHECK: %[[Q:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK-NEXT: tgpu.async_copy %arg0[%{{.*}}, %c0] into %[[Q]] : {{.*}} -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
// CHECK-NEXT: %[[V:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK-NEXT: scf.for
// CHECK: tgpu.async_copy %arg1[%[[N:.*]], %c0] into %[[K]] {tgpu.prefetch_distance = 1 : i64}
// CHECK-NEXT: tgpu.async_copy %arg2[%[[N]], %c0] into %[[V]] :
// CHECK-NEXT: %[[KR:.*]] = tgpu.local_load %[[K]] : {{.*}} -> tensor<64x128xbf16, #tgpu.shared_operand<{{.*}}transposed = true>>
// CHECK-NEXT: %[[KT:.*]] = tile.trans %[[KR]]
// CHECK-NEXT: %[[QR:.*]] = tgpu.local_load %[[Q]] : {{.*}} -> tensor<64x128xbf16, #tgpu.dot_operand<a{{.*}}>>
// CHECK-NEXT: tile.dot %[[QR]], %[[KT]]
// CHECK: %[[VR:.*]] = tgpu.local_load %[[V]]
// CHECK-NEXT: tile.dot %{{.*}}, %[[VR]]
// CHECK-NOT: tile.load
// CHECK: } {tgpu.pipeline = "cp_async_first_product", tgpu.prefetch_distance = 1 : i64}
// LOWERED-LABEL: gpu.func @prefetched_kernel
// LOWERED-COUNT-16: nvgpu.device_async_copy
// LOWERED-NOT: tgpu.async_copy
// LOWERED-NOT: tgpu.local_load
func.func @prefetched(%q: !in, %k: !in, %v: !in, %o: !out) {
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

// Two loops load K from one source: one buffer, made before the first loop; two
// 64-column pieces of a row are live together: a buffer each. An element-wise reader
// and a product both read Q: a read each. A hand-written offset on the first load of
// a buffer moves to the buffer.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @shared_buffers
// CHECK: %[[Q:.*]] = tgpu.local_alloc {tgpu.shared_offset = array<i64: 0>} : () -> !tgpu.smem<64x64xbf16
// CHECK-NEXT: tgpu.async_copy %arg0{{.*}} into %[[Q]] :
// CHECK-NEXT: %[[QE:.*]] = tgpu.local_load %[[Q]]
// CHECK-NEXT: arith.mulf %[[QE]], %[[QE]]
// CHECK: %[[LO:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16
// CHECK-NEXT: %[[HI:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16
// CHECK-NEXT: scf.for
// CHECK: tgpu.async_copy %arg1[%{{.*}}, %c0] into %[[LO]]
// CHECK-NEXT: tgpu.async_copy %arg1[%{{.*}}, %c64] into %[[HI]]
// CHECK-NEXT: tgpu.local_load %[[Q]]
// CHECK-NEXT: tgpu.local_load %[[LO]]
// CHECK: scf.for
// CHECK: tgpu.async_copy %arg1[%{{.*}}, %c0] into %[[LO]]
// CHECK-NOT: tgpu.local_alloc
// CHECK: return
func.func @shared_buffers(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x64xbf16, #lhs>
    %sq = arith.mulf %qt, %qt : tensor<64x64xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %a = scf.for %t = %c0 to %c2 step %c1 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %lo = tile.load %k[%n0, %c0] : !in -> tensor<64x64xbf16, #rhs>
      %hi = tile.load %k[%n0, %c64] : !in -> tensor<64x64xbf16, #rhs>
      %d0 = tile.dot %qt, %lo, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %d1 = tile.dot %sq, %hi, %d0 : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d1 : tensor<64x64xf32, #acc>
    }
    %b = scf.for %t = %c2 to %tiles step %c1 iter_args(%x = %a) -> (tensor<64x64xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %lo = tile.load %k[%n0, %c0] : !in -> tensor<64x64xbf16, #rhs>
      %d0 = tile.dot %qt, %lo, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %d0 : tensor<64x64xf32, #acc>
    }
    tile.store %b, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  return
}

// -----

// Not rewritten: a grid TMA copies (tgpu.tensor_copies). An mma.sync kernel's tiles go
// to padded rows (copied through registers): a buffer per source and tile type, single.
// CHECK-LABEL: func.func @padded_and_tma
// CHECK: tile.grid
// CHECK-NOT: tgpu.loads_copied
// CHECK-SAME: tgpu.tensor_copies
// CHECK-NOT: tgpu.async_copy
// CHECK: tile.load %arg1{{.*}}tgpu.staged = #tgpu.shared<swizzle_128b>
// CHECK: tile.grid{{.*}}tgpu.loads_copied
// CHECK: tile.load %arg0{{.*}}mma_sync
// CHECK-NEXT: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// CHECK-NEXT: tgpu.async_copy %arg1[%{{.*}}, %c0] into %[[K]] :
// CHECK: tgpu.local_load %[[K]] : {{.*}} -> tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<mma_sync
// CHECK-NEXT: tile.dot
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
#mma = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#mlhs = #tgpu.dot_operand<a, parent = #mma, k_width = 2>
#mrhs = #tgpu.shared_operand<parent = #mma>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @padded_and_tma(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged, tgpu.tensor_copies} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #lhs>
    %kt = tile.load %k[%row, %c0] {tgpu.staged = #tgpu.shared<swizzle_128b>} : !in -> tensor<64x64xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #acc>, !out
  }
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #mma} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x64xbf16, #mlhs>
    %kt = tile.load %k[%row, %c0] : !in -> tensor<64x64xbf16, #mrhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #mma>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16, #mlhs>, tensor<64x64xbf16, #mrhs> -> tensor<64x64xf32, #mma>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32, #mma>, !out
  }
  return
}

// -----

// A grid whose first op is a staged load (erased once copied) with another buffer after
// it: each buffer is made at the grid's start, then placed.
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 32, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
// CHECK-LABEL: func.func @load_first
// CHECK: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16
// CHECK-NEXT: tgpu.async_copy %arg0[%c0, %c0] into %[[K]]
// CHECK-NEXT: %[[Q:.*]] = tgpu.local_alloc : () -> !tgpu.smem<32x128xbf16
// CHECK-NEXT: tgpu.async_copy %arg1[%c0, %c0] into %[[Q]]
// LOWERED-LABEL: gpu.func @load_first_kernel
// LOWERED: nvgpu.device_async_copy
func.func @load_first(%k: !in, %q: !in, %s: memref<?x32xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %kt = tile.load %k[%c0, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %qt = tile.load %q[%c0, %c0] : !in -> tensor<32x128xbf16, #keyT>
    %qtt = tile.trans %qt : tensor<32x128xbf16, #keyT> -> tensor<128x32xbf16, #rhs>
    %zero = arith.constant dense<0.0> : tensor<64x32xf32, #acc>
    %st = tile.dot %kt, %qtt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x32xbf16, #rhs> -> tensor<64x32xf32, #acc>
    tile.store %st, %s[%c0, %c0] : tensor<64x32xf32, #acc>, memref<?x32xf32, strided<[?, ?], offset: ?>>
  }
  return
}
