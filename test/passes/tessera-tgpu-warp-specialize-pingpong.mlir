// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize=pingpong=true | FileCheck %s --check-prefix=SPLIT
// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize=pingpong=true --tessera-tile-to-gpu | tessera-opt -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=GPU

// tessera-tgpu-warp-specialize{pingpong=true} marks the split of a grid of two consumer
// warpgroups (block_m 128, num_warps 8) with tgpu.pingpong. tessera-tile-to-gpu lowers
// the turns: warpgroup 1 arrives on named barrier 2 at entry; in the key loop each
// warpgroup waits on its own barrier (2 + g) right before Q·Kᵀ and arrives on the
// other's (3 - g) right after P·V is issued, before it is waited for; at exit warpgroup
// 0 waits on barrier 2 once more. All of 256 threads (the consumers').
// SPLIT-LABEL: func.func @two_consumers
// SPLIT: tgpu.warp_specialize num_warps = [4] registers = [24] default_registers = 240 attributes {tgpu.pingpong} default {
// GPU-LABEL: func.func @two_consumers
// GPU: nvvm.setmaxregister increase 240
// GPU-NEXT: %[[WG1:.*]] = arith.cmpi eq, %[[WARPGROUP:[^,]+]], %c1
// GPU-NEXT: scf.if %[[WG1]] {
// GPU-NEXT: tgpu.named_barrier_arrive %c2_i32 threads = 256
// GPU-NEXT: }
// GPU: scf.for
// GPU: %[[OWN:.*]] = arith.addi {{.*}}%c2_i32{{.*}} : i32
// GPU-NEXT: tgpu.named_barrier %[[OWN]] threads = 256
// GPU-NOT: tgpu.named_barrier
// GPU: nvvm.wgmma.mma_async
// GPU-NOT: tgpu.named_barrier
// GPU: wgmma.mma_async.sync.aligned.m64n128k16
// GPU: nvvm.wgmma.commit.group.sync.aligned
// GPU-NEXT: arith.index_castui
// GPU-NEXT: %[[OTHER:.*]] = arith.subi %c3_i32, %{{.*}} : i32
// GPU-NEXT: tgpu.named_barrier_arrive %[[OTHER]] threads = 256
// GPU-NEXT: tgpu.warpgroup_wait {{.*}}pending = 0
// GPU: scf.yield
// GPU: %[[WG0:.*]] = arith.cmpi eq, %[[WARPGROUP]], %c0
// GPU-NEXT: scf.if %[[WG0]] {
// GPU-NEXT: tgpu.named_barrier %c2_i32 threads = 256
// GPU-NEXT: }
// GPU: gpu.return
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

// One consumer warpgroup (block_m 64, num_warps 4): no turns to take.
func.func @one_consumer(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                        %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                        %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                        %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-error @below {{pingpong takes turns between two consumer warpgroups (block_m 128, num_warps 8); this grid has 1}}
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
