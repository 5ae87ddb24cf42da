// RUN: tessera-opt %s -split-input-file --tessera-persistent-grid | FileCheck %s
// The same after layouts, the schedule and distribution (sm_90a): the launch record's
// grid is min(items, blocks per SM x #SMs) (two blocks of a 64 x 128 O and 64 x 64 S:
// 96 + 104 registers a thread), the work loop is not pipelined and each item ends with
// every copy landed and a block barrier.
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-persistent-grid --tessera-tgpu-assign-stages --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=LOWERED
// With TMA copies every thread first waits for each barrier's newest fill (four: Q, K's
// two stages, V; a prefetch past the item's last key tile nobody read), so the next
// item's fill of a barrier cannot land before a slower thread's wait for the one before,
// then orders its generic shared-memory accesses before the next item's fills
// (fence.proxy.async), ahead of the item-end barrier.
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-persistent-grid --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=TMA
// Warp-specialised: the producer walks the same items in its own work loop, Q in a ring
// of two (the next item's Q lands under this item's key tiles, as its first K and V do);
// the consumers' item-end barrier is theirs (named barrier 1); two blocks an SM, as the
// register budgets of one consumer warpgroup plan.
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-persistent-grid --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize | FileCheck %s --check-prefix=SPLIT
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-persistent-grid --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=WS

