//===- SoftmaxTileProgram.h - the parts of the online-softmax program -*- C++ -*-===//
//
// buildSoftmaxTileProgram (SoftmaxTileProgram.cpp) emits one program per (query tile,
// head, batch) from these parts, each in a file of its own:
//
//   SoftmaxKeyTileClassification.cpp  which key tiles a program visits: the analytic
//                                     causal / window range, mask_mod classification grids
//   SoftmaxDenseWalk.cpp              the masked / unmasked / masked loops over that range
//   SoftmaxListWalk.cpp               walks of listed key tiles: block lists (per token,
//                                     per query block) and the classification's lists
//   SoftmaxTileStep.cpp               one key tile: scores, modifiers, mask, online update
//
// A walk carries the online-softmax state (m, l, acc) in `SoftmaxProgram::state`.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_PASSES_SOFTMAXTILEPROGRAM_H
#define TESSERA_PASSES_SOFTMAXTILEPROGRAM_H

#include "passes/TileBuilder.h"

#include "dialect/attn/AttnDialect.h"
#include "mlir/IR/IRMapping.h"

namespace tessera {
/// Sizes, program coordinates and the carried state of the forward program.
struct SoftmaxProgram : TileBuilder {
  attn::AttentionOp op;
  const mlir::IRMapping &buffers;
  tile::ConfigAttr config;
  int64_t bm = 0, bn = 0, d = 0, dv = 0;
  mlir::Type elemType; // of q/k/v/o

  // Host side (index): extents, and the derived counts every grid shares.
  mlir::Value nBatch, nHeads, nq, nk;
  mlir::Value bmIdx, bnIdx; // block_m, block_n
  mlir::Value qTiles;       // query tiles: the grid's first dim
  mlir::Value group;        // query heads per key/value head (GQA)
  mlir::Value offsetIdx;    // Nk - Nq (bottom-right causal alignment)

  // Program coordinates (index), set by beginSoftmaxProgram.
  mlir::Value batch, head, kvHead, m0, qTileIdx;
  mlir::Value offset; // offsetIdx as i32
  mlir::Value rows;   // BM, i32: query indices of this tile

  // The attention grid's tiles.
  mlir::Value qTile;   // BM x D, elemType
  mlir::Value rowKeep; // BM, i1, or null: rows that listed the key block being visited
  mlir::Value tileKept; // i1 or null: false masks the whole key tile (listed, not visited)
  /// The online-softmax state (m, l, acc): what a walk starts from and leaves.
  llvm::SmallVector<mlir::Value> state;

  SoftmaxProgram(mlir::ImplicitLocOpBuilder &b, attn::AttentionOp op,
                 const mlir::IRMapping &buffers, tile::ConfigAttr config)
      : TileBuilder(b), op(op), buffers(buffers), config(config) {}
  mlir::Value rowBroadcast(mlir::Value v, int64_t n) { return broadcast(v, 1, n); }

  // SoftmaxTileStep.cpp.
  /// The key and value tiles starting at key index `n0`.
  std::pair<mlir::Value, mlir::Value> loadKeyValue(mlir::Value n0);
  /// The key tile (k, v) starting at key index `n0` applied to the carried (m, l, acc).
  llvm::SmallVector<mlir::Value> step(mlir::Value n0, mlir::Value k, mlir::Value v,
                                      mlir::ValueRange carried, bool masked);
  /// Key tile `t` loaded and applied to `carried`, as the loops over tile indices do.
  llvm::SmallVector<mlir::Value> stepTile(mlir::Value t, mlir::ValueRange carried,
                                          bool masked);
  /// The i1 tile of (query, key) pairs the mask keeps, bounds included.
  mlir::Value keepTile(mlir::Value qIdx, mlir::Value kIdx);
  /// Index tiles (query, key) of the BM x BN block whose keys start at `n0`.
  std::pair<mlir::Value, mlir::Value> indexTiles(mlir::Value n0);
};

/// The key tiles a program visits, [lo, hi), and the subrange [fullLo, fullHi) that
/// causal / window bounds alone keep whole (index values).
struct KeyTileRange {
  mlir::Value lo, hi, fullLo, fullHi;
};

/// The per-query-tile lists of key tiles a mask_mod keeps anything of (entry 2 t + 1
/// for a tile it keeps whole, 2 t for a partial one) and their counts, with whether they
/// are indexed by batch and by head (a mask reading neither is classified once).
struct ClassifiedKeyTiles {
  mlir::Value lists, counts;
  bool perBatch = false, perHead = false;
};

// SoftmaxKeyTileClassification.cpp.
/// Emits a tile.grid over (query tiles, `gridHeads`, `gridBatch`), leaves the builder
/// in its body with `p`'s program coordinates set, and returns the key tiles the
/// causal / window bounds leave the program.
KeyTileRange beginSoftmaxProgram(SoftmaxProgram &p, mlir::Value gridHeads,
                                 mlir::Value gridBatch);
/// Emits the grids that classify every key tile by the op's mask_mod, before the
/// attention grid (the builder is left where it was).
ClassifiedKeyTiles classifyKeyTilesByMaskMod(SoftmaxProgram &p);

// SoftmaxDenseWalk.cpp.
/// Every key tile of `tiles`: masked where the bounds cut it, unmasked inside.
void walkDenseKeyTiles(SoftmaxProgram &p, const KeyTileRange &tiles);

// SoftmaxListWalk.cpp.
/// The key blocks the op's block_indices list, clipped to `tiles`.
void walkBlockLists(SoftmaxProgram &p, const KeyTileRange &tiles);
/// The key tiles `classified` lists for this query tile.
void walkClassifiedKeyTiles(SoftmaxProgram &p, const ClassifiedKeyTiles &classified);
} // namespace tessera

#endif
