//===- BarrierInsertion.cpp - block barriers between conflicting shared accesses ===//
//
// tessera-tgpu-insert-barriers: a membar-style analysis over the tgpu ops that touch
// shared memory. Different threads read and write different parts of a buffer, so a
// read after a write, a write after a read and a write after a write of the same buffer
// (and stage) need a block barrier between them; a buffer written through the generic
// proxy (st.shared, cp.async) and then read or written through the async proxy (wgmma,
// TMA) needs fence.proxy.async before that barrier. The pass walks each function in
// program order with the accesses made since the last barrier, puts `tgpu.barrier`
// (and `tgpu.fence_async_shared`) before the first op that conflicts with one (before
// the run of copies that op ends, if it is one), and runs loops to a fixed point, so
// that an access of the previous iteration counts. A tile.grid is walked once its
// accesses are all ops (its waits placed, tgpu.waits_placed); the lowering orders the
// others itself.
//
// What each op does to shared memory:
//   local_load                  reads (buffer, stage); of a #tgpu.shared_operand tile it
//                               is a view, read by each op using it (through tile.trans)
//                               where that op runs: a wgmma product through the async
//                               proxy (a descriptor), an mma.sync one by ldmatrix
//   local_store                 writes (buffer, stage)
//   local_alloc %x              is ordered on both sides by its lowering: everything
//                               before it is ordered (a barrier), and its tile is visible
//                               (and fenced, swizzled for wgmma) when it ends
//   async_copy                  starts a write: it conflicts with what was read or
//                               written before it; its data lands at the async_wait
//                               that covers its group (a write there, for the readers)
//   tma_load                    writes through the async proxy; readers wait on its
//                               mbarrier, which orders them (no barrier for those)
//   tma_store, warpgroup_dot    read through the async proxy
// Barriers already in the IR count; running the pass twice adds nothing. The partitions
// of a tgpu.warp_specialize synchronise through mbarriers and are left alone (a block
// barrier inside one would wait for warps that never come); everything the op may have
// done counts as pending after it.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/AsyncWaits.h"
#include "codegen/gpu/Passes.h"
#include "dialect/tgpu/TgpuDialect.h"
#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUINSERTBARRIERS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
/// One access of a shared buffer: the stage it touches (null: every stage, or one not
/// known) and the op that makes it.
struct Access {
  Value buffer;
  Value stage;
  Operation *op;
  bool operator==(const Access &o) const {
    return buffer == o.buffer && stage == o.stage && op == o.op;
  }
};

bool stagesMayMeet(Value a, Value b) {
  if (!a || !b || a == b)
    return true;
  APInt x, y;
  if (matchPattern(a, m_ConstantInt(&x)) && matchPattern(b, m_ConstantInt(&y)))
    return x == y;
  return true;
}

bool overlap(const Access &a, const Access &b) {
  return a.buffer == b.buffer && stagesMayMeet(a.stage, b.stage);
}

void addOnce(SmallVector<Access> &set, const Access &a) {
  if (!llvm::is_contained(set, a))
    set.push_back(a);
}

const Access *firstOverlap(ArrayRef<Access> set, const Access &a) {
  auto it = llvm::find_if(set, [&](const Access &b) { return overlap(a, b); });
  return it == set.end() ? nullptr : &*it;
}

/// Whether a grid's shared-memory accesses are all ops: its copies are cp.async ops with
/// their waits (tessera-tgpu-insert-waits). The copies of the others — mma.sync's
/// through registers, TMA's, the lowering's own — are still made by the lowering, and
/// so are their barriers.
bool accessesAreOps(tile::GridOp grid) { return grid->hasAttr(kWaitsPlacedAttr); }

/// What the walk knows at a program point.
struct State {
  SmallVector<Access> reads, writes; // since the last barrier
  SmallVector<Access> unfenced;      // generic-proxy writes no fence.proxy.async has covered
  SmallVector<Access> inFlight;      // cp.async copies no wait is known to cover
  bool unknown = false;              // after a warp_specialize: anything may be pending

  void join(const State &o) {
    for (const Access &a : o.reads)
      addOnce(reads, a);
    for (const Access &a : o.writes)
      addOnce(writes, a);
    for (const Access &a : o.unfenced)
      addOnce(unfenced, a);
    for (const Access &a : o.inFlight)
      addOnce(inFlight, a);
    unknown |= o.unknown;
  }
  // Joins only add, so a join that changed nothing left the sizes as they were.
  size_t size() const {
    return reads.size() + writes.size() + unfenced.size() + inFlight.size() + unknown;
  }
  void barrier() {
    reads.clear();
    writes.clear();
    unknown = false;
  }
};

/// When an op's writes become something later readers conflict with.
enum class Landing {
  Now,       // generic stores
  AtWait,    // cp.async: at the async_wait that covers its group
  Mbarrier,  // TMA: its readers wait on the mbarrier, which orders them
};

/// An op's shared-memory accesses (see the file comment).
struct Effects {
  SmallVector<Access> reads, writes;
  bool asyncProxy = false; // wgmma, TMA
  Landing landing = Landing::Now;
  bool empty() const { return reads.empty() && writes.empty(); }
};

