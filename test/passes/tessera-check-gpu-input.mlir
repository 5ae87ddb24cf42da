// RUN: tessera-opt %s -split-input-file --tessera-check-gpu-tiles -verify-diagnostics | FileCheck %s

// A tile no SM can hold is refused before distribution (the GPU pipeline ran for
// minutes on a 1024 x 1024 tile, found by IR mutation fuzzing).
func.func @too_big(%x: memref<?x1024xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    // expected-error @+1 {{tile 'tensor<1024x1024xf32>' holds more than a GPU block can keep on chip (at most 256 KiB a tile, an SM's register file)}}
    %v = tensor.splat %f : tensor<1024x1024xf32>
    tile.store %v, %x[%c0, %c0] : tensor<1024x1024xf32>, memref<?x1024xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// 256 KiB exactly (a 256 x 256 f32 linear-attention state) passes.
// CHECK-LABEL: func.func @largest
// CHECK: tensor.splat {{.*}} : tensor<256x256xf32>
func.func @largest(%x: memref<?x256xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %v = tensor.splat %f : tensor<256x256xf32>
    tile.store %v, %x[%c0, %c0] : tensor<256x256xf32>, memref<?x256xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A head dim of 2^31 from attn IR: refused in the GPU pipeline, not minutes of work.
// RUN: not tessera-opt %s -split-input-file --pass-pipeline='builtin.module(tessera-gpu)' 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: error: tile 'tensor<64x2147483648xbf16>' holds more than a GPU block can keep on chip
func.func @huge_head(%q: tensor<?x?x?x2147483648xbf16>, %k: tensor<?x?x?x2147483648xbf16>,
                     %v: tensor<?x?x?x2147483648xbf16>)
    -> (tensor<?x?x?x2147483648xbf16>, tensor<?x?x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
      : tensor<?x?x?x2147483648xbf16>, tensor<?x?x?x2147483648xbf16>, tensor<?x?x?x2147483648xbf16>
      -> tensor<?x?x?x2147483648xbf16>, tensor<?x?x?xf32>
  return %o, %lse : tensor<?x?x?x2147483648xbf16>, tensor<?x?x?xf32>
}
