//===- SoftwarePipelining.cpp - prefetching loops rotated in the IR ---------===//
//
// tessera-tgpu-pipeline-loops: each loop the schedule prefetches with cp.async
// (tgpu.pipeline "cp_async" / "cp_async_first_product", in a grid whose staged loads are
// copies) is rotated where the IR shows it: the copies of its first `distance`
// iterations before it (the prologue, into stages 0 .. distance - 1), a stage carried
// as its last iter_arg, each prefetched copy issued for the iteration `distance` on
// into the stage the last iteration read (the first product's operands only: for the
// next iteration into the other stage, after the body's own copies), and every read of
// a prefetched buffer in the loop naming the iteration's stage. A loop continuing the
// previous one's copies (tgpu.continues_prefetch) starts from that loop's stage and
// has no prologue. Each iteration starts with its wait and barrier as ops; the
// prologue's and the products' waits are tessera-tgpu-insert-waits' (docs/RationaleTgpu.md,
// "Software pipelining").
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/PersistentGrid.h"
#include "codegen/gpu/ReadAhead.h"
#include "codegen/gpu/StageAttrs.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUPIPELINELOOPS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
/// One prefetched copy of a loop: the op, and its indices' computation in the body.
struct PrefetchedCopy {
  mutable tgpu::AsyncCopyOp copy; // (op accessors are not const)
  SmallVector<Operation *> indexSlice;
};

/// What a continuing loop checks of the loop before it: its prefetched copies' sources,
/// buffers and indices (values of its body), and the stage it leaves.
struct RotatedLoop {
  scf::ForOp loop;
  SmallVector<std::tuple<Value, Value, SmallVector<Value>>> copies;
};

/// Clones `p`'s index computation for induction value `iv` at `b` and copies the tile
/// there into `stage` of its buffer.
tgpu::AsyncCopyOp copyAt(OpBuilder &b, scf::ForOp loop, const PrefetchedCopy &p, Value iv,
                         Value stage) {
  IRMapping m;
  m.map(loop.getInductionVar(), iv);
  for (Operation *o : p.indexSlice)
    b.clone(*o, m);
  SmallVector<Value> indices;
  for (Value i : p.copy.getIndices())
    indices.push_back(m.lookupOrDefault(i));
  return tgpu::AsyncCopyOp::create(b, p.copy.getLoc(), p.copy.getToken().getType(),
                                   p.copy.getSource(), indices, p.copy.getBuffer(), stage);
}

class LoopPipeliner {
public:
  explicit LoopPipeliner(tile::GridOp grid)
      : grid(grid), numThreads(32 * grid.getConfig().getNumWarps()) {}
  LogicalResult run();

private:
  tile::GridOp grid;
  int64_t numThreads;
  DenseMap<Operation *, RotatedLoop> rotated; // by the new loop

  FailureOr<SmallVector<PrefetchedCopy>> prefetchedCopies(scf::ForOp loop);
  LogicalResult checkContinuation(scf::ForOp loop, ArrayRef<PrefetchedCopy> copies,
                                  scf::ForOp &previous);
  LogicalResult rotate(scf::ForOp loop);
};

FailureOr<SmallVector<PrefetchedCopy>> LoopPipeliner::prefetchedCopies(scf::ForOp loop) {
  SmallVector<PrefetchedCopy> out;
  for (Operation &o : loop.getBody()->without_terminator()) {
    auto copy = dyn_cast<tgpu::AsyncCopyOp>(o);
    if (!copy || !copy->hasAttr(kPrefetchDistanceAttr))
      continue;
    tgpu::SharedBufferType type = copy.getBuffer().getType();
    FailureOr<SmallVector<Operation *>> slice = prefetchSlice(loop, copy.getIndices());
    if (copy.getStage() || type.getLayout().getKind() != tgpu::SwizzleKind::swizzle_128b ||
        !vectorsPerThreadOf(TileCopy::of(copy), numThreads) || failed(slice))
      return copy.emitError("tgpu.prefetch_distance on a copy that cannot be prefetched "
                            "(its buffer is not swizzled rows of whole 16-byte vectors per "
                            "thread, its stage is given, or its indices are not known an "
                            "iteration early)");
    if (type.getStages() < 2)
      return copy.emitError("a prefetched tile needs a multi-buffered swizzled buffer; got ")
             << type;
    for (const PrefetchedCopy &p : out)
      if (p.copy.getBuffer() == copy.getBuffer())
        return copy.emitError("two prefetched copies into one buffer in one loop");
    out.push_back({copy, std::move(*slice)});
  }
  return out;
}

