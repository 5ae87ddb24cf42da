//===- WarpSpecializePass.cpp - a TMA grid as producer and consumers --------===//
//
// tessera-tgpu-warp-specialize (Config.warp_specialize, issue 25). Runs after
// tessera-tgpu-assign-stages. The grid of a function whose staged tiles TMA copies (the
// one the tma knob picks: the first whose every staged tile TMA can copy) becomes
//
//   tile.grid ... {
//     tgpu.warp_specialize num_warps = [4] registers = [P] default_registers = C default {
//       <the body, unpipelined: its loads take their tiles from a ring of stages>
//       tgpu.warp_yield
//     } partitions {
//       <the producer slice: the staged loads, and the loops, branches and scalars
//        their indices and their control need, loop-carried scalars included>
//       tgpu.warp_return
//     }
//   }
//
// The default region's loops lose their prefetching (tgpu.pipeline = "none"): the
// producer runs ahead instead. Every staged load inside a loop takes max(2, num_stages)
// buffer stages (the ring), others one; the grid's blocks-per-SM plan goes (one block
// per SM: registers for 128 x (1 + C) threads). A grid whose slice would need a tile
// value, a while loop or a branch's result stays as it is (TMA alone). A staged tile read
// only in a branch (a list entry or classified tile the consumers skip) goes back after
// its fill has landed (WarpSpecialize.cpp, giveBackRingTiles).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/StageAttrs.h"
#include "codegen/gpu/WarpSpecialize.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUWARPSPECIALIZE
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
struct TgpuWarpSpecializePass
    : tessera::gpu::impl::TgpuWarpSpecializeBase<TgpuWarpSpecializePass> {
  using TgpuWarpSpecializeBase::TgpuWarpSpecializeBase;
  void runOnOperation() override;
};

/// The ops a producer partition keeps: the staged loads and what their indices and
/// their enclosing loops and branches need, with the iteration arguments of each loop it
/// carries.
struct ProducerSlice {
  tile::GridOp grid;
  DenseSet<Operation *> ops;
  DenseMap<Operation *, SmallVector<bool>> carried; // scf.for -> iter args kept
  std::string refusal;                               // why there is none

  bool fail(const Twine &why) {
    if (refusal.empty())
      refusal = why.str();
    return false;
  }

