// RUN: tessera-opt %s -split-input-file --tessera-check-gpu-input -verify-diagnostics | FileCheck %s

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

// A constant dim index outside the operand verifies (undefined at run time), but crashed
// canonicalization in the kernel module: refused first (found by IR mutation fuzzing).
func.func @negative_dim(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %cm1 = arith.constant -1 : index
  // expected-error @+1 {{dimension index -1 is outside the rank of 'memref<?x64xbf16, strided<[?, ?], offset: ?>>' (0 .. 1)}}
  %n = memref.dim %x, %cm1 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    tile.store %t, %x[%c0, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

func.func @dim_past_rank(%x: tensor<?x64xf32>) -> index {
  %c2 = arith.constant 2 : index
  // expected-error @+1 {{dimension index 2 is outside the rank of 'tensor<?x64xf32>' (0 .. 1)}}
  %n = tensor.dim %x, %c2 : tensor<?x64xf32>
  return %n : index
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
