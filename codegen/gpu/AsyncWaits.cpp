//===- AsyncWaits.cpp - cp.async waits as ops --------------------------------===//
//
// tessera-tgpu-insert-waits: in a copied wgmma grid, every wait for cp.async groups
// that the lowering makes by itself (before a product reads an operand's copy, before a
// buffer's next copy, before a prologue's first copy, at branch, loop-region and work-item
// ends, before bytes another buffer had are reused, where an owed barrier is paid)
// becomes a `tgpu.async_wait pending = n` of the tile program where that op stands (above
// the reads of copied buffers right before it), with the proxy fence wgmma's reads need
// (`tgpu.fence_async_shared`) and, where the lowering's next op is a block barrier (and
// the op waited for no product before it), that `tgpu.barrier` too. The waits come from
// the lowering itself, run on a scratch copy of the module (as the shared-memory plan's
// requests do), so that the kernels do not change; the lowering then follows the IR's
// waits (tgpu.waits_placed on the grid) and reports a copy it finds in flight where it
// needs it landed.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/AsyncWaits.h"
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/KernelOutlining.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/SharedAllocation.h"
#include "codegen/gpu/StageAttrs.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUINSERTWAITS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

bool tessera::gpu::placesWaits(tile::GridOp grid) {
  tgpu::MmaEncodingAttr acc = accumulatorOf(grid);
  return acc && acc.getVersion() == tgpu::MmaVersion::wgmma &&
         grid->hasAttr(kLoadsCopiedAttr) && !grid->hasAttr(kTensorCopiesAttr) &&
         !grid->hasAttr(kWaitsPlacedAttr);
}

//===----------------------------------------------------------------------===//
// The distributor's side: waits recorded, followed or made.
//===----------------------------------------------------------------------===//

void Distributor::beginWaitPlacement(tile::GridOp grid) {
  // Before the grid's first op until lowerBlock says where the walk is.
  Block &body = grid.getBody().front();
  waitPoint = body.empty() ? blockEnd(body) : WaitPoint{&body, &body.front()};
  auto top = grid->getParentOfType<ModuleOp>();
  // The shared-memory plan's scratch lowering lays buffers end to end, so it does not
  // settle reused bytes as the planned lowering does: it makes the waits it needs.
  if (top->hasAttr(kSharedScratchAttr))
    waitMode = WaitMode::make;
  else if (grid->hasAttr(kWaitsPlacedAttr))
    waitMode = WaitMode::follow;
  else if (top->hasAttr(kWaitScratchAttr) && placesWaits(grid))
    waitMode = WaitMode::record;
}

LogicalResult Distributor::endWaitPlacement(::mlir::gpu::GPUFuncOp kernel, tile::GridOp grid) {
  if (waitMode == WaitMode::follow)
    return failure(waitsBroken);
  if (waitMode != WaitMode::record)
    return success();
  DenseMap<Operation *, int64_t> index = opNumbers(grid);
  Builder attrs(kernel.getContext());
  SmallVector<Attribute> log;
  for (const WaitRecord &r : waitRecords) {
    // The lowering's barrier right after the wait (and its fence) is the IR's too, unless
    // products the op waited for first must come before it.
    Operation *fence = r.wait->getNextNode();
    bool barrier = fence && isa_and_nonnull<tgpu::BarrierOp>(fence->getNextNode()) &&
                   !r.afterProducts;
    // Before a tile op (region -1), or at the end of a region of one.
    Operation *op = r.at.before ? r.at.before : r.at.block->getParentOp();
    int64_t region =
        r.at.before ? -1 : int64_t(r.at.block->getParent()->getRegionNumber());
    log.push_back(attrs.getDictionaryAttr({
        attrs.getNamedAttr("op", attrs.getI64IntegerAttr(index.lookup(op))),
        attrs.getNamedAttr("region", attrs.getI64IntegerAttr(region)),
        attrs.getNamedAttr("pending", attrs.getI64IntegerAttr(r.pending)),
        attrs.getNamedAttr("barrier", attrs.getBoolAttr(barrier)),
    }));
  }
  kernel->setAttr(kWaitLogAttr, attrs.getArrayAttr(log));
  return success();
}

