// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' -verify-diagnostics
// What has no per-thread form is an error at the op, not a kernel half lowered.

// A tile without a register layout (tessera-tile-to-tgpu not run).
gpu.module @kernels {
  gpu.func @no_layout(%a: tensor<64xf32>) kernel {
    // expected-error @below {{has no per-thread form: its result is not one tile with a #tgpu register layout}}
    %s = arith.addf %a, %a : tensor<64xf32>
    gpu.return
  }
}

// -----

// A constant tile whose elements differ: no thread holds it as one scalar per slot.
gpu.module @kernels {
  gpu.func @not_splat() kernel {
    // expected-error @below {{has no per-thread form: a tile constant that is not a splat}}
    %c = arith.constant dense<[1.0, 2.0]> : tensor<2xf32, #tgpu.whole>
    gpu.return
  }
}

// -----

// A broadcast along rows reads the row slice (#tgpu.slice<dim = 1>), not the columns'.
gpu.module @kernels {
  gpu.func @wrong_slice(%c: tensor<64xf32, #tgpu.slice<dim = 0, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) kernel {
    // expected-error @below {{has no per-thread form: a broadcast makes an accumulator or row-span tile from the slice of its rows (axis 1) or columns (axis 0)}}
    %b = tile.broadcast %c axis 1 : tensor<64xf32, #tgpu.slice<dim = 0, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>> -> tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
    gpu.return
  }
}

// -----

// Into a left operand's layout: a broadcast makes accumulator and row-span tiles only.
gpu.module @kernels {
  gpu.func @into_operand(%r: tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) kernel {
    // expected-error @below {{has no per-thread form: a broadcast makes an accumulator or row-span tile}}
    %b = tile.broadcast %r axis 1 : tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>> -> tensor<64x16xf32, #tgpu.dot_operand<a, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
    gpu.return
  }
}

// -----

// An accumulator over its rows crosses warps (shared memory): not a per-thread pattern.
gpu.module @kernels {
  gpu.func @across_warps(%t: tensor<64x16xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) kernel {
    // expected-error @below {{has no per-thread form: only a reduction along the rows of an accumulator or row-span tile into its row slice stays within a warp}}
    %c = tile.reduce <sum> %t axis 0 : tensor<64x16xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>> -> tensor<16xf32, #tgpu.slice<dim = 0, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
    gpu.return
  }
}

// -----

// A conversion that moves elements between threads (rows to columns) goes through
// shared memory: not a per-thread pattern.
gpu.module @kernels {
  gpu.func @between_threads(%r: tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) kernel {
    // expected-error @below {{has no per-thread form: only an accumulator read as a left operand of its shape converts in registers}}
    %c = tgpu.convert_layout %r : tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>> -> tensor<64xf32, #tgpu.slice<dim = 0, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
    gpu.return
  }
}

// -----

// A tile passed to a function: tiles are per-thread slots inside a kernel.
gpu.module @kernels {
  // expected-error @below {{has no per-thread form: argument #0 is a tile}}
  gpu.func @tile_argument(%t: tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) kernel {
    %s = arith.addf %t, %t : tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
    gpu.return
  }
}
