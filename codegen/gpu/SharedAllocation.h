//===- SharedAllocation.h - shared-memory offsets as attributes --*- C++ -*-===//
//
// Names of the attributes tessera-tgpu-allocate-shared writes (and a user may set) on a
// tile.grid and its ops, and the allocation itself; docs/RationaleTgpu.md.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_SHAREDALLOCATION_H
#define TESSERA_CODEGEN_GPU_SHAREDALLOCATION_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

namespace tessera::tile {
class GridOp;
}

namespace tessera::gpu {
/// On a tile op (the grid itself for its mbarriers): the arena offset of each shared
/// buffer the lowering requests while lowering it, in request order (array<i64>).
inline constexpr const char kSharedOffsetAttr[] = "tgpu.shared_offset";
/// tile.grid: bytes of the arena the plan uses (the launch adds 1024 of alignment slack).
inline constexpr const char kSharedBytesAttr[] = "tgpu.shared_bytes";
/// The allocation's scratch copy of a module (its kernels record their requests).
inline constexpr const char kSharedScratchAttr[] = "tgpu.shared_allocation_scratch";
/// A scratch kernel's requests: {owner, kind, bytes, align, first, last} each.
inline constexpr const char kSharedRequestsAttr[] = "tgpu.shared_requests";

/// Plans the tile.grids of `top` from a scratch lowering of the module
/// (tessera-tile-to-gpu); keeps a grid's plan where it has one, or the
/// offsets ops carry, reporting those that overlap, are misaligned or do not fit.
/// `asPass` (tessera-tgpu-allocate-shared): every grid; a module the lowering rejects
/// (an f32 product) is left unplanned, for tessera-tile-to-gpu to report. Otherwise only
/// grids without tgpu.shared_bytes, the lowering's errors reported. `report`: a remark
/// per buffer.
::mlir::LogicalResult allocateShared(::mlir::ModuleOp top, bool asPass, bool report = false);

/// Lowers a copy of `top` marked with the unit attribute `marker` (tessera-tile-to-gpu)
/// and returns each kernel's `found` attribute (what its lowering recorded) by kernel
/// name. Fails where the lowering does; `quiet`: its diagnostics are dropped.
::mlir::FailureOr<::llvm::StringMap<::mlir::ArrayAttr>>
lowerScratchCopy(::mlir::ModuleOp top, ::llvm::StringRef marker, ::llvm::StringRef found,
                 bool quiet);
/// `grid` and its ops in pre-order, as a scratch lowering numbers them (its layout
/// conversions are folded into their uses by then): how the scratch copy's findings name
/// ops of the original.
::llvm::SmallVector<::mlir::Operation *> numberedOps(tile::GridOp grid);
/// Each op's number in numberedOps (what a scratch lowering records).
::llvm::DenseMap<::mlir::Operation *, int64_t> opNumbers(tile::GridOp grid);

/// Dynamic shared bytes a kernel launches with for an arena of `arenaBytes` (the plan's
/// tgpu.shared_bytes): none for none, else 1024 more, the slack that aligns the arena.
int64_t launchSharedBytes(int64_t arenaBytes);
/// Fails, located at `grid`, where that is more than a block can have.
::mlir::LogicalResult checkLaunchSharedBytes(::mlir::Operation *grid, int64_t arenaBytes);
} // namespace tessera::gpu

#endif