  bool addValue(Value v) {
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      if (!grid->isProperAncestor(arg.getOwner()->getParentOp()))
        return true; // an argument of the function: the partition reads it
      auto loop = dyn_cast<scf::ForOp>(arg.getOwner()->getParentOp());
      if (!loop)
        return fail(Twine("its loads depend on a block argument of '") +
                    arg.getOwner()->getParentOp()->getName().getStringRef() + "'");
      if (arg == loop.getInductionVar())
        return addControl(loop);
      return carry(loop, arg.getArgNumber() - 1);
    }
    Operation *def = v.getDefiningOp();
    if (!grid->isProperAncestor(def))
      return true; // computed before the grid: the partition reads it
    if (auto loop = dyn_cast<scf::ForOp>(def))
      return carry(loop, cast<OpResult>(v).getResultNumber());
    return addOp(def);
  }

  bool addOp(Operation *op, bool root = false) {
    if (!ops.insert(op).second)
      return true;
    if (!root) {
      if (op->getNumRegions())
        return fail(Twine("its loads depend on the results of '") +
                    op->getName().getStringRef() + "'");
      if (llvm::any_of(op->getResultTypes(), llvm::IsaPred<RankedTensorType>))
        return fail(Twine("its loads depend on a tile ('") + op->getName().getStringRef() +
                    "')");
      if (!isMemoryEffectFree(op) && !isa<memref::LoadOp, memref::DimOp>(op))
        return fail(Twine("its loads depend on '") + op->getName().getStringRef() +
                    "', which has side effects");
    }
    if (!addAncestors(op))
      return false;
    return llvm::all_of(op->getOperands(), [&](Value v) { return addValue(v); });
  }

  bool addAncestors(Operation *op) {
    for (Operation *parent = op->getParentOp(); parent != grid.getOperation();
         parent = parent->getParentOp()) {
      if (!isa<scf::ForOp, scf::IfOp>(parent))
        return fail(Twine("a staged load is inside '") + parent->getName().getStringRef() +
                    "' (only scf.for and scf.if are sliced)");
      if (!addControl(parent))
        return false;
    }
    return true;
  }

  bool addControl(Operation *op) {
    if (!ops.insert(op).second)
      return true;
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      carried[op].assign(loop.getNumRegionIterArgs(), false);
      if (!addValue(loop.getLowerBound()) || !addValue(loop.getUpperBound()) ||
          !addValue(loop.getStep()))
        return false;
    } else if (!addValue(cast<scf::IfOp>(op).getCondition())) {
      return false;
    }
    return addAncestors(op);
  }

  bool carry(scf::ForOp loop, unsigned i) {
    if (!addControl(loop))
      return false;
    if (carried[loop][i])
      return true;
    carried[loop][i] = true;
    if (isa<RankedTensorType>(loop.getRegionIterArgs()[i].getType()))
      return fail("its loads depend on a loop-carried tile");
    return addValue(loop.getInitArgs()[i]) &&
           addValue(loop.getBody()->getTerminator()->getOperand(i));
  }

  /// Whether `loop` may run as more iterations of `copy`, the producer's copy of the
  /// kept op before it: a loop that continues the one `copy` was made from (the stage
  /// plan's tgpu.continues_prefetch: it starts where that one ends, with the same step,
  /// and loads the same tiles as the same function of its induction variable), neither
  /// carrying anything in the slice, its bound already known where `copy` starts.
  bool extends(scf::ForOp loop, scf::ForOp copy, scf::ForOp copiedFrom, IRMapping &map) {
    if (!copy || !loop->hasAttr(kContinuesPrefetchAttr) ||
        loop->getPrevNode() != copiedFrom.getOperation() ||
        llvm::is_contained(carried[loop.getOperation()], true) ||
        llvm::is_contained(carried[copiedFrom.getOperation()], true))
      return false;
    Value bound = map.lookupOrDefault(loop.getUpperBound());
    Operation *def = bound.getDefiningOp();
    Block *block = def ? def->getBlock() : cast<BlockArgument>(bound).getOwner();
    Operation *copyThere = block->findAncestorOpInBlock(*copy);
    return copyThere && (!def || def->isBeforeInBlock(copyThere));
  }

  /// Clones the kept ops of `from` at `b`. Loops that continue one another (the masked
  /// / unmasked / masked split of a key range) become one loop: the producer has no mask
  /// to tell them apart, and one loop holds fewer of its few registers.
  void clone(Block &from, OpBuilder &b, IRMapping &map) {
    scf::ForOp lastCopy, lastCopiedFrom; // the previous kept op, when a loop
    for (Operation &op : from.without_terminator()) {
      if (!ops.contains(&op))
        continue;
      auto loop = dyn_cast<scf::ForOp>(op);
      if (loop && extends(loop, lastCopy, lastCopiedFrom, map)) {
        lastCopy.getUpperBoundMutable().assign(map.lookupOrDefault(loop.getUpperBound()));
        lastCopiedFrom = loop;
        continue;
      }
      lastCopy = lastCopiedFrom = nullptr;
      if (loop) {
        ArrayRef<bool> keep = carried[&op];
        SmallVector<Value> init;
        for (auto [i, v] : llvm::enumerate(loop.getInitArgs()))
          if (keep[i])
            init.push_back(map.lookupOrDefault(v));
        auto copy = scf::ForOp::create(b, loop.getLoc(), map.lookupOrDefault(loop.getLowerBound()),
                                       map.lookupOrDefault(loop.getUpperBound()),
                                       map.lookupOrDefault(loop.getStep()), init);
        copy->setDiscardableAttrs(loop->getDiscardableAttrDictionary());
        OpBuilder::InsertionGuard guard(b);
        if (copy.getBody()->mightHaveTerminator())
          copy.getBody()->getTerminator()->erase();
        b.setInsertionPointToEnd(copy.getBody());
        map.map(loop.getInductionVar(), copy.getInductionVar());
        int64_t next = 0;
        for (auto [i, arg] : llvm::enumerate(loop.getRegionIterArgs()))
          if (keep[i])
            map.map(arg, copy.getRegionIterArgs()[next++]);
        clone(*loop.getBody(), b, map);
        SmallVector<Value> yielded;
        for (auto [i, v] : llvm::enumerate(loop.getBody()->getTerminator()->getOperands()))
          if (keep[i])
            yielded.push_back(map.lookupOrDefault(v));
        scf::YieldOp::create(b, loop.getLoc(), yielded);
        next = 0;
        for (auto [i, result] : llvm::enumerate(loop.getResults()))
          if (keep[i])
            map.map(result, copy.getResults()[next++]);
        lastCopy = copy;
        lastCopiedFrom = loop;
        continue;
      }
      if (auto branch = dyn_cast<scf::IfOp>(op)) {
        (void)copyBranchShell(b, branch, map.lookupOrDefault(branch.getCondition()),
                              [&](Block &from) {
                                clone(from, b, map);
                                return success();
                              });
        continue;
      }
      b.clone(op, map);
    }
  }
};
} // namespace

