//===- TileLoopAttrs.h - what tile builders promise about their loops -*- C++ -*-===//
//
// Discardable attributes a tile builder sets on the scf.for loops of a tile program
// for a target lowering to read, so that what a loop's shape promises is written in the
// IR instead of being inferred from it (docs/RationaleTile.md, "Loop attributes").
// Targets that ignore them lower the same program; a loop without one promises nothing.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_PASSES_TILELOOPATTRS_H
#define TESSERA_PASSES_TILELOOPATTRS_H

#include "llvm/ADT/StringRef.h"

namespace tessera::tile_loop {
/// Unit: this loop continues the loop right before it (the masked / unmasked / masked
/// split of one key range): it starts where that one ends, with the same step, and
/// loads the same tiles as the same function of its induction variable, so one
/// software pipeline may run on across both.
inline constexpr llvm::StringLiteral kContinuesPrevious = "tile.continues_previous";
/// Unit: wherever the loop is reached, every read in its body, index computations
/// included, is in bounds at any induction value from the lower bound on (list places
/// and tiles are clamped), so a pipeliner may issue the reads of iterations past the
/// upper bound. (A list walk that might run no iteration sits under a guard, total > 0:
/// a pipeliner issues the first iteration's reads before the loop.)
inline constexpr llvm::StringLiteral kSpeculable = "tile.speculable";
} // namespace tessera::tile_loop

#endif
