//===- LoopReadAhead.h - a loop's scalar read, one iteration early -*- C++ -*-===//
#ifndef TESSERA_PASSES_LOOPREADAHEAD_H
#define TESSERA_PASSES_LOOPREADAHEAD_H

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace tessera {
/// Rewrites `loop` so that `read`, a load in its body whose indices follow from the
/// induction variable alone (through pure ops of the body), is made one iteration early:
/// the value for the lower bound is read before the loop and carried first among its
/// values, and each iteration reads the next one's at its top. The read's latency then
/// overlaps an iteration instead of delaying what depends on it (a GPU that prefetches
/// nothing waits on the list entry before it can start the tile's copies). The read must
/// be in bounds for the iteration after the last (as in a tile.speculable loop). Returns
/// the new loop, which replaces `loop`; fails, changing nothing, on another read.
mlir::FailureOr<mlir::scf::ForOp> carryReadAhead(mlir::OpBuilder &b, mlir::scf::ForOp loop,
                                                 mlir::memref::LoadOp read);
} // namespace tessera

#endif