/// The shared-operand view `v` is (a local_load of one, or its transpose), if it is one.
tgpu::LocalLoadOp viewOf(Value v) {
  if (auto trans = v.getDefiningOp<tile::TransOp>())
    return viewOf(trans.getInput());
  auto read = v.getDefiningOp<tgpu::LocalLoadOp>();
  if (!read || !isa<tgpu::SharedOperandEncodingAttr>(read.getType().getEncoding()))
    return nullptr;
  return read;
}

Effects effectsOf(Operation *op) {
  Effects e;
  auto read = dyn_cast<tgpu::LocalLoadOp>(op);
  if (isa<tile::TransOp>(op) || (read && viewOf(read.getResult())))
    return e; // a view: its users read
  // The buffers read through the views this op uses, here.
  for (Value operand : op->getOperands())
    if (tgpu::LocalLoadOp view = viewOf(operand)) {
      addOnce(e.reads, {view.getBuffer(), view.getStage(), op});
      auto layout = cast<tgpu::SharedOperandEncodingAttr>(view.getType().getEncoding());
      e.asyncProxy |= isa<tile::DotOp>(op) &&
                      layout.getParent().getVersion() == tgpu::MmaVersion::wgmma;
    }
  llvm::TypeSwitch<Operation *>(op)
      .Case([&](tgpu::LocalLoadOp o) { e.reads.push_back({o.getBuffer(), o.getStage(), op}); })
      .Case([&](tgpu::LocalStoreOp o) {
        e.writes.push_back({o.getBuffer(), o.getStage(), op});
      })
      .Case([&](tgpu::AsyncCopyOp o) {
        e.writes.push_back({o.getBuffer(), o.getStage(), op});
        e.landing = Landing::AtWait;
      })
      .Case([&](tgpu::TmaLoadOp o) {
        e.writes.push_back({o.getBuffer(), o.getStage(), op});
        e.asyncProxy = true;
        e.landing = Landing::Mbarrier;
      })
      .Case([&](tgpu::TmaStoreOp o) {
        e.reads.push_back({o.getBuffer(), Value(), op});
        e.asyncProxy = true;
      })
      .Case([&](tgpu::WarpgroupDotOp o) {
        if (isa<tgpu::SharedBufferType>(o.getA().getType()))
          e.reads.push_back({o.getA(), o.getAStage(), op});
        e.reads.push_back({o.getB(), o.getBStage(), op});
        e.asyncProxy = true;
      });
  return e;
}

/// The copies whose data a wait covers for sure: those of the groups it names, or every
/// one in flight when it leaves no group pending.
SmallVector<Operation *> coveredCopies(tgpu::AsyncWaitOp wait, ArrayRef<Access> inFlight) {
  SmallVector<Operation *> covered;
  if (wait.getPending() == 0) {
    for (const Access &a : inFlight)
      covered.push_back(a.op);
    return covered;
  }
  for (Value group : wait.getGroups())
    if (auto commit = group.getDefiningOp<tgpu::AsyncCommitGroupOp>())
      for (Value token : commit.getTokens())
        if (Operation *copy = token.getDefiningOp())
          covered.push_back(copy);
  return covered;
}

class BarrierInserter {
public:
  explicit BarrierInserter(bool report) : report(report) {}

  LogicalResult visitRegion(Region &region, State &state) {
    if (region.empty())
      return success();
    if (!region.hasOneBlock())
      return region.getParentOp()->emitOpError(
          "has a region of several blocks: barrier insertion needs structured control flow");
    for (Operation &op : region.front())
      if (failed(visitOp(&op, state)))
        return failure();
    return success();
  }

private:
  bool report;

  LogicalResult visitOp(Operation *op, State &state) {
    if (isa<tgpu::BarrierOp, mlir::gpu::BarrierOp>(op)) {
      state.barrier();
      return success();
    }
    if (isa<tgpu::FenceAsyncSharedOp>(op)) {
      state.unfenced.clear();
      return success();
    }
    if (auto alloc = dyn_cast<tgpu::LocalAllocOp>(op); alloc && alloc.getInit()) {
      state.barrier();
      if (alloc.getType().getLayout().getKind() == tgpu::SwizzleKind::swizzle_128b)
        state.unfenced.clear();
      return success();
    }
    if (auto wait = dyn_cast<tgpu::AsyncWaitOp>(op)) {
      land(wait, state);
      return success();
    }
    if (isa<tgpu::WarpSpecializeOp>(op)) {
      // Every warp enters it: settle what is pending while they all still can (a
      // generic write the partitions may read by TMA or wgmma needs its fence too).
      bool fence = !state.unfenced.empty();
      if (fence || !state.reads.empty() || !state.writes.empty() || state.unknown)
        insertBefore(op, state, fence, "its partitions read and write shared memory");
      state.unknown = true;
      return success();
    }
    if (auto loop = dyn_cast<scf::ForOp>(op))
      return visitLoop({&loop.getRegion()}, state);
    if (auto loop = dyn_cast<scf::WhileOp>(op))
      return visitLoop({&loop.getBefore(), &loop.getAfter()}, state);
    if (auto branch = dyn_cast<scf::IfOp>(op)) {
      State other = state;
      if (failed(visitRegion(branch.getThenRegion(), state)) ||
          failed(visitRegion(branch.getElseRegion(), other)))
        return failure();
      state.join(other);
      return success();
    }
    if (auto grid = dyn_cast<tile::GridOp>(op); grid && !accessesAreOps(grid))
      return success();
    // Other ops with regions (a tile.grid body) run their regions once, in order.
    for (Region &region : op->getRegions())
      if (failed(visitRegion(region, state)))
        return failure();
    return visitAccesses(op, state);
  }

