//===- TensorMemory.h - names shared by the TMA lowering and its passes -*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_TENSORMEMORY_H
#define TESSERA_CODEGEN_GPU_TENSORMEMORY_H

#include "mlir/IR/Types.h"
#include "llvm/ADT/SmallVector.h"

namespace tessera::tile {
class GridOp;
}

namespace tessera::gpu {
/// On the host function: the TMA descriptors its kernel takes, as the facade writes them
/// into the launch record (docs/LAUNCH_RECORD.md: argument, dtype, box, swizzle).
constexpr const char kTensorMapsAttr[] = "tessera.tensor_maps";
/// On a kernel: how many of its last parameters are CUtensorMaps (passed by value).
constexpr const char kTensorMapParamsAttr[] = "tessera.tensor_map_params";
/// A CUtensorMap a function's kernels take: one per (source argument, tile rows).
struct TensorMapSpec {
  unsigned argument;
  int64_t rows;
  llvm::SmallVector<int64_t> box; // outermost first: [1, ..., rows, 64]
  mlir::Type elem;
};
/// The descriptors a tgpu.tensor_copies grid copies its swizzled tiles through, in
/// parameter order (tessera-tgpu-outline-kernels appends them to every kernel of the
/// function; the distributor's copies read them).
llvm::SmallVector<TensorMapSpec> tensorMapsOf(tessera::tile::GridOp grid);
} // namespace tessera::gpu

#endif