//===----------------------------------------------------------------------===//
// The pass: the scratch lowering's waits written into the tile programs.
//===----------------------------------------------------------------------===//

/// Where a wait before `op` goes: above the reads of copied buffers right before it (and
/// their transposes), which hand `op` the buffers it reads, so that the IR's reads come
/// after the wait too. Their lowering makes no code: the kernel does not change.
static Operation *readsBefore(Operation *op) {
  auto copiedRead = [](Operation *x) {
    if (auto trans = dyn_cast<tile::TransOp>(x))
      x = trans.getInput().getDefiningOp();
    auto read = dyn_cast_or_null<tgpu::LocalLoadOp>(x);
    return read && read.getBuffer().getType().getIsMutable();
  };
  while (Operation *prev = op->getPrevNode()) {
    if (!copiedRead(prev))
      break;
    op = prev;
  }
  return op;
}

static LogicalResult placeWaits(tile::GridOp grid, ArrayAttr waits) {
  if (!waits)
    return grid.emitError("tessera-tgpu-insert-waits: the scratch lowering made no kernel "
                          "for this grid");
  SmallVector<Operation *> ops = numberedOps(grid);
  MLIRContext *ctx = grid.getContext();
  OpBuilder b(ctx);
  for (Attribute a : waits) {
    auto d = cast<DictionaryAttr>(a);
    auto get = [&](StringRef name) { return cast<IntegerAttr>(d.get(name)).getInt(); };
    int64_t numbered = get("op"), region = get("region");
    if (numbered < 0 || numbered >= int64_t(ops.size()) ||
        region >= int64_t(ops[numbered]->getNumRegions()))
      return grid.emitError("tessera-tgpu-insert-waits: the scratch lowering numbers ops "
                            "this grid does not have");
    Operation *anchor = ops[numbered];
    if (region < 0)
      b.setInsertionPoint(readsBefore(anchor));
    else
      b.setInsertionPointToEnd(&anchor->getRegion(region).front());
    tgpu::AsyncWaitOp::create(b, anchor->getLoc(), tgpu::AsyncTokenType::get(ctx),
                              ValueRange(), get("pending"));
    // cp.async writes through the generic proxy; the products read through the async one.
    tgpu::FenceAsyncSharedOp::create(b, anchor->getLoc());
    if (cast<BoolAttr>(d.get("barrier")).getValue())
      tgpu::BarrierOp::create(b, anchor->getLoc());
  }
  grid->setAttr(kWaitsPlacedAttr, UnitAttr::get(ctx));
  return success();
}

LogicalResult tessera::gpu::insertWaits(ModuleOp top) {
  SmallVector<std::pair<std::string, tile::GridOp>> grids; // with their kernels' names
  for (func::FuncOp func : top.getOps<func::FuncOp>())
    for (auto [i, grid] : llvm::enumerate(func.getBody().getOps<tile::GridOp>()))
      if (placesWaits(grid))
        grids.push_back({kernelName(func, i), grid});
  if (grids.empty())
    return success();
  // A program the lowering rejects keeps its IR (kernel.ir("tgpu") shows it);
  // tessera-tile-to-gpu reports the error.
  FailureOr<llvm::StringMap<ArrayAttr>> waits =
      lowerScratchCopy(top, kWaitScratchAttr, kWaitLogAttr, /*quiet=*/true);
  if (failed(waits))
    return success();
  for (auto &[name, grid] : grids)
    if (failed(placeWaits(grid, waits->lookup(name))))
      return failure();
  return success();
}

namespace {
struct TgpuInsertWaitsPass : tessera::gpu::impl::TgpuInsertWaitsBase<TgpuInsertWaitsPass> {
  void runOnOperation() override {
    if (failed(insertWaits(getOperation())))
      signalPassFailure();
  }
};
} // namespace
