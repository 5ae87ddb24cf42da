//===- TilePrograms.h - attn ops as tile programs ---------------*- C++ -*-===//
//
// Each builder emits, at `b`'s insertion point, the tile.grid computing one attn op;
// `buffers` maps each tensor operand and result of the op to its buffer.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_PASSES_TILEPROGRAMS_H
#define TESSERA_PASSES_TILEPROGRAMS_H

#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace tessera {
/// Unit attribute on a tile.grid whose products are narrow by design (the softmax
/// backward's 32-query dK / dV tiles): a target whose product rule asks wide extents at
/// some head dims (wgmma: K and N multiples of 64 at head dims 64 and 128) takes them
/// in multiples of 16 there.
inline constexpr llvm::StringLiteral kNarrowProductsAttr = "tile.narrow_products";
/// Unit attribute on a tile.grid whose left operands loaded outside its loops are read
/// from shared memory at each product (mma.sync: ldmatrix per use) rather than held as
/// fragments across the loops: the softmax backward's K / V (dK / dV grid) and Q / dO
/// (dQ grid), whose 64 registers a thread at D = 128 the accumulators need.
inline constexpr llvm::StringLiteral kLeftOperandsPerUseAttr = "tile.left_operands_per_use";
/// FlashAttention-2 online softmax (SEMANTICS.md §1); SoftmaxTileProgram.cpp.
mlir::LogicalResult buildSoftmaxTileProgram(mlir::ImplicitLocOpBuilder &b,
                                            attn::AttentionOp op,
                                            const mlir::IRMapping &buffers,
                                            tile::ConfigAttr config);
/// How the softmax backward's dK / dV grid walks the query tiles (tessera-to-tile's
/// options key-major-grad and grad-query-tile).
struct GradTiling {
  bool keyMajor = true;   // pair tiles are [key, query]
  int64_t queryTile = 0;  // queries per walked tile; 0: the builder's rule
  bool dqAtomic = false;  // dQ summed by the dK / dV grid into an f32 workspace (atomics)
};
/// Its backward: Δ, then dK and dV per key tile, then dQ per query tile (deterministic).
/// SoftmaxGradTileProgram.cpp.
mlir::LogicalResult buildSoftmaxGradTileProgram(mlir::ImplicitLocOpBuilder &b,
                                                attn::AttentionGradOp op,
                                                const mlir::IRMapping &buffers,
                                                tile::ConfigAttr config, GradTiling tiling);
/// Linear attention with its D x Dv state carried on chip across blocks of
/// `config.block_m` tokens (Lightning Attention-2, SEMANTICS.md §2); LinearTileProgram.cpp.
mlir::LogicalResult buildLinearTileProgram(mlir::ImplicitLocOpBuilder &b,
                                           attn::LinearAttentionOp op,
                                           const mlir::IRMapping &buffers,
                                           tile::ConfigAttr config);
/// One recurrent decode step.
mlir::LogicalResult buildLinearDecodeTileProgram(mlir::ImplicitLocOpBuilder &b,
                                                 attn::LinearDecodeOp op,
                                                 const mlir::IRMapping &buffers,
                                                 tile::ConfigAttr config);
/// The linear-attention gradient: a forward sweep for dQ and a reverse sweep for dK and
/// dV, one program per key/value head (GQA sums without races).
mlir::LogicalResult buildLinearGradTileProgram(mlir::ImplicitLocOpBuilder &b,
                                               attn::LinearAttentionGradOp op,
                                               const mlir::IRMapping &buffers,
                                               tile::ConfigAttr config);

// Block structure (SelectionTilePrograms.cpp): pooled blocks and top-k block selection.
mlir::LogicalResult buildCompressTileProgram(mlir::ImplicitLocOpBuilder &b,
                                             attn::CompressOp op,
                                             const mlir::IRMapping &buffers,
                                             tile::ConfigAttr config);
mlir::LogicalResult buildBlockTopKTileProgram(mlir::ImplicitLocOpBuilder &b,
                                              attn::BlockTopKOp op,
                                              const mlir::IRMapping &buffers,
                                              tile::ConfigAttr config);
// Row permutations (RowTilePrograms.cpp): the LSH sort and row gathers / scatters.
mlir::LogicalResult buildLshSortTileProgram(mlir::ImplicitLocOpBuilder &b,
                                            attn::LshSortOp op,
                                            const mlir::IRMapping &buffers,
                                            tile::ConfigAttr config);
mlir::LogicalResult buildGatherRowsTileProgram(mlir::ImplicitLocOpBuilder &b,
                                               attn::GatherRowsOp op,
                                               const mlir::IRMapping &buffers,
                                               tile::ConfigAttr config);
mlir::LogicalResult buildScatterRowsTileProgram(mlir::ImplicitLocOpBuilder &b,
                                                attn::ScatterRowsOp op,
                                                const mlir::IRMapping &buffers,
                                                tile::ConfigAttr config);
// Combiners of partial outputs (CombineTilePrograms.cpp).
mlir::LogicalResult buildMergeTileProgram(mlir::ImplicitLocOpBuilder &b, attn::MergeOp op,
                                          const mlir::IRMapping &buffers,
                                          tile::ConfigAttr config);
mlir::LogicalResult buildGateTileProgram(mlir::ImplicitLocOpBuilder &b, attn::GateOp op,
                                         const mlir::IRMapping &buffers,
                                         tile::ConfigAttr config);
} // namespace tessera

#endif