// A grid that launches its last query tiles first (program id 0 read as tiles - 1 - id,
// as causal / window softmax grids are built): one grid over tiles x heads work items,
// each program walking t = id, t += #programs. The item of t: the hardware's launch order
// (query tile fastest) in mirrored pairs — a program's steps 2m and 2m + 1 take query
// tiles j and tiles - 1 - j of unit m x programs + id (so every program's pair of steps
// costs the same under causal masks, and the programs running at once stay on
// neighbouring units, their keys and values shared in L2), its heavier tile first. The
// counts that do not change over items are made before the work loop.
// CHECK-LABEL: func.func @longest_first
// CHECK: %[[TILES:.*]] = arith.ceildivsi
// CHECK: %[[HEADS:.*]] = memref.dim %{{.*}}, %c0
// CHECK: %[[ITEMS:.*]] = arith.muli %[[TILES]], %[[HEADS]] : index
// CHECK: tile.grid[%[[ITEMS]]] config = <{{.*}}> attributes {tgpu.persistent} {
// CHECK-NEXT: %[[FIRST:.*]] = tile.program_id 0 : index
// CHECK-NEXT: %[[PROGRAMS:.*]] = gpu.grid_dim x
// CHECK-NEXT: %[[FROM:.*]] = arith.index_castui %[[FIRST]] : index to i32
// CHECK-NEXT: %[[TO:.*]] = arith.index_castui %[[ITEMS]] : index to i32
// CHECK-NEXT: %[[STEP:.*]] = arith.index_castui %[[PROGRAMS]] : index to i32
// CHECK-NEXT: %[[SIZE0:.*]] = arith.index_castui %[[TILES]] : index to i32
// CHECK: %[[PAIRS:.*]] = arith.divui %[[SIZE0]], %c2_i32
// CHECK-NOT: scf.for
// CHECK: %[[SAFE_PAIRS:.*]] = arith.maxui %[[PAIRS]]
// CHECK-NEXT: scf.for %[[T:.*]] = %[[FROM]] to %[[TO]] step %[[STEP]] : i32 {
// CHECK-NEXT: %[[STEP_K:.*]] = arith.divui %[[T]], %[[STEP]] : i32
// CHECK-NEXT: %[[PROGRAM:.*]] = arith.remui %[[T]], %[[STEP]] : i32
// CHECK: %[[UNIT:.*]] = arith.select
// CHECK: %[[J:.*]] = arith.remui %[[UNIT]], %[[SAFE_PAIRS]] : i32
// CHECK: %[[LAST:.*]] = arith.subi %[[SIZE0]], %c1
// CHECK-NEXT: %[[MIRROR:.*]] = arith.subi %[[LAST]], %[[J]] : i32
// CHECK-NEXT: %[[INDEX0:.*]] = arith.select %{{.*}}, %[[MIRROR]], %[[J]] : i32
// CHECK: %[[ITEM:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : i32
// CHECK-NEXT: %[[TILES32:.*]] = arith.index_castui %[[TILES]] : index to i32
// CHECK-NEXT: %[[TILE32:.*]] = arith.remui %[[ITEM]], %[[TILES32]] : i32
// CHECK-NEXT: %[[HEAD32:.*]] = arith.divui %[[ITEM]], %[[TILES32]] : i32
// CHECK-NEXT: %[[TILE:.*]] = arith.index_castui %[[TILE32]] : i32 to index
// CHECK-NEXT: %[[HEAD:.*]] = arith.index_castui %[[HEAD32]] : i32 to index
// CHECK-NOT: tile.program_id
// CHECK: arith.subi %{{.*}}, %[[TILE]] : index
// CHECK: tile.load %{{.*}}[%[[HEAD]],
// CHECK: tile.store
// CHECK: } {tgpu.prefetch_distance = 0 : i64, tgpu.work_items}
// LOWERED-LABEL: func.func @longest_first
// LOWERED-SAME: grid = [array<i64: -6, 8, -4, 3, 0, 1, 64, 0, 0, 1, -5, 2>]
// LOWERED: gpu.func @longest_first_kernel0
// LOWERED-SAME: nvvm.minctasm = 2 : i32
// LOWERED: %[[PROGRAMS:.*]] = gpu.grid_dim x
// LOWERED: %[[STEP:.*]] = arith.index_castui %[[PROGRAMS]] : index to i32
// LOWERED: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STEP]] : i32 {
// LOWERED: scf.for
// LOWERED: nvvm.wgmma.mma_async
// LOWERED: memref.store %{{[0-9]+}}#63
// LOWERED-NEXT: }
// LOWERED-NEXT: tgpu.async_wait pending = 0
// LOWERED-NEXT: tgpu.fence_async_shared
// LOWERED-NEXT: tgpu.barrier
// LOWERED-NEXT: }
// LOWERED-NEXT: gpu.return
// TMA-LABEL: func.func @longest_first
// TMA: scf.for %{{.*}} : i32 {
// TMA: tgpu.tma_load
// TMA: scf.for
// TMA: nvvm.wgmma.mma_async
// TMA: memref.store %{{[0-9]+}}#63
// TMA-NEXT: }
// TMA-NOT: tgpu.barrier
// TMA-COUNT-4: tgpu.mbarrier_wait
// TMA-NOT: tgpu.barrier
// TMA: tgpu.fence_async_shared
// TMA-NEXT: tgpu.barrier
// TMA-NEXT: }
// SPLIT-LABEL: func.func @longest_first
// SPLIT: tgpu.warp_specialize
// SPLIT: scf.for %{{.*}} : i32 {
// SPLIT: tile.load %arg0{{.*}} {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// SPLIT: } {tgpu.pipeline = "none", tgpu.work_items}
// SPLIT: } partitions {
// SPLIT: scf.for %{{.*}} : i32 {
// SPLIT: tile.load %arg0{{.*}} {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// SPLIT: scf.for
// SPLIT: tile.load %arg1
// SPLIT: tile.load %arg2
// SPLIT: } {tgpu.pipeline = "none", tgpu.work_items}
// SPLIT-NEXT: tgpu.warp_return
// WS-LABEL: func.func @longest_first
// WS-SAME: grid = [array<i64: -6, 8, -4, 3, 0, 1, 64, 0, 0, 1, -5, 2>]
// WS: gpu.func @longest_first_kernel0
// WS-SAME: nvvm.maxnreg = 128 : i32, nvvm.minctasm = 2 : i32
// WS: scf.for %{{.*}} : i32 {
// WS: tgpu.tma_load
// WS: scf.for %{{.*}} : i32 {
// WS: nvvm.wgmma.mma_async
// WS: memref.store %{{[0-9]+}}#63
// WS-NEXT: }
// WS-NEXT: tgpu.fence_async_shared
// WS-NEXT: tgpu.named_barrier %{{.*}} threads = {{[0-9]+}}
// WS-NEXT: }

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
!in = memref<?x?x128xbf16, strided<[?, ?, ?], offset: ?>>
!out = memref<?x?x128xf32, strided<[?, ?, ?], offset: ?>>
func.func @longest_first(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c1 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  %heads = memref.dim %q, %c0 : !in
  tile.grid [%tiles, %heads] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %id = tile.program_id 0 : index
    %h = tile.program_id 1 : index
    %last = arith.subi %tiles, %c1 : index
    %i = arith.subi %last, %id : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%h, %row, %c0] : !in -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %seen = arith.addi %i, %c1 : index
    %acc = scf.for %t = %c0 to %seen step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%h, %n0, %c0] : !in -> tensor<64x128xbf16>
      %vt = tile.load %v[%h, %n0, %c0] : !in -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%h, %row, %c0] : tensor<64x128xf32>, !out
  }
  return
}

