//===- LayoutAssignment.h - a layout for every tile value -------*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_LAYOUTASSIGNMENT_H
#define TESSERA_CODEGEN_GPU_LAYOUTASSIGNMENT_H

#include "codegen/gpu/Layouts.h"
#include "dialect/tile/TileDialect.h"
#include "llvm/ADT/DenseMap.h"

namespace tessera::gpu {
/// True for tiles that hold one value everywhere (splat constants, tensor.splat).
bool isSplat(mlir::Value v);
/// Assigns a distributed layout to every non-splat tile value in `grid`'s body; emits an
/// error on the op whose tile gets none.
/// Row-distributed tiles are spread over `numWarps` warps.
mlir::LogicalResult assignLayouts(tile::GridOp grid, int64_t numWarps,
                                  llvm::DenseMap<mlir::Value, Layout> &layouts);
} // namespace tessera::gpu

#endif