LogicalResult LoopPipeliner::checkContinuation(scf::ForOp loop,
                                               ArrayRef<PrefetchedCopy> copies,
                                               scf::ForOp &previous) {
  // The loop before it ends where this one starts, steps alike and leaves copies of the
  // same tiles in flight: those of this loop's first iteration.
  auto it = rotated.find(loop->getPrevNode());
  bool continues = it != rotated.end();
  if (continues) {
    RotatedLoop &last = it->second;
    continues = loop.getLowerBound() == last.loop.getUpperBound() &&
                loop.getStep() == last.loop.getStep() &&
                copies.size() == last.copies.size();
    for (auto [p, q] : llvm::zip(copies, last.copies)) {
      auto &[source, buffer, indices] = q;
      continues = continues && p.copy.getSource() == source && p.copy.getBuffer() == buffer;
      for (auto [i, j] : llvm::zip(p.copy.getIndices(), indices))
        continues = continues && sameFunctionOfIv(i, loop, j, last.loop);
    }
    previous = last.loop;
  }
  if (!continues)
    return loop.emitError("tgpu.continues_prefetch: the loop before it leaves no copies of "
                          "these tiles in flight (it must end where this loop starts and "
                          "prefetch the same tiles the same way)");
  return success();
}

LogicalResult LoopPipeliner::rotate(scf::ForOp loop) {
  StringRef mode = loop->getAttrOfType<StringAttr>(kPipelineAttr).getValue();
  FailureOr<SmallVector<PrefetchedCopy>> found = prefetchedCopies(loop);
  if (failed(found))
    return failure();
  SmallVector<PrefetchedCopy> copies = std::move(*found);
  if (copies.empty())
    return loop.emitError(kPipelineAttr)
           << " = \"" << mode << "\" does not fit this loop: \"none\" for a loop with no "
           << "prefetched copy";
  bool firstOnly = mode == "cp_async_first_product";
  auto distance = loop->getAttrOfType<IntegerAttr>(kPrefetchDistanceAttr);
  int64_t ahead = distance ? std::max<int64_t>(1, distance.getInt()) : 1;
  for (const PrefetchedCopy &p : copies)
    if (ahead > 1 && (firstOnly || ahead + 1 > p.copy.getBuffer().getType().getStages()))
      return loop.emitError(kPrefetchDistanceAttr)
             << " = " << ahead << " needs a \"cp_async\" loop and " << ahead + 1
             << " buffer stages";
  scf::ForOp previous;
  if (loop->hasAttr(kContinuesPrefetchAttr) &&
      failed(checkContinuation(loop, copies, previous)))
    return failure();

  Location loc = loop.getLoc();
  OpBuilder b(loop);
  auto constant = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value lb = loop.getLowerBound(), step = loop.getStep();
  // The prologue: the first `ahead` iterations' tiles, into stages 0 .. ahead - 1.
  Value firstStage = previous ? previous.getResults().back() : constant(0);
  for (int64_t j = 0; !previous && j < ahead; ++j) {
    Value stage = firstStage, iv = lb;
    if (j) {
      stage = constant(j);
      iv = arith::AddIOp::create(b, loc, lb, arith::MulIOp::create(b, loc, stage, step));
    }
    for (const PrefetchedCopy &p : copies)
      copyAt(b, loop, p, iv, stage);
  }

  SmallVector<Value> inits(loop.getInitArgs());
  inits.push_back(firstStage);
  auto pipelined = scf::ForOp::create(b, loc, lb, loop.getUpperBound(), step, inits);
  pipelined->setDiscardableAttrs(loop->getDiscardableAttrDictionary());
  pipelined->setAttr(kPipelinedAttr, b.getUnitAttr());
  Block *body = pipelined.getBody();
  body->getOperations().splice(body->end(), loop.getBody()->getOperations());
  for (auto [from, to] : llvm::zip(loop.getBody()->getArguments(), body->getArguments()))
    from.replaceAllUsesWith(to);
  loop->replaceAllUsesWith(pipelined.getResults().drop_back());
  Value stage = body->getArguments().back();
  Value iv = pipelined.getInductionVar();

  // This iteration's stage is `stage`; the copies go to `fill` for iteration `target`,
  // and the next iteration reads `following`.
  b.setInsertionPointToStart(body);
  // Each iteration starts once its own tiles have landed (all but the copies for the
  // `ahead - 1` iterations after it: one group per copy) and every thread is done with
  // the stage the last iteration read, which its copies refill. A first-product loop's
  // products wait for their own copies (the lowering's groups).
  if (!firstOnly) {
    tgpu::AsyncWaitOp::create(b, loc, tgpu::AsyncTokenType::get(b.getContext()), ValueRange(),
                              (ahead - 1) * int64_t(copies.size()));
    // Copied through the generic proxy, read by wgmma through the async one.
    tgpu::FenceAsyncSharedOp::create(b, loc);
  }
  tgpu::BarrierOp::create(b, loc);
  auto [fill, following, target] = rotatedStages(b, loc, stage, iv, step, ahead, firstOnly);
  if (firstOnly) {
    // After the body's own copies that come before its first product or branch: they
    // and this iteration's prefetched tiles land under the first product.
    for (Operation &x : body->without_terminator()) {
      if (isa<tile::DotOp>(x) || x.getNumRegions())
        break;
      auto own = dyn_cast<tgpu::AsyncCopyOp>(x);
      auto load = dyn_cast<tile::LoadOp>(x);
      if ((own && !own->hasAttr(kPrefetchDistanceAttr) && !own.getStage()) ||
          (load && Distributor::isStaged(load)))
        b.setInsertionPointAfter(&x);
    }
  }
  auto i64 = b.getI64IntegerAttr(ahead);
  RotatedLoop record{pipelined, {}};
  for (const PrefetchedCopy &p : copies) {
    copyAt(b, pipelined, p, target, fill)->setAttr(kPrefetchDistanceAttr, i64);
    record.copies.push_back({p.copy.getSource(), p.copy.getBuffer(),
                             SmallVector<Value>(p.copy.getIndices())});
  }
  // Every read of a prefetched buffer in the loop takes this iteration's stage.
  pipelined.getBody()->walk([&](tgpu::LocalLoadOp read) {
    if (!read.getStage() && llvm::any_of(copies, [&](const PrefetchedCopy &p) {
          return p.copy.getBuffer() == read.getBuffer();
        }))
      read.getStageMutable().assign(stage);
  });
  for (const PrefetchedCopy &p : copies)
    p.copy.erase();
  Operation *yield = body->getTerminator();
  yield->insertOperands(yield->getNumOperands(), following);
  loop.erase();
  // A loop copying `ahead` > 1 iterations on leaves more in flight than one stage: no
  // loop continues it.
  if (ahead == 1)
    rotated[pipelined] = std::move(record);
  return success();
}

