// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s

// tessera-tile-to-gpu lowers tgpu.warp_specialize (tessera-tgpu-warp-specialize's split
// of @key_loop): the block is the consumers' 128 threads and a producer warpgroup after
// them (launch record and known_block_size 256), ptxas caps registers at 128 at entry
// (two such blocks an SM).
// Barriers: one full barrier (one arrival: the producer's arrive.expect_tx) and one empty
// barrier (one arrival per consumer warp: 4) per stage of Q (1), K (2) and V (2), set up
// by one thread before a block-wide barrier. Threads 128.. lower their registers to 40
// and thread 128 alone runs the producer: Q, then per key tile K and V, each a wait on
// the slot's empty barrier, arrive.expect_tx on its full one and two 64-column boxes.
// The consumers raise theirs to 216, wait on full barriers where products read the
// tiles, and give a slot back (sync the warp, arrive from lane 0) right after the op
// that waits for its last product; block barriers among them are named barrier 1 of
// 128 threads.
// CHECK-LABEL: func.func @key_loop
// CHECK-SAME: tessera.launches = [{block = 256 : i64
// CHECK: gpu.func @key_loop_kernel0
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>, nvvm.maxnreg = 128 : i32
// CHECK: tgpu.mbarrier_init %{{.*}} count = 1 :
// CHECK-NEXT: arith.addi
// CHECK-NEXT: builtin.unrealized_conversion_cast
// CHECK-NEXT: tgpu.mbarrier_init %{{.*}} count = 4 :
// CHECK-COUNT-2: tgpu.mbarrier_init %{{.*}} count = 1 :
// CHECK-COUNT-2: tgpu.mbarrier_init %{{.*}} count = 4 :
// CHECK-COUNT-2: tgpu.mbarrier_init %{{.*}} count = 1 :
// CHECK-COUNT-2: tgpu.mbarrier_init %{{.*}} count = 4 :
// CHECK: tgpu.fence_mbarrier_init
// CHECK: tgpu.barrier
// CHECK: %[[PRODUCER:.*]] = arith.cmpi uge, %{{.*}}, %c128
// CHECK: scf.if %[[PRODUCER]] {
// CHECK-NEXT: nvvm.setmaxregister decrease 40
// CHECK-NEXT: %[[ISSUER:.*]] = arith.cmpi eq, %{{.*}}, %c128
// CHECK-NEXT: scf.if %[[ISSUER]] {
// CHECK: tgpu.mbarrier_wait
// CHECK: tgpu.mbarrier_expect_tx
// CHECK-COUNT-2: tgpu.tma_load
// CHECK: scf.for
// CHECK: tgpu.mbarrier_wait
// CHECK: tgpu.mbarrier_expect_tx
// CHECK-COUNT-2: tgpu.tma_load
// CHECK: tgpu.mbarrier_wait
// CHECK: tgpu.mbarrier_expect_tx
// CHECK-COUNT-2: tgpu.tma_load
// CHECK: } else {
// CHECK-NEXT: nvvm.setmaxregister increase 216
// CHECK-NOT: tgpu.tma_load
// CHECK: scf.for
// CHECK: tgpu.mbarrier_wait
// CHECK: nvvm.wgmma.mma_async
// Early release: K's slot goes back once Q·Kᵀ is waited for (by its first reader, the
// truncf), before V is even waited for; V's after P·V; Q's after the loop.
// CHECK: tgpu.warpgroup_wait {{.*}}pending = 0
// CHECK: arith.truncf
// CHECK: nvvm.bar.warp.sync
// CHECK-NEXT: %[[LANE0:.*]] = arith.cmpi eq, %{{.*}}, %c0 : index
// CHECK-NOT: tgpu.mbarrier_
// CHECK: tgpu.mbarrier_arrive %{{.*}} if %[[LANE0]] : !tgpu.mbarrier
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: tgpu.mbarrier_wait
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: wgmma.mma_async.sync.aligned.m64n128k16
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: tgpu.warpgroup_wait {{.*}}pending = 0
// CHECK: nvvm.bar.warp.sync
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: tgpu.mbarrier_arrive %{{.*}} if %{{.*}} : !tgpu.mbarrier
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: scf.yield
// CHECK: nvvm.bar.warp.sync
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: tgpu.mbarrier_arrive %{{.*}} if %{{.*}} : !tgpu.mbarrier
// CHECK-NOT: tgpu.barrier
// CHECK-NOT: tgpu.tma_load
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

