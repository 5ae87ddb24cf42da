//===- ModifierInlining.h - scalar modifier regions over tiles --*- C++ -*-===//
#ifndef TESSERA_PASSES_MODIFIERINLINING_H
#define TESSERA_PASSES_MODIFIERINLINING_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/IRMapping.h"

namespace tessera {
/// Clones the scalar body of a modifier region (score_mod, mask_mod) once, element-wise
/// over tiles of `shape`: block argument i becomes `argTiles[i]`, scalar ops become their
/// tensor forms, and reads of captured tensors (any rank) become tile.gather from their buffers
/// in `buffers`. Splat and broadcast arguments stay scalars and row / column vectors as
/// long as the ops on them allow. Returns the tile the region yields.
mlir::FailureOr<mlir::Value>
inlineModifierElementwise(mlir::ImplicitLocOpBuilder &b, mlir::Region &region,
                          mlir::ArrayRef<mlir::Value> argTiles,
                          mlir::ArrayRef<int64_t> shape, const mlir::IRMapping &buffers);
} // namespace tessera

#endif
