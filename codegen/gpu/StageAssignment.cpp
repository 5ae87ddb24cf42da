//===- StageAssignment.cpp - the loop schedule as attributes ---------------===//
//
// tessera-tgpu-assign-stages: the decisions tessera-tile-to-gpu's loop lowering makes
// (the stage plan, which loads each loop prefetches and how far ahead, the pipelining
// mode, a loop taking over the previous loop's copies in flight) written as tgpu.*
// attributes on each grid's scf.for loops and tile.load ops (StageAttrs.h), which the
// lowering then follows. A user's tgpu.prefetch_distance on a loop is kept, or reported
// at the loop where it cannot be honoured.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/StageAttrs.h"
#include "llvm/ADT/ScopeExit.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUASSIGNSTAGES
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
struct TgpuAssignStagesPass
    : tessera::gpu::impl::TgpuAssignStagesBase<TgpuAssignStagesPass> {
  void runOnOperation() override;
};
} // namespace

/// Ops of `root` the schedule names, in walk order: a clone lists its copies in the
/// same positions.
static SmallVector<Operation *> scheduledOps(Operation *root) {
  SmallVector<Operation *> ops;
  root->walk([&](Operation *op) {
    if (isa<scf::ForOp, tile::LoadOp>(op))
      ops.push_back(op);
  });
  return ops;
}

LogicalResult tessera::gpu::assignStages(tile::GridOp grid) {
  MLIRContext *ctx = grid.getContext();
  tgpu::MmaEncodingAttr accumulator = accumulatorOf(grid);
  if (!accumulator)
    return grid.emitError("the tile program has no GPU layouts: run tessera-tile-to-tgpu "
                          "before tessera-tgpu-assign-stages");
  // A grid whose loads are copies already (tessera-tgpu-copy-staged-loads) keeps the
  // schedule they were made by: the analyses below read loads.
  if (grid->hasAttr(kLoadsCopiedAttr) && grid->hasAttr(kNumStagesAttr))
    return success();
  // The loads' staging decides what prefetching copies (an unstaged grid is staged
  // here, as tessera-tgpu-stage-operands would).
  if (failed(stageOperands(grid)))
    return failure();
  // The distributor's analyses run on a copy of the grid as tessera-tile-to-gpu will see
  // it (layout conversions made where their users read them), right after the grid (the
  // grids before it are done writing their buffers), with a scratch kernel its
  // constructor may emit into; both are dropped afterwards.
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(grid.getLoc());
  OpBuilder sb = OpBuilder::atBlockEnd(scratch->getBody());
  auto kernel = ::mlir::gpu::GPUFuncOp::create(sb, grid.getLoc(), "stage_assignment",
                                               FunctionType::get(ctx, {}, {}));
  OpBuilder after(grid->getContext());
  after.setInsertionPointAfter(grid);
  auto copy = cast<tile::GridOp>(after.clone(*grid));
  llvm::scope_exit dropCopy([&] { copy.erase(); });
  copy.walk([](tgpu::ConvertLayoutOp convert) {
    convert.getResult().replaceAllUsesWith(convert.getSource());
    convert.erase();
  });
  ImplicitLocOpBuilder b(grid.getLoc(), ctx);
  b.setInsertionPointToStart(&kernel.getBody().front());
  tile::ConfigAttr config = grid.getConfig();
  Distributor d(b, config.getNumWarps(), config.getNumStages(), accumulator, kernel);
  d.planStages(copy.getBody().front());
  FailureOr<SmallVector<Distributor::LoopSchedule>> schedules =
      d.scheduleLoops(copy.getBody().front());
  // Located diagnostics point at the copy's ops, which carry the original locations.
  if (failed(schedules))
    return failure();
  DenseMap<Operation *, Operation *> original;
  for (auto [c, o] : llvm::zip_equal(scheduledOps(copy), scheduledOps(grid)))
    original[c] = o;
  auto i64 = [&](int64_t v) { return IntegerAttr::get(IntegerType::get(ctx, 64), v); };
  grid->setAttr(kNumStagesAttr, i64(d.plannedStages()));
  if (d.plannedBlocksPerSM)
    grid->setAttr(kBlocksPerSMAttr, i64(d.plannedBlocksPerSM));
  for (Distributor::LoopSchedule &s : *schedules) {
    Operation *loop = original.lookup(s.loop);
    loop->setAttr(kPipelineAttr, StringAttr::get(ctx, s.mode));
    loop->setAttr(kPrefetchDistanceAttr, i64(s.distance));
    if (s.continues)
      loop->setAttr(kContinuesPrefetchAttr, UnitAttr::get(ctx));
    else
      loop->removeAttr(kContinuesPrefetchAttr);
    for (Operation *load : s.prefetched)
      original.lookup(load)->setAttr(kPrefetchDistanceAttr, i64(s.distance));
  }
  copy.walk([&](tile::LoadOp load) {
    if (int64_t stages = d.plannedBufferStages(load); stages > 1)
      original.lookup(load)->setAttr(kBufferStagesAttr, i64(stages));
  });
  return success();
}

void TgpuAssignStagesPass::runOnOperation() {
  // Collected first: each assignment puts a copy of its grid beside it for a while.
  SmallVector<tile::GridOp> grids;
  getOperation().walk([&](tile::GridOp grid) { grids.push_back(grid); });
  for (tile::GridOp grid : grids)
    if (failed(assignStages(grid)))
      return signalPassFailure();
}