  /// A loop's regions run zero or more times: walked until what reaches their start
  /// stops growing. Barriers put in on one walk stay; later walks only add conflicts.
  LogicalResult visitLoop(ArrayRef<Region *> regions, State &state) {
    State entry = state;
    while (true) {
      State end = entry;
      for (Region *region : regions)
        if (failed(visitRegion(*region, end)))
          return failure();
      State next = entry;
      next.join(end);
      if (next.size() == entry.size()) {
        state = std::move(next);
        return success();
      }
      entry = std::move(next);
    }
  }

  void land(tgpu::AsyncWaitOp wait, State &state) {
    // A copy lands at every wait until one is known to cover it: a barrier between two
    // waits must not hide a copy that only the second one covered.
    SmallVector<Operation *> covered = coveredCopies(wait, state.inFlight);
    for (const Access &a : state.inFlight) {
      addOnce(state.writes, a);
      addOnce(state.unfenced, a);
    }
    llvm::erase_if(state.inFlight,
                   [&](const Access &a) { return llvm::is_contained(covered, a.op); });
  }

  LogicalResult visitAccesses(Operation *op, State &state) {
    Effects e = effectsOf(op);
    if (e.empty())
      return success();
    std::string why;
    for (const Access &r : e.reads)
      if (const Access *w = firstOverlap(state.writes, r)) {
        why = "it reads what " + w->op->getName().getStringRef().str() + " wrote";
        break;
      }
    for (const Access &w : e.writes) {
      if (!why.empty())
        break;
      if (const Access *r = firstOverlap(state.reads, w))
        why = "it writes what " + r->op->getName().getStringRef().str() + " read";
      else if (const Access *x = firstOverlap(state.writes, w))
        why = "it writes what " + x->op->getName().getStringRef().str() + " wrote";
    }
    if (why.empty() && state.unknown)
      why = "a warp_specialize before it may have touched any buffer";
    bool fence = false;
    if (e.asyncProxy) {
      for (const Access &a : llvm::concat<const Access>(e.reads, e.writes))
        if (const Access *w = firstOverlap(state.unfenced, a)) {
          fence = true;
          why = "it reaches through the async proxy what " +
                w->op->getName().getStringRef().str() + " wrote";
          break;
        }
      fence |= state.unknown;
    }
    if (!why.empty())
      insertBefore(op, state, fence, why);
    for (const Access &r : e.reads)
      addOnce(state.reads, r);
    for (const Access &w : e.writes) {
      if (e.landing == Landing::AtWait) {
        addOnce(state.inFlight, w);
      } else if (e.landing == Landing::Now) {
        addOnce(state.writes, w);
        addOnce(state.unfenced, w);
      }
    }
    return success();
  }

  /// Where a barrier needed before `op` goes: before the first of the copies that start
  /// right above it (with the index arithmetic between them), as the lowering puts one
  /// barrier before a run of copies. None of them is what the barrier orders: a copy's
  /// write conflicts from its start, so the first conflicting one would be `op`.
  static Operation *barrierPoint(Operation *op) {
    Operation *at = op;
    for (Operation *prev = op->getPrevNode(); prev; prev = prev->getPrevNode()) {
      if (isa<tgpu::AsyncCopyOp>(prev))
        at = prev;
      else if (prev->getNumRegions() || !isPure(prev))
        break;
    }
    return at;
  }

  void insertBefore(Operation *op, State &state, bool fence, StringRef why) {
    Operation *at = barrierPoint(op);
    OpBuilder b(at);
    if (fence) {
      tgpu::FenceAsyncSharedOp::create(b, op->getLoc());
      state.unfenced.clear();
    }
    tgpu::BarrierOp::create(b, op->getLoc());
    state.barrier();
    if (report)
      op->emitRemark() << (fence ? "fence and barrier" : "barrier") << " before this op"
                       << (at == op ? "" : " (and the copies right above it)") << ": " << why;
  }
};

struct TgpuInsertBarriersPass
    : tessera::gpu::impl::TgpuInsertBarriersBase<TgpuInsertBarriersPass> {
  using TgpuInsertBarriersBase::TgpuInsertBarriersBase;
  void runOnOperation() override {
    BarrierInserter inserter(report);
    getOperation().walk([&](FunctionOpInterface fn) {
      State state;
      if (failed(inserter.visitRegion(fn.getFunctionBody(), state)))
        signalPassFailure();
    });
  }
};
} // namespace
