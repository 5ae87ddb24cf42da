//===- ReadAhead.h - which scalar reads may be made early -------*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_READAHEAD_H
#define TESSERA_CODEGEN_GPU_READAHEAD_H

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Operation.h"

namespace tessera::gpu {
/// Whether `op` is a scalar load from a buffer the kernel never writes (a block list, a
/// table): as safe to make an iteration early as a pure op, given in-bounds indices,
/// which a tile.speculable loop promises at every induction value. Kernels run one after
/// another, so only writes in this grid's kernel count (before outlining, the grids of
/// one function stand for its kernels: an earlier grid's writes are done when this one
/// starts). Read by prefetching (Loops.cpp) and tessera-tgpu-read-ahead.
bool isReadOfInput(mlir::Operation *op);

/// The ops of `loop`'s body that `indices` are computed from, in body order, when they
/// follow from the induction variable alone through ops `allowed` accepts (region-free
/// ones only); fails on a carried value (the next iteration's is not known yet) or an op
/// `allowed` refuses. What makes an index computable an iteration early: read ahead
/// here, prefetched by the lowering (Loops.cpp, prefetchOf).
mlir::FailureOr<llvm::SmallVector<mlir::Operation *>>
indexSlice(mlir::scf::ForOp loop, mlir::ValueRange indices,
           llvm::function_ref<bool(mlir::Operation *)> allowed);
/// The index slice of a copy issued an iteration (or more) early: pure ops of the body,
/// and reads of inputs where the tile builder promises every read of the loop in bounds
/// at any induction value (tile.speculable); no tile-valued op. Read by prefetching
/// (Loops.cpp) and tessera-tgpu-pipeline-loops.
mlir::FailureOr<llvm::SmallVector<mlir::Operation *>> prefetchSlice(mlir::scf::ForOp loop,
                                                                    mlir::ValueRange indices);

/// Whether `a` (in loop `la`) and `b` (in loop `lb`) compute the same function of their
/// loops' induction variables (a loop continuing another's prefetches reads the same
/// tiles at the same induction values).
bool sameFunctionOfIv(mlir::Value a, mlir::scf::ForOp la, mlir::Value b, mlir::scf::ForOp lb);
} // namespace tessera::gpu

#endif
