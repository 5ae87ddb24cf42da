// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-sync-to-nvvm))' -verify-diagnostics
// A wait that names its groups orders copies (tokens) this pass does not lower: an
// error at the op, not a wait dropped.

gpu.module @kernels {
  gpu.func @named(%k: memref<?x64xbf16>, %i: index) kernel {
    %buf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    %t = tgpu.async_copy %k[%i, %i] into %buf : memref<?x64xbf16> -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    // expected-error @below {{has no NVVM form yet: its tokens order ops this pass does not lower}}
    %g = tgpu.async_commit_group tokens %t
    // expected-error @below {{has no NVVM form yet: its tokens order ops this pass does not lower}}
    %w = tgpu.async_wait %g pending = 0
    gpu.return
  }
}

// -----

// A product wait holding a tile (tgpu IR before distribution) or naming its product's
// token: the product is not lowered by this pass.
#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
gpu.module @kernels {
  gpu.func @tile_wait(%s: tensor<64x64xf32, #wg>, %i: i32) kernel {
    // expected-error @below {{has no NVVM form: a product wait passes f32 registers only}}
    %w:2 = tgpu.warpgroup_wait %s, %i pending = 0 : tensor<64x64xf32, #wg>, i32
    gpu.return
  }
}