// Two consumer warpgroups (block_m 128, 8 warps) with a bf16 output stored through a
// swizzled buffer: 384 threads, 168 registers at entry (FlashAttention-3's 3 x 128-thread
// budget), producer 24, consumers 240; empty barriers count 8 warps; the output's block
// barriers are named barrier 1 of the consumers' 256 threads.
// CHECK-LABEL: func.func @two_consumers
// CHECK-SAME: tessera.launches = [{block = 384 : i64
// CHECK: gpu.func @two_consumers_kernel0
// CHECK-SAME: known_block_size = array<i32: 384, 1, 1>, nvvm.maxnreg = 168 : i32
// CHECK: tgpu.mbarrier_init %{{.*}} count = 8 :
// CHECK: arith.cmpi uge, %{{.*}}, %c256
// CHECK: nvvm.setmaxregister decrease 24
// CHECK: nvvm.setmaxregister increase 240
// CHECK: tgpu.named_barrier %{{.*}} threads = 256
// CHECK: tgpu.named_barrier %{{.*}} threads = 256
// CHECK: vector.store
// CHECK: gpu.return
func.func @two_consumers(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %o: memref<?x128xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c128 : index
  tile.grid [%tiles] config = #tile.config<block_m = 128, block_n = 128, num_warps = 8, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c128 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<128x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<128x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %zero) -> (tensor<128x128xf32>) {
      %n0 = arith.muli %t, %c128 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<128x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<128x128xbf16>
      %ktt = tile.trans %kt : tensor<128x128xbf16> -> tensor<128x128xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<128x128xbf16>, tensor<128x128xbf16> -> tensor<128x128xf32>
      %pb = arith.truncf %s : tensor<128x128xf32> to tensor<128x128xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<128x128xbf16>, tensor<128x128xbf16> -> tensor<128x128xf32>
      scf.yield %next : tensor<128x128xf32>
    }
    %ob = arith.truncf %acc : tensor<128x128xf32> to tensor<128x128xbf16>
    tile.store %ob, %o[%row, %c0] : tensor<128x128xbf16>, memref<?x128xbf16, strided<[?, ?], offset: ?>>
  }
  return
}


// -----

// A key tile read only in a branch (a block-list entry the consumers may skip): after the
// branch, each consumer waits for the slot's fill (its full barrier's parity) before
// giving the slot back, so a skipped fill cannot share a phase with the slot's next one.
// CHECK-LABEL: func.func @skipped_tiles
// CHECK: nvvm.setmaxregister increase 216
// CHECK: scf.for
// CHECK: scf.if
// CHECK: wgmma.mma_async
// CHECK: scf.yield
// CHECK: } else {
// CHECK: scf.yield
// CHECK: }
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: tgpu.mbarrier_wait
// CHECK-NOT: tgpu.mbarrier_arrive
// CHECK: tgpu.mbarrier_wait
// CHECK-NEXT: nvvm.bar.warp.sync
// CHECK-NOT: tgpu.mbarrier_wait
// CHECK: tgpu.mbarrier_arrive %{{.*}} if %{{.*}} : !tgpu.mbarrier
// CHECK-NOT: tgpu.mbarrier_wait
// CHECK: tgpu.mbarrier_arrive %{{.*}} if %{{.*}} : !tgpu.mbarrier
// CHECK-NEXT: scf.yield
func.func @skipped_tiles(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
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
      %keep = arith.cmpi ule, %t, %i : index
      %next = scf.if %keep -> (tensor<64x128xf32>) {
        %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
        %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
        %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
        %pv = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
        scf.yield %pv : tensor<64x128xf32>
      } else {
        scf.yield %a : tensor<64x128xf32>
      }
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}
