//===- TensorMemory.h - names shared by the TMA lowering and its passes -*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_TENSORMEMORY_H
#define TESSERA_CODEGEN_GPU_TENSORMEMORY_H

namespace tessera::gpu {
/// On the host function: the TMA descriptors its kernel takes, as the facade writes them
/// into the launch record (docs/LAUNCH_RECORD.md: argument, dtype, box, swizzle).
constexpr const char kTensorMapsAttr[] = "tessera.tensor_maps";
/// On a kernel: how many of its last parameters are CUtensorMaps (passed by value).
constexpr const char kTensorMapParamsAttr[] = "tessera.tensor_map_params";
} // namespace tessera::gpu

#endif
