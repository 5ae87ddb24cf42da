//===- PersistentGrid.h - persistent grids: names and the launch extent -*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_PERSISTENTGRID_H
#define TESSERA_CODEGEN_GPU_PERSISTENTGRID_H

#include "mlir/IR/Attributes.h"

namespace tessera::tile {
class GridOp;
}

namespace tessera::gpu {
/// tile.grid (unit): a persistent grid (tessera-persistent-grid): its one size counts work
/// items, and it launches min(blocks per SM x #SMs, items) programs, each walking the
/// items of its work loop.
inline constexpr const char kPersistentAttr[] = "tgpu.persistent";
/// scf.for (unit): a persistent grid's work loop (items t = program id, t += programs);
/// the distributor starts and ends each item with no copies or products in flight and a
/// block barrier, so shared memory is reused across items in order.
inline constexpr const char kWorkItemsAttr[] = "tgpu.work_items";

/// The launch extent of persistent `grid` (codegen's encoding, LaunchRecord.cpp): the
/// smaller of its item count `items` and `blocksPerSM` x the device's SM count.
mlir::Attribute persistentGridExtent(mlir::Attribute items, int64_t blocksPerSM);
/// Blocks of a persistent kernel an SM is expected to hold (at least 1, at most the
/// launch record's 64): what its shared memory (`smemBytes`) allows, and the user's
/// min_blocks (`userBlocks`) where set, else the fewer of the stage plan's (`planBlocks`,
/// 0: none) and a register estimate from its two largest product accumulators
/// (`accumulatorSlots` registers a thread).
int64_t persistentBlocksPerSM(int64_t userBlocks, int64_t planBlocks, int64_t smemBytes,
                              int64_t numWarps, int64_t accumulatorSlots, bool wgmma);
} // namespace tessera::gpu

#endif
