// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tgpu-outline-kernels | FileCheck %s
// Idempotent: a second run finds no grid left in a host function.
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tgpu-outline-kernels --tessera-tgpu-outline-kernels | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tgpu-outline-kernels=min-blocks=4 | FileCheck %s --check-prefix=BLOCKS
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-outline-kernels | FileCheck %s --check-prefix=TMA
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tgpu-outline-kernels 2>/dev/null | FileCheck %s --check-prefix=WS
// The lowering of outlined kernels is the lowering of the same grids outlined by
// tessera-tile-to-gpu itself: the pass moves decisions, not code.
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tgpu-outline-kernels --tessera-tile-to-gpu > %t.outlined
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tile-to-gpu > %t.direct
// RUN: diff %t.outlined %t.direct
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tgpu-outline-kernels --tessera-tile-to-gpu 2>/dev/null > %t.ws.outlined
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tile-to-gpu 2>/dev/null > %t.ws.direct
// RUN: diff %t.ws.outlined %t.ws.direct

// A grid becomes a gpu.func of the function's gpu.module holding it: buffers with a unit
// last stride, the host values it reads (the grid size; %unused is not one) recomputed
// from the kernel's arguments, the block size on the kernel; the host function keeps the
// launch record (grid as a formula of argument sizes, dynamic shared bytes = the plan's
// 9216 + 1024 of alignment slack).
// CHECK-LABEL: func.func @scores
// CHECK-SAME: (%[[Q:.*]]: memref<?x64xbf16, strided<[?, ?], offset: ?>>, %{{.*}}: memref<?x64xbf16, strided<[?, ?], offset: ?>>, %{{.*}}: memref<?xf32, strided<[?], offset: ?>>)
// CHECK-SAME: tessera.launches = [{block = 128 : i64, grid = [array<i64: 0, 0, 64>], kernel = "scores_kernel0", smem = 10240 : i64}], tessera.workspaces = []
// CHECK: %[[HOSTN:.*]] = memref.dim %[[Q]]
// CHECK: arith.muli %[[HOSTN]]
// CHECK-NOT: tile.grid
// CHECK: return
// CHECK: gpu.module @scores_kernels
// CHECK: gpu.func @scores_kernel0(%[[KQ:.*]]: memref<?x64xbf16, strided<[?, 1], offset: ?>>, %[[KK:.*]]: memref<?x64xbf16, strided<[?, 1], offset: ?>>, %[[KM:.*]]: memref<?xf32, strided<[1], offset: ?>>) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// CHECK-NEXT: %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[N:.*]] = memref.dim %[[KQ]], %[[C0]]
// CHECK-NEXT: %[[C64:.*]] = arith.constant 64 : index
// CHECK-NEXT: %[[TILES:.*]] = arith.ceildivsi %[[N]], %[[C64]]
// CHECK-NEXT: tile.grid[%[[TILES]]] {{.*}}tgpu.accumulator = #tgpu.mma<mma_sync{{.*}}tgpu.shared_bytes = 9216
// CHECK: tile.load %[[KQ]]
// CHECK: tgpu.async_copy %[[KK]]
// CHECK: tile.store %{{.*}}, %[[KM]]
// CHECK: gpu.return
// min_blocks goes to ptxas as the kernel's .minnctapersm.
// BLOCKS-LABEL: func.func @scores
// BLOCKS: gpu.func @scores_kernel0
// BLOCKS-SAME: nvvm.minctasm = 4 : i32
func.func @scores(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                  %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                  %m: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %q, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  %unused = arith.muli %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %ktt = tile.trans %kt : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    %mx = tile.reduce <max> %s axis 1 : tensor<64x64xf32> -> tensor<64xf32>
    tile.store %mx, %m[%row] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}

// -----

