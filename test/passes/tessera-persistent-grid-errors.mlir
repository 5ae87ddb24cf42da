// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-persistent-grid --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tile-to-gpu

// A hand-written tgpu.persistent grid must have one size (its work items).
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @two_sizes(%q: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-error @+1 {{a tgpu.persistent grid has one size}}
  tile.grid [%tiles, %tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.persistent} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16>
    %ext = arith.extf %qt : tensor<64x128xbf16> to tensor<64x128xf32>
    tile.store %ext, %o[%row, %c0] : tensor<64x128xf32>, !out
  }
  return
}

