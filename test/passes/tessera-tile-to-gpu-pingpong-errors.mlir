// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize=pingpong=true --tessera-tile-to-gpu

// A bf16 store of P between Q·Kᵀ and P·V goes through a swizzled buffer behind block
// barriers (named barrier 1 over both consumer warpgroups): inside a turn, warpgroup 0
// would wait there for warpgroup 1, itself waiting for warpgroup 0's turn to end.
// Refused at the lowering.
func.func @store_inside_turn(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %o: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                         %p: memref<?x128xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c128 : index
  // expected-error @below {{pingpong: a block barrier among the consumers between their products would deadlock the turns}}
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
      tile.store %pb, %p[%row, %c0] : tensor<128x128xbf16>, memref<?x128xbf16, strided<[?, ?], offset: ?>>
      %next = tile.dot %pb, %vt, %a : tensor<128x128xbf16>, tensor<128x128xbf16> -> tensor<128x128xf32>
      scf.yield %next : tensor<128x128xf32>
    }
    %ob = arith.truncf %acc : tensor<128x128xf32> to tensor<128x128xbf16>
    tile.store %ob, %o[%row, %c0] : tensor<128x128xbf16>, memref<?x128xbf16, strided<[?, ?], offset: ?>>
  }
  return
}