// Each grid of a function is a kernel of its own, reading only its own host values.
// The TMA grid's descriptors (tessera.tensor_maps: Q and K boxes of 64 x 64) are
// every kernel's last parameters, the second one's too (the launch record passes a
// function's descriptors to each of its kernels).
// CHECK-LABEL: func.func @two_grids
// CHECK-SAME: tessera.launches = [{block = 128 : i64, grid = [array<i64: 0, 0, 64>], kernel = "two_grids_kernel0", smem = 10240 : i64}, {block = 256 : i64, grid = [array<i64: 1, 0, 128>], kernel = "two_grids_kernel1", smem = 10240 : i64}]
// CHECK: gpu.func @two_grids_kernel0(%[[Q0:[^:]*]]:
// CHECK-NEXT: arith.constant 0
// CHECK-NEXT: memref.dim %[[Q0]]
// CHECK-NOT: memref.dim
// CHECK: tile.grid
// CHECK-SAME: num_warps = 4
// CHECK: gpu.func @two_grids_kernel1(%{{[^:]*}}: memref<?x64xbf16, strided<[?, 1], offset: ?>>, %[[K1:[^:]*]]:
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
// CHECK-NEXT: arith.constant 0
// CHECK-NEXT: memref.dim %[[K1]]
// CHECK-NOT: memref.dim
// CHECK: tile.grid
// CHECK-SAME: num_warps = 8
// TMA-LABEL: func.func @two_grids
// TMA-SAME: tessera.tensor_maps = [{argument = 0 : i64, box = array<i64: 64, 64>, dtype = "bf16", swizzle = 128 : i64}, {argument = 1 : i64, box = array<i64: 64, 64>, dtype = "bf16", swizzle = 128 : i64}]
// TMA: gpu.func @two_grids_kernel0({{.*}}, %{{.*}}: memref<?xf32, strided<[1], offset: ?>>, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) kernel
// TMA-SAME: tessera.tensor_map_params = 2 : i64
// TMA: tile.grid
// TMA-SAME: tgpu.tensor_copies
// TMA: gpu.func @two_grids_kernel1({{.*}}, %{{.*}}: memref<?xf32, strided<[1], offset: ?>>, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) kernel
// TMA-SAME: tessera.tensor_map_params = 2 : i64
// TMA: tile.grid
// TMA-NOT: tgpu.tensor_copies
// TMA: gpu.return
func.func @two_grids(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                     %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                     %m: memref<?xf32, strided<[?], offset: ?>>,
                     %m2: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %q, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %nk = memref.dim %k, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  %ktiles = arith.ceildivsi %nk, %c128 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %ktt = tile.trans %kt : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    %mx = tile.reduce <max> %s axis 1 : tensor<64x64xf32> -> tensor<64xf32>
    tile.store %mx, %m[%row] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  tile.grid [%ktiles] config = #tile.config<block_m = 128, block_n = 64, num_warps = 8, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c128 : index
    %kt = tile.load %k[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<128x64xbf16>
    %qt = tile.load %q[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %qtt = tile.trans %qt : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<128x64xf32>
    %s = tile.dot %kt, %qtt, %zero : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
    %mx = tile.reduce <max> %s axis 1 : tensor<128x64xf32> -> tensor<128xf32>
    tile.store %mx, %m2[%row] : tensor<128xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}

// -----

// A warp-specialised grid launches its producer warpgroup too (128 + 128 threads) and
// starts with the registers its budgets share out (.maxnreg 128: two blocks an SM).
// WS-LABEL: func.func @key_loop
// WS-SAME: tessera.launches = [{block = 256 : i64, grid = [array<i64: 0, 0, 64>], kernel = "key_loop_kernel0"
// WS-SAME: tessera.tensor_maps = [{argument = 0 : i64, {{.*}}}, {argument = 1 : i64, {{.*}}}, {argument = 2 : i64, {{.*}}}]
// WS: gpu.func @key_loop_kernel0({{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) kernel attributes {known_block_size = array<i32: 256, 1, 1>, nvvm.maxnreg = 128 : i32, tessera.tensor_map_params = 3 : i64}
// WS: tile.grid
// WS: tgpu.warp_specialize
func.func @key_loop(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}
