//===- SoftmaxTileProgram.h - online-softmax tile program -------*- C++ -*-===//
#ifndef TESSERA_PASSES_SOFTMAXTILEPROGRAM_H
#define TESSERA_PASSES_SOFTMAXTILEPROGRAM_H

#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/IRMapping.h"

namespace tessera {
/// Emits, at `b`'s insertion point, the tile.grid computing `op` (FlashAttention-2 online
/// softmax, SEMANTICS.md §1). `buffers` maps each tensor operand and result of `op` to
/// its buffer.
mlir::LogicalResult buildSoftmaxTileProgram(mlir::ImplicitLocOpBuilder &b,
                                            attn::AttentionOp op,
                                            const mlir::IRMapping &buffers,
                                            tile::ConfigAttr config);
} // namespace tessera

#endif