LogicalResult LoopPipeliner::run() {
  SmallVector<scf::ForOp> loops; // in program order: a continuation after its loop
  grid.getBody().walk<WalkOrder::PreOrder>([&](scf::ForOp loop) {
    auto mode = loop->getAttrOfType<StringAttr>(kPipelineAttr);
    // A persistent grid's work loop is not pipelined (its lowering reports a schedule
    // that says otherwise).
    if (mode && isCpAsyncPipeline(mode.getValue()) && !loop->hasAttr(kPipelinedAttr) &&
        !loop->hasAttr(kWorkItemsAttr))
      loops.push_back(loop);
  });
  for (scf::ForOp loop : loops)
    if (failed(rotate(loop)))
      return failure();
  return success();
}
} // namespace

RotatedStages tessera::gpu::rotatedStages(OpBuilder &b, Location loc, Value stage, Value iv,
                                          Value step, int64_t ahead, bool firstOnly) {
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  if (firstOnly) {
    Value other = arith::SubIOp::create(b, loc, one, stage);
    return {other, other, arith::AddIOp::create(b, loc, iv, step)};
  }
  Value last = arith::ConstantIndexOp::create(b, loc, ahead), fill, following;
  if (ahead == 1) {
    fill = following = arith::SubIOp::create(b, loc, one, stage);
  } else {
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value atZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, stage, zero);
    Value atLast = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, stage, last);
    fill = arith::SelectOp::create(b, loc, atZero, last,
                                   arith::SubIOp::create(b, loc, stage, one));
    following = arith::SelectOp::create(b, loc, atLast, zero,
                                        arith::AddIOp::create(b, loc, stage, one));
  }
  Value target = arith::AddIOp::create(b, loc, iv, arith::MulIOp::create(b, loc, last, step));
  return {fill, following, target};
}

LogicalResult tessera::gpu::pipelineLoops(tile::GridOp grid) {
  tgpu::MmaEncodingAttr accumulator = accumulatorOf(grid);
  if (!grid->hasAttr(kLoadsCopiedAttr) || !accumulator ||
      accumulator.getVersion() != tgpu::MmaVersion::wgmma)
    return success();
  return LoopPipeliner(grid).run();
}

namespace {
struct TgpuPipelineLoopsPass : tessera::gpu::impl::TgpuPipelineLoopsBase<TgpuPipelineLoopsPass> {
  using TgpuPipelineLoopsBase::TgpuPipelineLoopsBase;
  void runOnOperation() override {
    SmallVector<tile::GridOp> grids;
    getOperation().walk([&](tile::GridOp grid) { grids.push_back(grid); });
    for (tile::GridOp grid : grids)
      if (failed(pipelineLoops(grid)))
        return signalPassFailure();
  }
};
} // namespace