/// The staged loads of a tgpu.tensor_copies grid, where TMA copies every one of them
/// (tessera-tgpu-stage-operands{tma=true} marks it), else none: staging of another kind
/// (an f32 tile in a padded buffer) keeps block barriers between its copies and its
/// readers, which a ring does not give.
static SmallVector<tile::LoadOp> tensorCopiedLoads(tile::GridOp grid) {
  SmallVector<tile::LoadOp> loads;
  if (!grid->hasAttr(kTensorCopiesAttr))
    return loads;
  WalkResult walk = grid.getBody().walk([&](tile::LoadOp load) {
    tgpu::SharedLayoutAttr staged = stagingOf(load);
    if (!staged)
      return WalkResult::advance();
    if (staged.getKind() != tgpu::SwizzleKind::swizzle_128b)
      return WalkResult::interrupt();
    loads.push_back(load);
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    loads.clear();
  return loads;
}

/// `grid` as a warp_specialize of its body (consumers) and `slice` (producer).
static void specialize(tile::GridOp grid, ProducerSlice &slice, bool pingpong) {
  MLIRContext *ctx = grid.getContext();
  Block &body = grid.getBody().front();
  int64_t warps = grid.getConfig().getNumWarps();
  RegisterBudgets budgets = warpSpecializedRegisters(warps / 4);
  auto stagesAttr = grid->getAttrOfType<IntegerAttr>(kNumStagesAttr);
  int64_t ring = std::max<int64_t>(2, stagesAttr ? stagesAttr.getInt() : 2);
  OpBuilder b(ctx);
  b.setInsertionPointToStart(&body);
  auto split = tgpu::WarpSpecializeOp::create(
      b, grid.getLoc(), TypeRange{}, ArrayRef<int32_t>{int32_t(kProducerWarps)},
      b.getDenseI32ArrayAttr({budgets.producer}), b.getI32IntegerAttr(budgets.consumer),
      /*partitionRegionsCount=*/1);
  if (pingpong)
    split->setAttr(kPingpongAttr, b.getUnitAttr());
  Block *consumers = b.createBlock(&split.getDefaultRegion());
  Block *producer = b.createBlock(&split.getPartitionRegions()[0]);
  // The producer's copy first, from the body as it stands.
  b.setInsertionPointToStart(producer);
  IRMapping map;
  slice.clone(body, b, map);
  tgpu::WarpReturnOp::create(b, grid.getLoc());
  consumers->getOperations().splice(consumers->end(), body.getOperations(),
                                    std::next(Block::iterator(split)), body.end());
  b.setInsertionPointToEnd(consumers);
  tgpu::WarpYieldOp::create(b, grid.getLoc(), ValueRange{});
  // Neither side pipelines by prefetching any more: the ring's stages are the pipeline.
  split->walk([&](Operation *op) {
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      loop->removeAttr(kPrefetchDistanceAttr);
      loop->removeAttr(kContinuesPrefetchAttr);
      loop->setAttr(kPipelineAttr, StringAttr::get(ctx, "none"));
    } else if (auto load = dyn_cast<tile::LoadOp>(op)) {
      load->removeAttr(kPrefetchDistanceAttr);
      load->removeAttr(kBufferStagesAttr);
      if (stagingOf(load) && load->getParentOfType<scf::ForOp>())
        load->setAttr(kBufferStagesAttr, b.getI64IntegerAttr(ring));
    }
  });
  grid->removeAttr(kBlocksPerSMAttr);
}

void TgpuWarpSpecializePass::runOnOperation() {
  for (auto func : getOperation().getOps<func::FuncOp>()) {
    bool tensorCopies = false;
    for (auto grid : func.getBody().getOps<tile::GridOp>()) {
      if (failed(stageOperands(grid)))
        return signalPassFailure();
      if (!grid->hasAttr(kTensorCopiesAttr))
        continue; // tessera-tgpu-stage-operands' TMA goes to another grid, if any
      tensorCopies = true;
      SmallVector<tile::LoadOp> loads = tensorCopiedLoads(grid);
      if (loads.empty()) {
        emitRemark(grid.getLoc(), "not warp-specialised: a tile is staged in a padded "
                                  "buffer, which the producer's ring does not fill");
        break;
      }
      if (grid.getBody().front().getOps<tgpu::WarpSpecializeOp>().empty()) {
        ProducerSlice slice;
        slice.grid = grid;
        bool ok = llvm::all_of(loads, [&](tile::LoadOp load) { return slice.addOp(load, true); });
        int64_t consumers = grid.getConfig().getNumWarps() / 4;
        if (ok && pingpong && consumers != 2) {
          grid.emitError("pingpong takes turns between two consumer warpgroups (block_m "
                         "128, num_warps 8); this grid has ")
              << consumers;
          return signalPassFailure();
        }
        if (ok)
          specialize(grid, slice, pingpong);
        else
          emitRemark(grid.getLoc(), "not warp-specialised: ") << slice.refusal;
      }
      break; // one grid of a function copies by TMA
    }
    auto grids = func.getBody().getOps<tile::GridOp>();
    if (!tensorCopies && !grids.empty())
      emitRemark((*grids.begin()).getLoc(),
                 "not warp-specialised: no grid of the function copies its operands by TMA "
                 "(tessera-tgpu-stage-operands{tma=true} marks one tgpu.tensor_copies "
                 "where TMA can copy every swizzled tile)");
  }
}
