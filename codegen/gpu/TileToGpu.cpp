//===- TileToGpu.cpp - tile programs to warp-level tensor-core kernels ----===//
//
// The tile.grid in each kernel (tessera-tgpu-outline-kernels) is distributed over the
// block's threads in the layouts tessera-tile-to-tgpu wrote in their types: a tile
// becomes a list of per-thread scalars ("slots"), element-wise ops run slot by slot, row
// reductions finish with two butterfly shuffles inside each quad of lanes, and tile.dot
// becomes mma.sync m16n8k16 or wgmma, as the grid's accumulator layout says (f16/bf16
// in, f32 accumulate).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/KernelOutlining.h"
#include "codegen/gpu/Passes.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TILETOGPU
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
struct TileToGpuPass : tessera::gpu::impl::TileToGpuBase<TileToGpuPass> {
  using TileToGpuBase::TileToGpuBase;
  void runOnOperation() override;
};
} // namespace

/// Lowers the grid `kernel` holds in place of it: the distributor's preamble (thread
/// indices, the shared arena) at the kernel's entry, before the host values the
/// outlining recomputed there, then the grid's body.
static LogicalResult distribute(::mlir::gpu::GPUFuncOp kernel, tile::GridOp grid) {
  // The distributor reads every tile's layout from its type (checked again: a kernel
  // may be outlined by hand) and follows the grid's schedule and shared-memory plan
  // (followSchedule / beginSharedPlan report a grid without them).
  if (failed(checkGridLayouts(grid)))
    return failure();
  // Conversions are made where their users read them (Distributor::slotsOf, which
  // shares one among the users of a block).
  grid.walk([](tgpu::ConvertLayoutOp convert) {
    convert.getResult().replaceAllUsesWith(convert.getSource());
    convert.erase();
  });
  tile::ConfigAttr config = grid.getConfig();
  ImplicitLocOpBuilder b(grid.getLoc(), kernel.getContext());
  b.setInsertionPointToStart(&kernel.getBody().front());
  Distributor d(b, config.getNumWarps(), config.getNumStages(), accumulatorOf(grid), kernel);
  if (failed(d.followSchedule(grid)) || failed(d.beginSharedPlan(grid)))
    return failure();
  d.beginWaitPlacement(grid);
  // Values from outside the grid (kernel arguments, the recomputed host values) are
  // read as they are.
  grid.getBody().walk([&](Operation *op) {
    for (Value v : op->getOperands())
      if (!grid->isAncestor(v.getParentRegion()->getParentOp()))
        d.scalars.map(v, v);
  });
  b.setInsertionPoint(grid);
  if (grid->hasAttr(kTensorCopiesAttr) && failed(d.useTensorCopies(grid)))
    return failure();
  if (failed(d.lowerBlock(grid.getBody().front())) || failed(d.finishTensorCopies()) ||
      failed(d.endSharedPlan(kernel)) || failed(d.endWaitPlacement(kernel, grid)))
    return failure();
  std::optional<ArrayRef<int32_t>> block = kernel.getKnownBlockSize();
  if (!block || (*block)[0] != d.blockThreads())
    return kernel.emitError("the kernel launches ")
           << (block ? (*block)[0] : 0) << " threads; its lowering needs "
           << d.blockThreads() << " (tessera-tgpu-outline-kernels sizes the block)";
  grid.erase();
  return success();
}

void TileToGpuPass::runOnOperation() {
  ModuleOp top = getOperation();
  // Grids still in host functions (hand-written tgpu IR) are outlined first, by
  // tessera-tgpu-outline-kernels' code with its defaults.
  if (failed(outlineKernels(top, /*minBlocks=*/0)))
    return signalPassFailure();
  top->setAttr(::mlir::gpu::GPUDialect::getContainerModuleAttrName(),
               UnitAttr::get(&getContext()));
  SmallVector<std::pair<::mlir::gpu::GPUFuncOp, tile::GridOp>> kernels;
  WalkResult many = top.walk([&](::mlir::gpu::GPUFuncOp kernel) {
    auto grids = kernel.getBody().front().getOps<tile::GridOp>();
    if (grids.empty())
      return WalkResult::advance();
    if (std::next(grids.begin()) != grids.end()) {
      kernel.emitError("a kernel holds one tile.grid (tessera-tgpu-outline-kernels)");
      return WalkResult::interrupt();
    }
    kernels.push_back({kernel, *grids.begin()});
    return WalkResult::advance();
  });
  if (many.wasInterrupted())
    return signalPassFailure();
  for (auto [kernel, grid] : kernels)
    if (failed(distribute(kernel, grid)))
      return signalPassFailure();
}
