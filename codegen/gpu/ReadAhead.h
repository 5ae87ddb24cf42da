//===- ReadAhead.h - which scalar reads may be made early -------*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_READAHEAD_H
#define TESSERA_CODEGEN_GPU_READAHEAD_H

#include "mlir/IR/Operation.h"

namespace tessera::gpu {
/// Whether `op` is a scalar load from a buffer the kernel never writes (a block list, a
/// table): as safe to make an iteration early as a pure op, given in-bounds indices,
/// which a tile.speculable loop promises at every induction value. Kernels run one after
/// another, so only writes in this grid's kernel count (before outlining, the grids of
/// one function stand for its kernels: an earlier grid's writes are done when this one
/// starts). Read by prefetching (Loops.cpp) and tessera-tgpu-read-ahead.
bool isReadOfInput(mlir::Operation *op);
} // namespace tessera::gpu

#endif
