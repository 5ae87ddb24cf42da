//===- KernelOutlining.h - grids into kernels with their launch record -*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_KERNELOUTLINING_H
#define TESSERA_CODEGEN_GPU_KERNELOUTLINING_H

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::func {
class FuncOp;
}
namespace tessera::tile {
class GridOp;
}

namespace tessera::gpu {
/// The kernel made of the `index`-th tile.grid of `func`, and the gpu.module holding
/// `func`'s kernels.
std::string kernelName(mlir::func::FuncOp func, unsigned index);
std::string kernelModuleName(mlir::func::FuncOp func);

/// tessera-tgpu-outline-kernels on `top`: every tile.grid of a function becomes a
/// gpu.func holding it, with the host values it reads recomputed from the kernel's
/// arguments, its launch attributes (block size, .minnctapersm, .maxnreg, descriptor
/// parameters) and the function's launch record (tessera.launches, tessera.workspaces,
/// tessera.tensor_maps). Grids not staged, planned or scheduled yet (hand-written tgpu
/// IR) are, by the passes' own code. `minBlocks`: the blocks per SM each kernel's
/// registers must leave room for (0: the stage plan's).
mlir::LogicalResult outlineKernels(mlir::ModuleOp top, int64_t minBlocks);

/// Fails, located, where `grid` has no GPU layouts to lower (no accumulator, a tile
/// without a #tgpu encoding).
mlir::LogicalResult checkGridLayouts(tile::GridOp grid);
} // namespace tessera::gpu

#endif // TESSERA_CODEGEN_GPU_KERNELOUTLINING_H
