// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-persistent-grid --tessera-tgpu-assign-stages --tessera-tile-to-gpu=tma=true

// Persistent grids do not take TMA copies yet: refused, not miscompiled.
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @with_tma(%q: !in, %k: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-error @+1 {{persistent grids do not take tma yet}}
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16>
    %kt = tile.load %k[%row, %c0] : !in -> tensor<64x128xbf16>
    %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
    %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %vt = tile.load %k[%row, %c0] : !in -> tensor<64x128xbf16>
    %acc = tile.dot %pb, %vt, %acc0 : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, !out
  }
  return
}

// -----

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

