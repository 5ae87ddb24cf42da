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
