// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu -verify-diagnostics

// A tile no layout can hold is reported at the op that makes it: an accumulator of 32
// rows cannot be spread over 4 warps of 16-row blocks (the first tile
// of that shape is named: the product's left operand).
func.func @short_accumulator(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                             %y: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    // expected-error @+1 {{a tile of 32 rows cannot be spread over 4 warps in 16-row blocks (rows must be 16 x num_warps x m)}}
    %a = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<32x64xbf16>
    %b = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %z = arith.constant dense<0.0> : tensor<32x64xf32>
    %s = tile.dot %a, %b, %z : tensor<32x64xbf16>, tensor<64x64xbf16> -> tensor<32x64xf32>
    tile.store %s, %y[%c0, %c0] : tensor<32x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Tile shapes follow block_m: it must be 16 x num_warps x (1, 2 or 4).
func.func @block_m(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{the GPU target needs block_m = 16 x num_warps x (1, 2 or 4), got block_m = 32, num_warps = 4}}
  tile.grid [%c1] config = #tile.config<block_m = 32, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<32x64xbf16>
    tile.store %t, %x[%c0, %c0] : tensor<32x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A column slice needs whole 8-column blocks: 4 columns summed over the rows cannot be
// spread over a warp's lanes.
func.func @narrow_column_slice(%x: memref<?x4xf32, strided<[?, ?], offset: ?>>,
                               %y: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    // expected-error @+1 {{a tile of 4 columns cannot be spread over a warp's lanes (columns must be a multiple of 8)}}
    %t = tile.load %x[%c0, %c0] : memref<?x4xf32, strided<[?, ?], offset: ?>> -> tensor<64x4xf32>
    %r = tile.reduce <sum> %t axis 0 : tensor<64x4xf32> -> tensor<4xf32>
    tile.store %r, %y[%c0] : tensor<4xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}
