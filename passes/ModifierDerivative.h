//===- ModifierDerivative.h - derivatives of score_mod regions --*- C++ -*-===//
#ifndef TESSERA_PASSES_MODIFIERDERIVATIVE_H
#define TESSERA_PASSES_MODIFIERDERIVATIVE_H

#include "mlir/IR/Region.h"

namespace tessera {
/// Fills the empty region `into` with a scalar region taking the same arguments as
/// `scoreMod` (score, b, h, q_idx, kv_idx) and yielding ∂score_mod/∂score, in forward
/// mode: the region's ops are cloned, each followed by the op(s) of its derivative.
/// Integer and comparison ops carry no derivative; a float op of unknown derivative
/// that depends on the score is an error naming it. The result is inlined over tiles
/// as any modifier region is (inlineModifierElementwise).
mlir::LogicalResult differentiateScoreMod(mlir::Region &scoreMod, mlir::Region &into);
/// The same with respect to the value the table read `read` (a tensor.extract in
/// `scoreMod`) yields: ∂score_mod/∂T[e] at the entry e it reads.
mlir::LogicalResult differentiateScoreModByRead(mlir::Region &scoreMod, mlir::Region &into,
                                               mlir::Operation *read);
/// Fills `into` with a region of `scoreMod`'s arguments yielding index `dim` of the table
/// read `read` (as i32): where that read's gradient goes.
void readIndexRegion(mlir::Region &scoreMod, mlir::Region &into, mlir::Operation *read,
                     unsigned dim);
} // namespace tessera

#endif
