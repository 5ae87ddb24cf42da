//===- AsyncWaits.h - cp.async waits as ops ----------------------*- C++ -*-===//
//
// tessera-tgpu-insert-waits: the waits a copied wgmma grid's lowering makes for its
// cp.async groups, written as tgpu.async_wait ops (with the barrier that makes the
// landed copies visible to every thread, where it is there for that alone) before the
// tile op that needs them;
// docs/RationaleTgpu.md, "Waits as ops".
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_ASYNCWAITS_H
#define TESSERA_CODEGEN_GPU_ASYNCWAITS_H

#include "mlir/IR/BuiltinOps.h"

namespace tessera::tile {
class GridOp;
}

namespace tessera::gpu {
/// tile.grid: every wait for its cp.async groups is an op of its body; the lowering
/// follows them and reports a copy read or overwritten while it may be in flight.
inline constexpr const char kWaitsPlacedAttr[] = "tgpu.waits_placed";
/// The scratch copy of a module whose lowering records the waits it makes.
inline constexpr const char kWaitScratchAttr[] = "tgpu.wait_placement_scratch";
/// A scratch kernel's waits, each {op: its tile op's number (opNumbers), region: -1
/// before that op, else at the end of that region of it, pending, barrier: a
/// tgpu.barrier follows}.
inline constexpr const char kWaitLogAttr[] = "tgpu.async_waits";

/// Whether tessera-tgpu-insert-waits writes `grid`'s waits: a wgmma grid whose staged
/// loads are cp.async copies (not TMA's), not placed yet.
bool placesWaits(tile::GridOp grid);
/// tessera-tgpu-insert-waits on the grids of `top` it places waits in. A module the
/// lowering rejects is left as it is, for tessera-tile-to-gpu to report.
::mlir::LogicalResult insertWaits(::mlir::ModuleOp top);
} // namespace tessera::gpu

#endif
