// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tgpu-outline-kernels=min-blocks=6 -verify-diagnostics
// RUN: not tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tgpu-outline-kernels=min-blocks=33 2>&1 | FileCheck %s --check-prefix=RANGE

// An SM holds at most 32 blocks.
// RANGE: error: min_blocks must be in [0, 32] (blocks per SM), got 33

// Grid sizes the runtime cannot recompute from argument shapes are rejected.
func.func @opaque_grid(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %d = memref.dim %x, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %n = arith.addi %d, %d : index
  // expected-error @+1 {{grid sizes must be ceil or floor of dim(argument) / constant, constants, or products of these}}
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    tile.store %t, %x[%c0, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// expected-error @+1 {{GPU kernels take buffers only; argument of type 'index'}}
func.func @scalar_argument(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>, %n: index) {
  %c0 = arith.constant 0 : index
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    tile.store %t, %x[%c0, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A min_blocks that leaves a thread fewer registers than the two largest product
// accumulators (S 64 x 64 and O 64 x 128 on four warps: 32 + 64) is refused before
// ptxas fails on it.
func.func @register_budget(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{min_blocks = 6 leaves 80 registers a thread (65536 / (6 blocks x 128 threads)), fewer than the 96 its two largest product accumulators hold; use a smaller min_blocks}}
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %qt = tile.load %q[%c0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
    %p = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
    %acc = arith.constant dense<0.0> : tensor<64x128xf32>
    %out = tile.dot %p, %kt, %acc : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
    tile.store %out, %o[%c0, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A function outlined already gains no kernels: its launch record lists them once.
module attributes {gpu.container_module} {
  // expected-error @+1 {{the function has grids left after its kernels were outlined into @outlined_kernels; outline a function once, with all of its grids}}
  func.func @outlined(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
      %t = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
      tile.store %t, %x[%c0, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
    }
    return
  }
  gpu.module @outlined_kernels {
  }
}
