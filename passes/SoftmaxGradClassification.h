//===- SoftmaxGradClassification.h - the backward's tile lists --*- C++ -*-===//
//
// The softmax backward's mask_mod classification (SoftmaxGradClassification.cpp): a
// grid classes every (query tile, key tile) pair the causal / window bounds leave as
// empty, partial or kept whole by the mask, and two grids turn those classes into the
// lists the gradient grids walk: per query tile its key tiles (dQ), and transposed, per
// key tile the query tiles that see any of it (dK / dV). docs/ARCHITECTURE.md says why
// the backward classifies on its own rather than reading the forward's lists.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_PASSES_SOFTMAXGRADCLASSIFICATION_H
#define TESSERA_PASSES_SOFTMAXGRADCLASSIFICATION_H

#include "passes/TileBuilder.h"

#include "dialect/attn/AttnDialect.h"
#include "mlir/IR/IRMapping.h"

namespace tessera {
/// Per (query tile, key tile) class of a mask_mod: 0 nothing kept, 1 part, 2 every pair
/// the tile holds (rows and keys past the ends count as kept for "every").
struct GradTileClasses {
  mlir::Value classes; // [batches, heads, ceil(Nq / block_m) x block_m / rows, (keys)]
  int64_t rows = 0;    // queries per class (divides both grids' query tiles)
  int64_t keys = 0;    // keys per class (divides both grids' key tiles)
  bool perBatch = false, perHead = false; // else one class table for all of them
};

/// Per tile of one gradient grid (its program's tile), the tiles of the other dimension
/// it must visit: entry 2 t + 1 for a tile the mask keeps whole, 2 t for a partial one,
/// then `counts` of them.
struct GradTileList {
  mlir::Value entries; // [batches, heads, tiles, other tiles] i32
  mlir::Value counts;  // [batches, heads, tiles] i32
};

/// The sizes and bounds both gradient grids share.
struct GradClassification {
  TileBuilder &tb;
  attn::AttentionGradOp op;
  const mlir::IRMapping &buffers;
  tile::ConfigAttr config; // the classification grid's tile: block_m x block_n
  mlir::Value nBatch, nHeads, nq, nk;
  /// The [rows, keys] i1 tile of pairs the causal / window bounds and the ragged ends
  /// keep, for rows from `m0` and keys from `n0`.
  llvm::function_ref<mlir::Value(mlir::Value m0, mlir::Value n0, int64_t rows,
                                 int64_t keys)>
      boundsKeep;
  /// The key tiles (of `keys` keys) the bounds leave the `rows` rows from `m0`: [lo, hi).
  llvm::function_ref<std::pair<mlir::Value, mlir::Value>(mlir::Value m0, int64_t rows,
                                                         int64_t keys)>
      keyTileRange;
  /// The query tiles (of `rows` rows) the bounds leave the `keys` keys from `n0`.
  llvm::function_ref<std::pair<mlir::Value, mlir::Value>(mlir::Value n0, int64_t rows,
                                                         int64_t keys)>
      queryTileRange;

  /// Emits the classification grid: classes of `rows` queries x `keys` keys (divisors
  /// of block_m and block_n), one program per block_m x 32 block_n tiles.
  GradTileClasses classify(int64_t rows, int64_t keys);
  /// Emits the grid listing, per query tile of `queries` rows, the key tiles of `keys`
  /// it keeps anything of (multiples of the classes' rows and keys).
  GradTileList listKeyTiles(const GradTileClasses &classes, int64_t queries, int64_t keys);
  /// Emits the grid listing, per key tile of `keys`, the query tiles of `queries` rows
  /// that keep anything of it: the transposed lists.
  GradTileList listQueryTiles(const GradTileClasses &classes, int64_t queries,
                              int64_t keys);
};

/// Walks the list of tile `tile` (batch, head: the program's, reduced as the classes
/// are): `body(other tile index, listed whole (i1), carried)` per entry. Reads are
/// clamped and the loop sits under count > 0, so it is marked tile.speculable.
llvm::SmallVector<mlir::Value> walkGradTileList(
    TileBuilder &tb, const GradTileClasses &classes, const GradTileList &list,
    mlir::Value batch, mlir::Value head, mlir::Value tile, mlir::ValueRange init,
    llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value, mlir::Value,
                                                      mlir::ValueRange)>
        body);
} // namespace tessera

#endif
