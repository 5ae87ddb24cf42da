// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-async-to-nvvm))' -verify-diagnostics

// A barrier whose address nothing gives (its allocation is not lowered) has no PTX form.
gpu.module @kernels {
  gpu.func @unallocated(%p: i1) kernel {
    %b = tgpu.mbarrier_alloc : !tgpu.mbarrier
    // expected-error @+1 {{'tgpu.mbarrier_wait' op has no NVVM form here: the shared address or descriptor of its '!tgpu.mbarrier' operand is not known (its allocation is not lowered)}}
    tgpu.mbarrier_wait %b, %p : !tgpu.mbarrier
    gpu.return
  }
}

// -----

// The same for a buffer given as a kernel parameter of the tile-level type.
!box = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
!desc = !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
gpu.module @kernels {
  gpu.func @buffer_parameter(%desc: !llvm.ptr, %bar: i32, %k: !box, %i: i32) kernel {
    %b = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !desc
    // expected-error @+1 {{the shared address or descriptor of its '!tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>' operand is not known}}
    tgpu.tma_load %d[%i, %i] into %k, %b : !desc, !box, !tgpu.mbarrier
    gpu.return
  }
}

// -----

// TMA copies of tiles other than 2-D 16-bit ones are not lowered yet.
!box = !tgpu.smem<8x64x64xbf16, #tgpu.shared<none>, mutable>
!desc = !tgpu.tma_desc<8x64x64xbf16, #tgpu.shared<none>>
gpu.module @kernels {
  gpu.func @three_d_box(%desc: !llvm.ptr, %bar: i32, %buf: i32, %i: i32) kernel {
    %b = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier
    %k = builtin.unrealized_conversion_cast %buf : i32 to !box
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !desc
    // expected-error @+2 {{has no NVVM form yet: it copies 2-D tiles of 16-bit elements only}}
    // expected-error @+1 {{failed to legalize operation 'tgpu.tma_load'}}
    tgpu.tma_load %d[%i, %i, %i] into %k, %b : !desc, !box, !tgpu.mbarrier
    gpu.return
  }
}

// -----

!box = !tgpu.smem<32x32xf32, #tgpu.shared<none>, mutable>
!desc = !tgpu.tma_desc<32x32xf32, #tgpu.shared<none>>
gpu.module @kernels {
  gpu.func @f32_box(%desc: !llvm.ptr, %bar: i32, %buf: i32, %i: i32) kernel {
    %b = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier
    %k = builtin.unrealized_conversion_cast %buf : i32 to !box
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !desc
    // expected-error @+2 {{has no NVVM form yet: it copies 2-D tiles of 16-bit elements only}}
    // expected-error @+1 {{failed to legalize operation 'tgpu.tma_load'}}
    tgpu.tma_load %d[%i, %i] into %k, %b : !desc, !box, !tgpu.mbarrier
    gpu.return
  }
}

// -----

!box = !tgpu.smem<32x32xf32, #tgpu.shared<none>, mutable>
!desc = !tgpu.tma_desc<32x32xf32, #tgpu.shared<none>>
gpu.module @kernels {
  gpu.func @f32_store(%desc: !llvm.ptr, %buf: i32, %i: i32) kernel {
    %k = builtin.unrealized_conversion_cast %buf : i32 to !box
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !desc
    // expected-error @+2 {{'tgpu.tma_store' op has no NVVM form yet: it copies 2-D tiles of 16-bit elements only}}
    // expected-error @+1 {{failed to legalize operation 'tgpu.tma_store'}}
    tgpu.tma_store %k to %d[%i, %i] : !box, !desc
    gpu.return
  }
}
