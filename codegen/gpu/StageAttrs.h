//===- StageAttrs.h - the schedule's loop and load attributes ----*- C++ -*-===//
//
// Names of the discardable attributes tessera-tgpu-assign-stages writes (and a user may
// set) on the scf.for loops and tile.load ops of a tile.grid; docs/RationaleTgpu.md.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_STAGEATTRS_H
#define TESSERA_CODEGEN_GPU_STAGEATTRS_H

#include "mlir/IR/Builders.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

namespace tessera::tile {
class GridOp;
class LoadOp;
} // namespace tessera::tile
namespace tessera::tgpu {
class SharedLayoutAttr;
} // namespace tessera::tgpu
namespace mlir::func {
class FuncOp;
} // namespace mlir::func

namespace tessera::gpu {
/// scf.for and tile.load: iterations ahead the loop's (the load's) tiles are copied; on
/// a loop before assignment, the user's override (0: no prefetching, one stage).
inline constexpr const char kPrefetchDistanceAttr[] = "tgpu.prefetch_distance";
/// scf.for: how its prefetches are carried ("none", "registers", "cp_async",
/// "cp_async_first_product"); its presence marks the loop as scheduled.
inline constexpr const char kPipelineAttr[] = "tgpu.pipeline";
/// Whether a loop's tgpu.pipeline copies by cp.async (tessera-tgpu-pipeline-loops
/// rotates such loops).
inline bool isCpAsyncPipeline(::llvm::StringRef mode) {
  return mode == "cp_async" || mode == "cp_async_first_product";
}
/// scf.for: its first tiles are the previous loop's last copies, still in flight.
inline constexpr const char kContinuesPrefetchAttr[] = "tgpu.continues_prefetch";
/// tile.grid: stages of a prefetched buffer and the blocks per SM the plan made room for.
inline constexpr const char kNumStagesAttr[] = "tgpu.num_stages";
inline constexpr const char kBlocksPerSMAttr[] = "tgpu.blocks_per_sm";
/// tile.load: stages of the swizzled buffer its tile is staged into, where the plan
/// multi-buffers it (absent: one).
inline constexpr const char kBufferStagesAttr[] = "tgpu.buffer_stages";

/// tile.load: the shared layout (#tgpu.shared) its tile is staged in before the products
/// read it (absent: read into registers); tessera-tgpu-stage-operands.
inline constexpr const char kStagedAttr[] = "tgpu.staged";
/// tile.grid: its loads' staging is decided (a load without tgpu.staged is read into
/// registers).
inline constexpr const char kOperandsStagedAttr[] = "tgpu.operands_staged";

/// tile.grid: its swizzled operand tiles are copied by TMA (from descriptors the kernel
/// takes) instead of cp.async; one grid of a function at most (its kernels share the
/// function's descriptors).
inline constexpr const char kTensorCopiesAttr[] = "tgpu.tensor_copies";

/// tile.grid: its swizzled staged loads are tgpu.async_copy ops into tgpu.local_alloc
/// buffers, read by tgpu.local_load (tessera-tgpu-copy-staged-loads).
inline constexpr const char kLoadsCopiedAttr[] = "tgpu.loads_copied";

/// scf.for: rotated by tessera-tgpu-pipeline-loops (its prologue copies before it, its
/// stage carried last, its copies into explicit stages).
inline constexpr const char kPipelinedAttr[] = "tgpu.pipelined";

/// Writes which of `grid`'s loads are staged in shared memory
/// (tessera-tgpu-stage-operands on one grid); a grid staged already keeps its loads'
/// staging. Fails, located at the load, where the lowering cannot follow it.
::mlir::LogicalResult stageOperands(tile::GridOp grid);
/// Marks the first grid of `func` whose swizzled operands TMA can all copy with
/// tgpu.tensor_copies, where `choose` and no grid of it is marked; checks a marked grid.
/// Fails, located, where its copies cannot be TMA's.
::mlir::LogicalResult stageTensorCopies(::mlir::func::FuncOp func, bool choose);
/// `load`'s staging (null: none).
tgpu::SharedLayoutAttr stagingOf(tile::LoadOp load);

/// Writes `grid`'s schedule (tessera-tgpu-assign-stages on one grid); a grid scheduled
/// already keeps its loops' decisions. Fails, located, where a user's override cannot be
/// honoured.
::mlir::LogicalResult assignStages(tile::GridOp grid);
/// Whether tessera-tgpu-copy-staged-loads rewrites `grid` (a wgmma grid whose operand
/// tiles cp.async copies, not rewritten yet).
bool copiesStagedLoads(tile::GridOp grid);
/// tessera-tgpu-copy-staged-loads on one grid (scheduled first where it is not); fails,
/// located at the load, where a load cannot be a cp.async copy into its buffer.
::mlir::LogicalResult copyStagedLoads(tile::GridOp grid);
/// tessera-tgpu-pipeline-loops on one grid: its cp.async prefetching loops rotated (a
/// copied wgmma grid; others are left alone). Fails, located, where a loop's schedule
/// cannot be followed.
::mlir::LogicalResult pipelineLoops(tile::GridOp grid);
/// One iteration of a rotated loop reading stage `stage` at induction value `iv`: the
/// stage its copies fill, the stage the next iteration reads and the iteration the copies
/// are for (`ahead` on; first-product loops: the next, into the other stage).
struct RotatedStages {
  ::mlir::Value fill, following, target;
};
RotatedStages rotatedStages(::mlir::OpBuilder &b, ::mlir::Location loc, ::mlir::Value stage,
                            ::mlir::Value iv, ::mlir::Value step, int64_t ahead,
                            bool firstOnly);
} // namespace tessera::gpu

#endif
