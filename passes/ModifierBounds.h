//===- ModifierBounds.h - a mask_mod's verdict over a box of indices -*- C++ -*-===//
#ifndef TESSERA_PASSES_MODIFIERBOUNDS_H
#define TESSERA_PASSES_MODIFIERBOUNDS_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace tessera {
/// Whether a mask keeps every pair of a box of its arguments, or none: i1 scalars.
struct BoxVerdict {
  mlir::Value keepsAll, keepsNone;
};

/// Emits scalar code that decides a mask_mod region over the box where argument k
/// ranges over [lo_k, hi_k] (`ranges`, i32 scalars, inclusive) by interval arithmetic:
/// `keepsAll` / `keepsNone` are true only when that holds for every point of the box.
/// Values it cannot bound (reads of captured tables, floats, remainders, products of two
/// ranges, '|', '^', '<<') are unknown, and comparisons of unknowns decide nothing, so both verdicts may
/// be false: the caller then evaluates the mask element-wise.
/// `tableRange`, when given, bounds a read of a captured integer table whose indices lie
/// in the given ranges (index or i32, inclusive): the range of the values read, or null
/// values where it cannot (the read stays unknown).
using TableReadRange = llvm::function_ref<std::pair<mlir::Value, mlir::Value>(
    mlir::Operation *read, llvm::ArrayRef<std::pair<mlir::Value, mlir::Value>> indexRanges)>;
BoxVerdict boundMaskOverBox(mlir::ImplicitLocOpBuilder &b, mlir::Region &region,
                            llvm::ArrayRef<std::pair<mlir::Value, mlir::Value>> ranges,
                            TableReadRange tableRange = nullptr);
} // namespace tessera

#endif
