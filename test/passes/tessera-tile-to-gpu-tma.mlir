// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s
// The barriers and copies as PTX (tessera-convert-tgpu-async-to-nvvm):
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-async-to-nvvm))' | FileCheck %s --check-prefix=PTX

// tessera-tile-to-gpu's `tma` option: the key loop of @key_loop in tessera-tile-to-gpu.mlir
// (Q once, K double-buffered, V single) with every swizzled tile copied by TMA. The kernel
// takes one descriptor per (argument, tile rows) after its buffers; the host function
// records them for the launch record. Q, K and V each get an mbarrier per stage (four,
// placed after the 64 KiB of tiles); one thread initialises them at the entry. Each copy:
// the elected thread (alone: a fill landing before a slower thread's wait would leave
// it waiting for the next phase) waits for the stage's previous fill, arms the barrier with the
// tile's bytes (64 x 128 bf16: two 64-column boxes, 16384 bytes) and issues a box per
// 64 columns (tgpu ops here; PTX, coordinates innermost first, in the PTX run); every thread flips the barrier's phase bit
// first (the issuer's wait takes the bit before it).
// Products wait on their operands' barriers; no cp.async is left.
// CHECK-LABEL: func.func @key_loop
// CHECK-SAME: smem = 66592
// CHECK-SAME: tessera.tensor_maps = [{argument = 0 : i64, box = array<i64: 64, 64>, dtype = "bf16", swizzle = 128 : i64}, {argument = 1 : i64, box = array<i64: 64, 64>, dtype = "bf16", swizzle = 128 : i64}, {argument = 2 : i64, box = array<i64: 64, 64>, dtype = "bf16", swizzle = 128 : i64}]
// CHECK: gpu.func @key_loop_kernel0(%{{.*}}: memref<?x128xbf16, {{.*}}>, %{{.*}}: memref<?x128xbf16, {{.*}}>, %{{.*}}: memref<?x128xbf16, {{.*}}>, %{{.*}}: memref<?x128xf32, {{.*}}>, %[[QMAP:.*]]: !llvm.ptr, %[[KMAP:.*]]: !llvm.ptr, %[[VMAP:.*]]: !llvm.ptr)
// CHECK-SAME: tessera.tensor_map_params = 3 : i64
// CHECK: %[[AREA_OFFSET:.*]] = arith.constant 65536 : i64
// CHECK: %[[PHASES:.*]] = memref.alloca() : memref<1xi32>
// CHECK-COUNT-4: tgpu.mbarrier_init %{{.*}} count = 1 : !tgpu.mbarrier
// CHECK: tgpu.fence_mbarrier_init
// CHECK: tgpu.barrier
// CHECK: %[[WORD:.*]] = memref.load %[[PHASES]]
// CHECK: memref.store {{.*}} %[[PHASES]]
// CHECK: scf.if
// CHECK-NEXT: %[[BIT:.*]] = arith.andi %[[WORD]]
// CHECK-NEXT: %[[PARITY:.*]] = arith.xori %[[BIT]]
// CHECK-NEXT: %[[PHASE:.*]] = arith.trunci %[[PARITY]] : i32 to i1
// CHECK-NEXT: %[[QFULL:.*]] = builtin.unrealized_conversion_cast %{{.*}} : i32 to !tgpu.mbarrier
// CHECK-NEXT: tgpu.mbarrier_wait %[[QFULL]], %[[PHASE]] : !tgpu.mbarrier
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK: tgpu.mbarrier_expect_tx %{{.*}} bytes = 16384 : !tgpu.mbarrier
// CHECK: %[[QDESC:.*]] = builtin.unrealized_conversion_cast %[[QMAP]] : !llvm.ptr to !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
// CHECK: tgpu.tma_load %[[QDESC]][%[[ROW:.*]], %c0_i32] into %{{.*}}, %{{.*}} : !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, !tgpu.mbarrier
// CHECK: tgpu.tma_load %[[QDESC]][%[[ROW]], %c64_i32]
// CHECK: builtin.unrealized_conversion_cast %[[KMAP]]
// CHECK: tgpu.tma_load
// CHECK: scf.for
// CHECK: builtin.unrealized_conversion_cast %[[VMAP]]
// CHECK: builtin.unrealized_conversion_cast %[[KMAP]]
// CHECK: tgpu.mbarrier_wait
// PTX-LABEL: gpu.func @key_loop_kernel0
// PTX-SAME: %[[QMAP:[^:]+]]: !llvm.ptr, %[[KMAP:[^:]+]]: !llvm.ptr, %[[VMAP:[^:]+]]: !llvm.ptr)
// PTX-NOT: unrealized_conversion_cast
// PTX-COUNT-4: mbarrier.init.shared::cta.b64 [$0], 1;
// PTX: fence.mbarrier_init.release.cluster;
// PTX: mbarrier.try_wait.parity
// PTX: mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;"{{.*}} : (i32, i32) -> ()
// PTX: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], [$1, {$2, $3}], [$4];"{{.*}}%[[QMAP]]
// PTX: cp.async.bulk.tensor.2d{{.*}}%[[QMAP]]
// PTX: cp.async.bulk.tensor.2d{{.*}}%[[KMAP]]
// PTX: scf.for
// PTX: cp.async.bulk.tensor.2d{{.*}}%[[VMAP]]
// PTX: cp.async.bulk.tensor.2d{{.*}}%[[KMAP]]
// PTX: mbarrier.try_wait.parity
// PTX-NOT: tgpu.mbarrier
// PTX-NOT: tgpu.tma_load
// PTX: gpu.return
// CHECK: nvvm.wgmma.mma_async
// CHECK-NOT: nvvm.cp.async
// CHECK: gpu.return
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

// -----

// A swizzled tile TMA cannot copy (32 columns: not a whole 64-column swizzle block, which
// a box must fill) leaves every copy of the kernel to cp.async: no descriptors, no barriers.
// CHECK-LABEL: func.func @narrow_tiles
// CHECK-NOT: tessera.tensor_maps
// CHECK: gpu.func @narrow_tiles_kernel0
// CHECK-NOT: !llvm.ptr
// CHECK-NOT: mbarrier
// CHECK: tgpu.async_commit_group
// CHECK: nvvm.wgmma.mma_async
// CHECK-NOT: tgpu.tma_load
// CHECK: gpu.return
func.func @narrow_tiles(%q: memref<?x32xbf16, strided<[?, ?], offset: ?>>,
                        %k: memref<?x32xbf16, strided<[?, ?], offset: ?>>,
                        %o: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : memref<?x32xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x32xbf16, strided<[?, ?], offset: ?>> -> tensor<64x32xbf16>
    %kt = tile.load %k[%row, %c0] : memref<?x32xbf16, strided<[?, ?], offset: ?>> -> tensor<64x32xbf16>
    %ktt = tile.trans %kt : tensor<64x32xbf16> -> tensor<32x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x32xbf16>, tensor<32x64xbf16> -> tensor<64x64xf32>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}
