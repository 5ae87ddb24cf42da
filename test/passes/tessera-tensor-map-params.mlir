// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-tensor-map-params))' -verify-diagnostics | FileCheck %s

// The last `tessera.tensor_map_params` parameters of a kernel become 128-byte byval grid
// constants aligned to 64 (PTX `.param .align 64 .b8 p[128]`); the count is dropped,
// the other parameters are left alone.
// CHECK-LABEL: llvm.func @kernel(
// CHECK-SAME: %{{[a-z0-9_]+}}: !llvm.ptr, %{{[a-z0-9_]+}}: i64,
// CHECK-SAME: %{{[a-z0-9_]+}}: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<128 x i8>, nvvm.grid_constant},
// CHECK-SAME: %{{[a-z0-9_]+}}: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<128 x i8>, nvvm.grid_constant})
// CHECK-NOT: tessera.tensor_map_params
// CHECK-LABEL: llvm.func @plain(
// CHECK-SAME: %{{[a-z0-9_]+}}: !llvm.ptr)
module attributes {gpu.container_module} {
  gpu.module @kernels {
    llvm.func @kernel(%buffer: !llvm.ptr, %size: i64, %q: !llvm.ptr, %k: !llvm.ptr)
        attributes {gpu.kernel, nvvm.kernel, tessera.tensor_map_params = 2 : i64} {
      llvm.return
    }
    llvm.func @plain(%buffer: !llvm.ptr) attributes {gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    // expected-error @+1 {{tessera.tensor_map_params: 3 descriptors, but the kernel has 2 parameters}}
    llvm.func @too_many(%q: !llvm.ptr, %k: !llvm.ptr)
        attributes {gpu.kernel, nvvm.kernel, tessera.tensor_map_params = 3 : i64} {
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    // expected-error @+1 {{tessera.tensor_map_params: parameter 1 is not a pointer}}
    llvm.func @not_a_pointer(%q: !llvm.ptr, %size: i64)
        attributes {gpu.kernel, nvvm.kernel, tessera.tensor_map_params = 1 : i64} {
      llvm.return
    }
  }
}
