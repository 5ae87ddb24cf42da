// RUN: tessera-opt %s -split-input-file --tessera-tgpu-stage-operands | FileCheck %s
// Staging twice gives the same staging (a staged grid keeps its loads' decisions).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-stage-operands --tessera-tgpu-stage-operands | FileCheck %s
// tessera-tile-to-gpu follows the staging: a user's unstaged left operand is read from
// global memory into registers (no ldmatrix for it, no copy into shared memory).
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-stage-operands --tessera-tile-to-gpu | FileCheck %s --check-prefix=LOWERED
// With tma, one grid of each function (the first whose swizzled tiles TMA can all copy)
// is marked tgpu.tensor_copies.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-stage-operands=tma=true | FileCheck %s --check-prefix=TMA

// wgmma (sm_90a): every product operand is read from shared memory by descriptor, in
// 128-byte swizzled rows; Q is staged once, K (read as Kᵀ) and V in the loop. A column
// of the accumulator's rows (the row maxima carried in) stays in registers.
// CHECK-LABEL: func.func @wgmma_operands
// TMA-LABEL: func.func @wgmma_operands
// TMA: tile.grid{{.*}}tgpu.tensor_copies
// CHECK: tile.grid{{.*}}tgpu.operands_staged
// CHECK: tile.load %arg0{{.*}} {tgpu.staged = #tgpu.shared<swizzle_128b>} : {{.*}}dot_operand<a
// CHECK: tile.load %arg4{{.*}} : memref<?xf32> -> tensor<64xf32
// CHECK-NOT: tgpu.staged
// CHECK: scf.for
// CHECK: tile.load %arg1{{.*}} {tgpu.staged = #tgpu.shared<swizzle_128b>} : {{.*}}transposed = true
// CHECK: tile.load %arg2{{.*}} {tgpu.staged = #tgpu.shared<swizzle_128b>} : {{.*}}shared_operand
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
#row = #tgpu.slice<dim = 1, parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @wgmma_operands(%q: !in, %k: !in, %v: !in, %o: !out, %m: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %mx = tile.load %m[%row] : memref<?xf32> -> tensor<64xf32, #row>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
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
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// mma.sync (sm_80): right operands go to buffers with 16 bytes after each row (ldmatrix
// reads 8 rows from different banks); Q, loaded once outside the loop, is held in
// registers by each warp.
// CHECK-LABEL: func.func @mma_sync_operands
// TMA-LABEL: func.func @mma_sync_operands
// TMA-NOT: tgpu.tensor_copies
// TMA: return
// CHECK: tile.load %arg0[{{[^]]*}}] : memref{{.*}}dot_operand<a
// CHECK-NOT: tgpu.staged
// CHECK: scf.for
// CHECK: tile.load %arg1{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : {{.*}}transposed = true
// CHECK: tile.load %arg2{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : {{.*}}shared_operand
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @mma_sync_operands(%q: !in, %k: !in, %v: !in, %o: !out) {
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
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
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
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// mma.sync left operands loaded in a loop: staged where products alone read them and
// their rows copy in 16-byte vectors; one an
// element-wise op also reads stays in registers, and so does one of 40-byte rows.
// CHECK-LABEL: func.func @mma_sync_left_in_loop
// CHECK: scf.for
// CHECK: tile.load %arg0{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : {{.*}}dot_operand<a
// CHECK: tile.load %arg1[{{[^]]*}}] : memref{{.*}}dot_operand<a
// CHECK-NOT: tgpu.staged
// CHECK: tile.load %arg2{{.*}} : memref<?x20xbf16>
// CHECK-NOT: tgpu.staged
// CHECK: tile.load %arg3{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>}
// CHECK: scf.yield
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
func.func @mma_sync_left_in_loop(%a: !in, %e: !in, %r: memref<?x20xbf16>, %w: memref<64x64xbf16>,
                                 %o: memref<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %a, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %out = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %m0 = arith.muli %t, %c64 : index
      %al = tile.load %a[%m0, %c0] : !in -> tensor<64x64xbf16, #lhs>
      %et = tile.load %e[%m0, %c0] : !in -> tensor<64x64xbf16, #lhs>
      %e2 = arith.addf %et, %et : tensor<64x64xbf16, #lhs>
      %rt = tile.load %r[%m0, %c0] : memref<?x20xbf16> -> tensor<64x16xbf16, #lhs>
      %wt = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
      %s1 = tile.dot %al, %wt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %s2 = tile.dot %e2, %wt, %s1 : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %wr = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<16x64xbf16, #rhs>
      %s3 = tile.dot %rt, %wr, %s2 : tensor<64x16xbf16, #lhs>, tensor<16x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %s3 : tensor<64x64xf32, #acc>
    }
    tile.store %out, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  return
}

