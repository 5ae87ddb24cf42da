//===- BarrierInsertion.cpp - block barriers between conflicting shared accesses ===//
//
// tessera-tgpu-insert-barriers: a membar-style analysis over the tgpu ops that touch
// shared memory. Different threads read and write different parts of a buffer, so a
// read after a write, a write after a read and a write after a write of the same buffer
// (and stage) need a block barrier between them; a buffer written through the generic
// proxy (st.shared, cp.async) and then read or written through the async proxy (wgmma,
// TMA) needs fence.proxy.async before that barrier. The pass walks each function in
// program order with the accesses made since the last barrier, puts `tgpu.barrier`
// (and `tgpu.fence_async_shared`) right before the first op that conflicts with one,
// and runs loops to a fixed point, so that an access of the previous iteration counts.
//
// What each op does to shared memory:
//   local_load                  reads (buffer, stage)
//   local_store, local_alloc %x writes (buffer, stage) / the new buffer
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
#include "codegen/gpu/Passes.h"
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUINSERTBARRIERS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;

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

Effects effectsOf(Operation *op) {
  Effects e;
  llvm::TypeSwitch<Operation *>(op)
      .Case([&](tgpu::LocalLoadOp o) { e.reads.push_back({o.getBuffer(), o.getStage(), op}); })
      .Case([&](tgpu::LocalStoreOp o) {
        e.writes.push_back({o.getBuffer(), o.getStage(), op});
      })
      .Case([&](tgpu::LocalAllocOp o) {
        if (o.getInit())
          e.writes.push_back({o.getResult(), Value(), op});
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

  void insertBefore(Operation *op, State &state, bool fence, StringRef why) {
    OpBuilder b(op);
    if (fence) {
      tgpu::FenceAsyncSharedOp::create(b, op->getLoc());
      state.unfenced.clear();
    }
    tgpu::BarrierOp::create(b, op->getLoc());
    state.barrier();
    if (report)
      op->emitRemark() << (fence ? "fence and barrier" : "barrier") << " before this op: " << why;
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
