// RUN: tessera-opt %s -split-input-file --tessera-tile-to-gpu -verify-diagnostics

// Kernels outlined by hand (or changed after tessera-tgpu-outline-kernels) whose launch
// attributes the lowering cannot follow.

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
// The block is smaller than the grid's warps.
module attributes {gpu.container_module} {
  gpu.module @kernels {
    // expected-error @+1 {{the kernel launches 64 threads; its lowering needs 128 (tessera-tgpu-outline-kernels sizes the block)}}
    gpu.func @copy(%x: memref<?x64xf32, strided<[?, 1], offset: ?>>) kernel attributes {known_block_size = array<i32: 64, 1, 1>} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.shared_bytes = 0 : i64} {
        %t = tile.load %x[%c0, %c0] : memref<?x64xf32, strided<[?, 1], offset: ?>> -> tensor<64x64xf32, #acc>
        tile.store %t, %x[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32, strided<[?, 1], offset: ?>>
      }
      gpu.return
    }
  }
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
// One grid a kernel.
module attributes {gpu.container_module} {
  gpu.module @kernels {
    // expected-error @+1 {{a kernel holds one tile.grid (tessera-tgpu-outline-kernels)}}
    gpu.func @copies(%x: memref<?x64xf32, strided<[?, 1], offset: ?>>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.shared_bytes = 0 : i64} {
        %t = tile.load %x[%c0, %c0] : memref<?x64xf32, strided<[?, 1], offset: ?>> -> tensor<64x64xf32, #acc>
        tile.store %t, %x[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32, strided<[?, 1], offset: ?>>
      }
      tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.shared_bytes = 0 : i64} {
        %t = tile.load %x[%c0, %c0] : memref<?x64xf32, strided<[?, 1], offset: ?>> -> tensor<64x64xf32, #acc>
        tile.store %t, %x[%c0, %c0] : tensor<64x64xf32, #acc>, memref<?x64xf32, strided<[?, 1], offset: ?>>
      }
      gpu.return
    }
  }
}

// -----

// A TMA grid whose kernel lacks the descriptor parameters.
module attributes {gpu.container_module} {
  gpu.module @scores_kernels {
    // expected-error @+1 {{a tgpu.tensor_copies kernel takes its 2 tensor maps as its last parameters (tessera.tensor_map_params; tessera-tgpu-outline-kernels)}}
    gpu.func @scores_kernel0(%arg0: memref<?x64xbf16, strided<[?, 1], offset: ?>>, %arg1: memref<?x64xbf16, strided<[?, 1], offset: ?>>, %arg2: memref<?xf32, strided<[1], offset: ?>>) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
      %c0 = arith.constant 0 : index
      %dim = memref.dim %arg0, %c0 : memref<?x64xbf16, strided<[?, 1], offset: ?>>
      %c64 = arith.constant 64 : index
      %0 = arith.ceildivsi %dim, %c64 : index
      tile.grid[%0] config = <block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, tgpu.num_stages = 1 : i64, tgpu.operands_staged, tgpu.shared_bytes = 16400 : i64, tgpu.shared_offset = array<i64: 16384>, tgpu.tensor_copies} {
        %1 = tile.program_id 0 : index
        %2 = arith.muli %1, %c64 : index
        %3 = tile.load %arg0[%2, %c0] {tgpu.shared_offset = array<i64: 0>, tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<?x64xbf16, strided<[?, 1], offset: ?>> -> tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>
        %4 = tile.load %arg1[%c0, %c0] {tgpu.shared_offset = array<i64: 8192>, tgpu.staged = #tgpu.shared<swizzle_128b>} : memref<?x64xbf16, strided<[?, 1], offset: ?>> -> tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, transposed = true>>
        %5 = tile.trans %4 : tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, transposed = true>> -> tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>>
        %cst = arith.constant dense<0.000000e+00> : tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
        %6 = tile.dot %3, %5, %cst : tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>, tensor<64x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>> -> tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
        %7 = tile.reduce <max> %6 axis 1 : tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>> -> tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>>
        tile.store %7, %arg2[%2] : tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>>, memref<?xf32, strided<[1], offset: ?>>
      }
      gpu.return
    }
  }
}