// -----

// A grid that asks for its left operands per use (the backward's dQ grid) stages its
// mma.sync left operand loaded outside any loop; so does a user's mark in a grid not
// staged yet (the second grid), which the pass keeps.
// CHECK-LABEL: func.func @per_use
// CHECK: tile.load %arg0{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : {{.*}}dot_operand<a
// CHECK: tile.load %arg1{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : {{.*}}shared_operand
// CHECK: tile.grid
// CHECK: tile.load %arg0{{.*}} {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : {{.*}}dot_operand<a
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @per_use(%a: memref<64x64xbf16>, %w: memref<64x64xbf16>, %o: memref<64x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tile.left_operands_per_use} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<64x64xf32>
  }
  return
}

// -----

// A user's staging is kept: the mma.sync left operand of a staged grid without
// tgpu.staged is read into registers, which the lowering follows (ldmatrix only for the
// right operand, 16 per product; the default stages A too: 20).
// CHECK-LABEL: func.func @user_override
// CHECK: scf.for
// CHECK: tile.load %arg0[{{[^]]*}}] : memref{{.*}}dot_operand<a
// CHECK-NOT: tgpu.staged
// CHECK: tile.dot
// LOWERED-LABEL: gpu.func @user_override_kernel0
// LOWERED-COUNT-16: nvgpu.ldmatrix
// LOWERED-NOT: nvgpu.ldmatrix
// LOWERED: gpu.return
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x64xbf16, strided<[?, ?], offset: ?>>
func.func @user_override(%a: !in, %w: memref<64x64xbf16>, %o: memref<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %a, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.operands_staged} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %out = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %zero) -> (tensor<64x64xf32, #acc>) {
      %m0 = arith.muli %t, %c64 : index
      %wt = tile.load %w[%c0, %c0] {tgpu.staged = #tgpu.shared<padded_rows, pad = 16>} : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
      %at = tile.load %a[%m0, %c0] : !in -> tensor<64x64xbf16, #lhs>
      %s = tile.dot %at, %wt, %x : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      scf.yield %s : tensor<64x64xf32, #acc>
    }
    tile.store %out, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  return
}

// -----

// TMA goes to the first grid whose swizzled tiles it can all copy: not one with a
// 32-column tile (not a whole 64-column box), the next one.
// TMA-LABEL: func.func @tma_second_grid
// TMA: tile.grid
// TMA-NOT: tgpu.tensor_copies
// TMA-SAME: {
// TMA: tile.grid{{.*}}tgpu.tensor_copies
#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
func.func @tma_second_grid(%a: memref<?x64xbf16>, %w: memref<?x64xbf16>, %o: memref<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x32xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<?x64xbf16> -> tensor<32x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x32xbf16, #lhs>, tensor<32x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  return
}

// -----