// -----

// Grids in launch order also walk query tiles fastest, in mirrored pairs.
// CHECK-LABEL: func.func @tile_fastest
// CHECK: %[[TILES:.*]] = arith.ceildivsi
// CHECK: %[[HEADS:.*]] = memref.dim %{{.*}}, %c0
// CHECK: tile.grid
// CHECK: scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} : i32 {
// CHECK: %[[TILES32:.*]] = arith.index_castui %[[TILES]] : index to i32
// CHECK-NEXT: %[[TILE32:.*]] = arith.remui %[[ITEM:.*]], %[[TILES32]] : i32
// CHECK-NEXT: %[[HEAD32:.*]] = arith.divui %[[ITEM]], %[[TILES32]] : i32
// CHECK-NEXT: %[[TILE:.*]] = arith.index_castui %[[TILE32]] : i32 to index
// CHECK-NEXT: %[[HEAD:.*]] = arith.index_castui %[[HEAD32]] : i32 to index
// CHECK: arith.muli %[[TILE]], %c64
// CHECK: tile.load %{{.*}}[%[[HEAD]],
// LOWERED-LABEL: func.func @tile_fastest
// LOWERED-SAME: grid = [array<i64: -6, 8, -4, 3, 0, 1, 64, 0, 0, 1, -5, 2>]

#acc = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
!in = memref<?x?x128xbf16, strided<[?, ?, ?], offset: ?>>
!out = memref<?x?x128xf32, strided<[?, ?, ?], offset: ?>>
func.func @tile_fastest(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c1 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  %heads = memref.dim %q, %c0 : !in
  tile.grid [%tiles, %heads] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %h = tile.program_id 1 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%h, %row, %c0] : !in -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%h, %n0, %c0] : !in -> tensor<64x128xbf16>
      %vt = tile.load %v[%h, %n0, %c0] : !in -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%h, %row, %c0] : tensor<64x128xf32>, !out
  }
  return
}

// -----

// A grid without products (a classification, an element-wise program) keeps its launch.
// CHECK-LABEL: func.func @no_products
// CHECK: tile.grid[%{{.*}}] config
// CHECK-NOT: tgpu.persistent
// CHECK-NOT: scf.for
// CHECK: return
// LOWERED-LABEL: func.func @no_products
// LOWERED-SAME: grid = [array<i64: 0, 0, 64>]

!buf = memref<?x64xf32, strided<[?, ?], offset: ?>>
func.func @no_products(%x: !buf, %y: !buf) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %x, %c0 : !buf
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %t = tile.load %x[%row, %c0] : !buf -> tensor<64x64xf32>
    %e = math.exp2 %t : tensor<64x64xf32>
    tile.store %e, %y[%row, %c0] : tensor<64x64xf32>, !buf
  }
  return
}
