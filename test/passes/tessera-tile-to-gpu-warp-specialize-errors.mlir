// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tile-to-gpu

// The producer copies by TMA: without tessera-tgpu-stage-operands{tma=true} no grid is
// marked tgpu.tensor_copies, and nothing is split (the kernel keeps cp.async).
func.func @without_tma(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                       %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                       %o: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-remark @below {{not warp-specialised: no grid of the function copies its operands by TMA (tessera-tgpu-stage-operands{tma=true} marks one tgpu.tensor_copies where TMA can copy every swizzled tile)}}
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %kt = tile.load %k[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}