// Computed right operands (a state, a transposed score tile): each is written once to a
// buffer of its own (tgpu.local_alloc of the value), in the product instruction's shared
// layout, and read back whole before each reader. A state read by products in two loops
// gets its buffer after its definition (the first product does not dominate the
// second); a tile.trans of a tile in registers into a right operand's layout reads its
// buffer transposed.
// CHECK-LABEL: func.func @computed_operands
// CHECK: %[[S:.*]] = arith.truncf
// CHECK-NEXT: %[[SB:.*]] = tgpu.local_alloc %[[S]] : (tensor<64x64xbf16, #tgpu.mma<mma_sync{{.*}}>>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>
// CHECK: scf.for
// CHECK: %[[SR:.*]] = tgpu.local_load %[[SB]] : {{.*}} -> tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<mma_sync{{.*}}>>>
// CHECK-NEXT: tile.dot %{{.*}}, %[[SR]]
// CHECK: scf.for
// CHECK: %[[SR2:.*]] = tgpu.local_load %[[SB]] :
// CHECK-NEXT: tile.dot %{{.*}}, %[[SR2]]
// CHECK: %[[P:.*]] = arith.truncf
// CHECK-NEXT: %[[PB:.*]] = tgpu.local_alloc %[[P]] : {{.*}} -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>
// CHECK-NEXT: %[[PT:.*]] = tgpu.local_load %[[PB]] {trans} : {{.*}} -> tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<mma_sync{{.*}}>>>
// CHECK-NOT: tile.trans
// CHECK: tile.dot %{{.*}}, %[[PT]]
// LOWERED-LABEL: gpu.func @computed_operands_kernel0
// LOWERED: nvgpu.ldmatrix
// LOWERED: gpu.return
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #acc>
#rhsT = #tgpu.shared_operand<parent = #acc, transposed = true>
func.func @computed_operands(%a: memref<?x64xbf16>, %w: memref<64x64xbf16>, %o: memref<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %s32 = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    %s = arith.truncf %s32 : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
    %x = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %zero) -> (tensor<64x64xf32, #acc>) {
      %y = tile.dot %at, %s, %acc : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #acc> -> tensor<64x64xf32, #acc>
      scf.yield %y : tensor<64x64xf32, #acc>
    }
    %z = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %x) -> (tensor<64x64xf32, #acc>) {
      %y = tile.dot %at, %s, %acc : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #acc> -> tensor<64x64xf32, #acc>
      scf.yield %y : tensor<64x64xf32, #acc>
    }
    %p = arith.truncf %z : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
    %pt = tile.trans %p : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #rhs>
    %r = tile.dot %at, %pt, %z : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32>
  }
  return
}

// -----

// wgmma: a computed right operand in 128-byte swizzled rows; one narrower than a swizzle
// row ([64, 32]: the backward's dSᵀ of 32 queries) stored transposed, [32][64], and read
// back transposed.
// CHECK-LABEL: func.func @computed_wgmma
// CHECK: tgpu.local_alloc %{{.*}} : (tensor<64x64xbf16, #tgpu.mma<wgmma{{.*}}>>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>
// CHECK-NEXT: tgpu.local_load %{{.*}} : {{.*}} -> tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma{{.*}}>>>
// CHECK: tgpu.local_alloc %{{.*}} {trans} : (tensor<64x32xbf16, {{.*}}>) -> !tgpu.smem<32x64xbf16, #tgpu.shared<swizzle_128b>>
// CHECK-NEXT: tgpu.local_load %{{.*}} {trans} : !tgpu.smem<32x64xbf16, #tgpu.shared<swizzle_128b>> -> tensor<64x32xbf16, #tgpu.shared_operand<
// LOWERED-LABEL: gpu.func @computed_wgmma_kernel0
// LOWERED: nvvm.wgmma.mma_async
// LOWERED: gpu.return
#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 32, 16]>
#lhs = #tgpu.dot_operand<a, parent = #wg, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #wg>
func.func @computed_wgmma(%a: memref<?x64xbf16>, %w: memref<64x64xbf16>, %w2: memref<64x32xbf16>,
                          %o: memref<?x64xf32>, %o2: memref<?x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #wg} {
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #wg>
    %at = tile.load %a[%c0, %c0] : memref<?x64xbf16> -> tensor<64x64xbf16, #lhs>
    %wt = tile.load %w[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16, #rhs>
    %s32 = tile.dot %at, %wt, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #wg>
    %s = arith.truncf %s32 : tensor<64x64xf32, #wg> to tensor<64x64xbf16, #wg>
    %r = tile.dot %at, %s, %zero : tensor<64x64xbf16, #lhs>, tensor<64x64xbf16, #wg> -> tensor<64x64xf32, #wg>
    tile.store %r, %o[%c0, %c0] : tensor<64x64xf32, #wg>, memref<?x64xf32>
    %zero32 = arith.constant dense<0.0> : tensor<64x32xf32, #wg>
    %w2t = tile.load %w2[%c0, %c0] : memref<64x32xbf16> -> tensor<64x32xbf16, #rhs>
    %n32 = tile.dot %at, %w2t, %zero32 : tensor<64x64xbf16, #lhs>, tensor<64x32xbf16, #rhs> -> tensor<64x32xf32, #wg>
    %n = arith.truncf %n32 : tensor<64x32xf32, #wg> to tensor<64x32xbf16, #wg>
    %r2 = tile.dot %at, %n, %zero32 : tensor<64x64xbf16, #lhs>, tensor<64x32xbf16, #wg> -> tensor<64x32xf32, #wg>
    tile.store %r2, %o2[%c0, %c0] : tensor<64x32xf32, #wg>, memref<?x32xf32>
  }
  return
}
