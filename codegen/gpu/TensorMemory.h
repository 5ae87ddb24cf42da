//===- TensorMemory.h - names shared by the TMA lowering and its passes -*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_TENSORMEMORY_H
#define TESSERA_CODEGEN_GPU_TENSORMEMORY_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"

namespace tessera::gpu {
/// On the host function: the TMA descriptors its kernel takes, as the facade writes them
/// into the launch record (docs/LAUNCH_RECORD.md: argument, dtype, box, swizzle).
constexpr const char kTensorMapsAttr[] = "tessera.tensor_maps";
/// On a kernel: how many of its last parameters are CUtensorMaps (passed by value).
constexpr const char kTensorMapParamsAttr[] = "tessera.tensor_map_params";
/// The launch record gives every kernel of a function the function's descriptors: the
/// kernels of `module` that copy nothing by TMA take them too, unused.
void shareTensorMaps(mlir::func::FuncOp func, mlir::gpu::GPUModuleOp module);
} // namespace tessera::gpu

#endif
