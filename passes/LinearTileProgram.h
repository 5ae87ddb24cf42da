//===- LinearTileProgram.h - linear attention tile programs -----*- C++ -*-===//
#ifndef TESSERA_PASSES_LINEARTILEPROGRAM_H
#define TESSERA_PASSES_LINEARTILEPROGRAM_H

#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace tessera {
/// Emits the tile.grid computing `op` with its D x Dv state carried on chip across
/// blocks of `config.block_m` tokens (Lightning Attention-2, SEMANTICS.md §2).
mlir::LogicalResult buildLinearTileProgram(mlir::ImplicitLocOpBuilder &b,
                                           attn::LinearAttentionOp op,
                                           const mlir::IRMapping &buffers,
                                           tile::ConfigAttr config);
/// Emits the tile.grid of one recurrent decode step.
mlir::LogicalResult buildLinearDecodeTileProgram(mlir::ImplicitLocOpBuilder &b,
                                                 attn::LinearDecodeOp op,
                                                 const mlir::IRMapping &buffers,
                                                 tile::ConfigAttr config);
/// Emits the tile.grid of the gradient: a forward sweep for dQ and a reverse sweep for
/// dK and dV, one program per key/value head (GQA sums without races).
mlir::LogicalResult buildLinearGradTileProgram(mlir::ImplicitLocOpBuilder &b,
                                               attn::LinearAttentionGradOp op,
                                               const mlir::IRMapping &buffers,
                                               tile::ConfigAttr config);
} // namespace tessera

#endif
