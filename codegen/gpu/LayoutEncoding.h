//===- LayoutEncoding.h - layouts as #tgpu tensor encodings -----*- C++ -*-===//
//
// The tile → tgpu pass writes each tile's layout as the encoding of its tensor type;
// the distributor reads it back. Both directions live here, so that what one writes
// the other reads.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_LAYOUTENCODING_H
#define TESSERA_CODEGEN_GPU_LAYOUTENCODING_H

#include "codegen/gpu/Layouts.h"
#include "dialect/tgpu/TgpuDialect.h"
#include "dialect/tile/TileDialect.h"

#include <optional>

namespace tessera::gpu {
/// The discardable attribute of a `tile.grid` holding its kernel's accumulator layout
/// (`#tgpu.mma`): the parent of every layout in the grid, and the instruction family
/// (mma.sync or wgmma) its products use. Written by tessera-tile-to-tgpu.
constexpr llvm::StringLiteral kAccumulatorAttr = "tgpu.accumulator";

/// The encoding `layout` is written as, in a kernel whose accumulator layout is `acc`.
mlir::Attribute encodingOf(const Layout &layout, tgpu::MmaEncodingAttr acc);
/// The layout a tile's encoding describes; nullopt for a type without a #tgpu layout.
std::optional<Layout> layoutOfType(mlir::Type type);
/// The accumulator layout tessera-tile-to-tgpu recorded on `grid`, null if none.
tgpu::MmaEncodingAttr accumulatorOf(tile::GridOp grid);
/// A transpose from a value read as Bᵀ to B: the two layouts enumerate the same
/// elements in the same slot order, so it relabels the slots and moves nothing.
bool relabelsRightOperand(tile::TransOp trans);
} // namespace tessera::gpu

#endif // TESSERA_CODEGEN_GPU_LAYOUTENCODING_H
