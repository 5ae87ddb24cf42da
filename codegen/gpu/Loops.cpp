//===- Loops.cpp - stage plan, prefetching, loops and branches --------------===//
//
// The stage plan (which staged tiles are double-buffered), loop-level prefetching
// (cp.async one or num_stages - 1 iterations ahead, continued across a masked /
// unmasked / masked split), and scf.for / scf.while / scf.if with their tiles carried
// as slots.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/StageAttrs.h"
#include "codegen/gpu/ReadAhead.h"
#include "passes/TileLoopAttrs.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

std::optional<Distributor::Prefetch> Distributor::prefetchOf(const TileCopy &copy,
                                                           scf::ForOp op) {
  if (!copy.staged || !vectorsPerThread(copy) || (wgmma && !copy.swizzled))
    return std::nullopt;
  FailureOr<SmallVector<Operation *>> slice = prefetchSlice(op, copy.indices);
  if (failed(slice))
    return std::nullopt;
  return Prefetch{copy, std::move(*slice)};
}

SmallVector<Distributor::Prefetch> Distributor::findPrefetches(scf::ForOp op) {
  SmallVector<Prefetch> out;
  if (numStages < 2)
    return out;
  // A user's tgpu.prefetch_distance = 0 keeps the loop at one stage; a loop scheduled
  // already keeps the loads it marks.
  if (auto d = op->getAttrOfType<IntegerAttr>(kPrefetchDistanceAttr); d && d.getInt() == 0)
    return out;
  bool scheduled = op->hasAttr(kPipelineAttr);
  for (Operation &o : op.getBody()->without_terminator()) {
    auto load = dyn_cast<tile::LoadOp>(o);
    if (!load || (scheduled && !load->hasAttr(kPrefetchDistanceAttr)))
      continue;
    std::optional<Prefetch> p = prefetchOf(TileCopy::of(load), op);
    if (p && (!firstProductOnly() || feedsFirstProduct(load, op)))
      out.push_back(std::move(*p));
  }
  return out;
}

FailureOr<SmallVector<Distributor::Prefetch>> Distributor::scheduledPrefetches(scf::ForOp op) {
  SmallVector<Prefetch> out;
  for (Operation &o : op.getBody()->without_terminator()) {
    if (!TileCopy::isCopy(&o) || !o.hasAttr(kPrefetchDistanceAttr))
      continue;
    std::optional<Prefetch> p = prefetchOf(TileCopy::of(&o), op);
    if (!p)
      return o.emitError("tgpu.prefetch_distance on a load that cannot be prefetched "
                         "(its tile is not staged, or its indices are not known an "
                         "iteration early)");
    out.push_back(std::move(*p));
  }
  return out;
}

/// Whether `v` is an operand of `dot`, directly or transposed.
static bool feedsProduct(Value v, tile::DotOp dot) {
  return llvm::any_of(v.getUsers(), [&](Operation *user) {
    return user == dot.getOperation() ||
           (isa<tile::TransOp>(user) && feedsProduct(user->getResult(0), dot));
  });
}

bool Distributor::feedsFirstProduct(tile::LoadOp load, scf::ForOp loop) {
  tile::DotOp first;
  loop.getBody()->walk<WalkOrder::PreOrder>([&](tile::DotOp dot) {
    first = dot;
    return WalkResult::interrupt();
  });
  return first && feedsProduct(load.getResult(), first);
}

void Distributor::planStages(Block &gridBody) {
  if (!wgmma || numStages < 2)
    return;
  using Key = BufferKey;
  llvm::MapVector<Key, int64_t> stageBytes;
  DenseSet<Key> prefetched, firstOperands, notLeft;
  gridBody.walk([&](tile::LoadOp load) {
    if (!isStaged(load) || !swizzles(load))
      return;
    auto type = cast<RankedTensorType>(load.getType());
    Key key = bufferKey(load);
    // As allocateSwizzled lays it out: whole 64-column swizzle blocks.
    stageBytes[key] = llvm::alignTo(
        type.getDimSize(0) * llvm::alignTo(type.getDimSize(1), kSwizzleCols) * 2,
        kSwizzleAtomBytes);
    if (layoutOf(load.getResult()).kind != LayoutKind::A)
      notLeft.insert(key);
  });
  gridBody.walk([&](scf::ForOp loop) {
    for (Prefetch &p : findPrefetches(loop)) {
      auto load = cast<tile::LoadOp>(p.copy.op);
      Key key = bufferKey(load);
      prefetched.insert(key);
      if (feedsFirstProduct(load, loop))
        firstOperands.insert(key);
    }
  });
  auto bytes = [&](function_ref<bool(Key)> twoStages) {
    int64_t total = 0;
    for (auto &[key, b] : stageBytes)
      total += b * (twoStages(key) ? prefetchStages() : 1);
    return total;
  };
  auto everyTile = [&](Key k) { return prefetched.contains(k) || notLeft.contains(k); };
  auto firstOnly = [&](Key k) { return firstOperands.contains(k); };
  // Computed right operands (a state, a feature-mapped key) take swizzled buffers of
  // their own.
  DenseSet<Value> computed;
  int64_t computedBytes = 0;
  gridBody.walk([&](tile::DotOp dot) {
    Value r = dot.getRhs();
    if (auto t = r.getDefiningOp<tile::TransOp>())
      r = t.getInput();
    int64_t elements = cast<RankedTensorType>(r.getType()).getNumElements();
    // One buffer per staged value (tessera-tgpu-stage-operands), however many read it.
    if (auto read = r.getDefiningOp<tgpu::LocalLoadOp>())
      r = read.getBuffer();
    if (!r.getDefiningOp<tile::LoadOp>() && computed.insert(r).second)
      computedBytes += llvm::alignTo(elements * 2, kSwizzleAtomBytes);
  });
  // num_stages beyond two is a ceiling: as many stages as leave a quarter of a block's
  // shared memory to its other buffers.
  while (numStages > 2 && bytes(everyTile) + computedBytes > kSharedLimit * 3 / 4)
    --numStages;
  // Warpgroup kernels take >= 128 registers a thread: at most 16 / num_warps blocks;
  // those computing a right operand carry a tile state across their loop (~200).
  int64_t registerBound = (computed.empty() ? 16 : 8) / numWarps;
  auto blocksPerSM = [&](int64_t smem) {
    return std::min(kSharedPerSM / (smem + computedBytes + 1024), registerBound);
  };
  // (num_stages > 2 asks for every tile num_stages - 1 iterations ahead.) Head dims
  // other than 64 and 128 (a partial swizzle block to address, or wide accumulators) need
  // more registers than the planned blocks leave a thread: every tile double-buffered.
  bool partialBlocks = llvm::any_of(stageBytes, [](auto &entry) {
    int64_t cols = cast<RankedTensorType>(std::get<1>(entry.first)).getDimSize(1);
    return cols % kSwizzleCols != 0 || cols > 128;
  });
  if (!firstOperands.empty() && numStages <= 2 && !partialBlocks &&
      blocksPerSM(bytes(firstOnly)) > blocksPerSM(bytes(everyTile)))
    plannedBlocksPerSM = blocksPerSM(bytes(firstOnly));
  for (auto &[key, b] : stageBytes)
    if (firstProductOnly() ? firstOnly(key) : everyTile(key))
      doubleBuffered.insert(key);
}

LogicalResult Distributor::followSchedule(tile::GridOp grid) {
  auto stages = grid->getAttrOfType<IntegerAttr>(kNumStagesAttr);
  if (!stages || stages.getInt() < 1)
    return grid.emitError("tessera-tile-to-gpu follows the grid's schedule: ")
           << kNumStagesAttr << " must be an integer >= 1 (tessera-tgpu-assign-stages)";
  numStages = stages.getInt();
  plannedBlocksPerSM = 0;
  if (auto blocks = grid->getAttrOfType<IntegerAttr>(kBlocksPerSMAttr))
    plannedBlocksPerSM = blocks.getInt();
  // Only warpgroup kernels multi-buffer (swizzled buffers), all with prefetchStages().
  WalkResult bad = grid.getBody().walk([&](tile::LoadOp load) {
    auto n = load->getAttrOfType<IntegerAttr>(kBufferStagesAttr);
    if (!n)
      return WalkResult::advance();
    if (!wgmma || !isStaged(load) || !swizzles(load) || n.getInt() != prefetchStages()) {
      load.emitError(kBufferStagesAttr)
          << " = " << n.getInt() << ": only a tile staged in a swizzled buffer (wgmma) is "
          << "multi-buffered, with max(2, " << kNumStagesAttr << ") = " << prefetchStages()
          << " stages";
      return WalkResult::interrupt();
    }
    doubleBuffered.insert(bufferKey(load));
    return WalkResult::advance();
  });
  if (bad.wasInterrupted())
    return failure();
  // A copied grid's buffers (tessera-tgpu-copy-staged-loads) carry their stages.
  bad = grid.getBody().walk([&](tgpu::LocalAllocOp alloc) {
    int64_t n = alloc.getType().getStages();
    if (n > 1 && (!wgmma || n != prefetchStages())) {
      alloc.emitError("a buffer of ")
          << n << " stages: only a swizzled buffer (wgmma) is multi-buffered, with max(2, "
          << kNumStagesAttr << ") = " << prefetchStages() << " stages";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return failure(bad.wasInterrupted());
}

FailureOr<SmallVector<Distributor::LoopSchedule>> Distributor::scheduleLoops(Block &gridBody) {
  SmallVector<LoopSchedule> out;
  lastPrefetchingLoop.reset();
  // As lowerFor decides: at the loop's start, taking over from the last prefetching loop
  // lowered before it (its body's loops are lowered before it becomes that loop).
  std::function<LogicalResult(Block &)> visit = [&](Block &block) -> LogicalResult {
    for (Operation &x : block) {
      auto op = dyn_cast<scf::ForOp>(x);
      if (!op) {
        for (Region &r : x.getRegions())
          for (Block &inner : r)
            if (failed(visit(inner)))
              return failure();
        continue;
      }
      SmallVector<Prefetch> prefetches = findPrefetches(op);
      auto user = op->getAttrOfType<IntegerAttr>(kPrefetchDistanceAttr);
      bool deep = deepPrefetch(op, prefetches);
      int64_t ahead = deep ? numStages - 1 : 1;
      if (user && !op->hasAttr(kPipelineAttr)) {
        int64_t d = user.getInt();
        if (d < 0)
          return op.emitError("tgpu.prefetch_distance must be >= 0, got ") << d;
        if (d > 0 && prefetches.empty())
          return op.emitError("tgpu.prefetch_distance = ")
                 << d << " asks for prefetching, but "
                 << (numStages < 2 ? "num_stages is 1"
                                   : "no staged load of this loop has indices known an "
                                     "iteration early");
        if (d > 1 && (!deep || d != numStages - 1))
          return op.emitError("tgpu.prefetch_distance = ")
                 << d << " needs wgmma, num_stages = " << d + 1
                 << " and a loop of its own whose staged tiles are all prefetched (this "
                    "kernel has num_stages = "
                 << numStages << ")";
        if (d > 0)
          ahead = d;
      } else if (auto d = op->getAttrOfType<IntegerAttr>(kPrefetchDistanceAttr)) {
        ahead = std::max<int64_t>(1, d.getInt()); // scheduled already: kept
      }
      LoopSchedule s;
      s.loop = op;
      for (Prefetch &p : prefetches)
        s.prefetched.push_back(p.copy.op);
      s.distance = prefetches.empty() ? 0 : ahead;
      s.continues = wgmma && !prefetches.empty() && continuesLastLoop(op, prefetches);
      s.mode = prefetches.empty()   ? "none"
               : !wgmma             ? "registers"
               : firstProductOnly() ? "cp_async_first_product"
                                    : "cp_async";
      out.push_back(std::move(s));
      if (failed(visit(*op.getBody())))
        return failure();
      if (wgmma && !prefetches.empty())
        lastPrefetchingLoop = PrefetchingLoop{op, prefetches, Value()};
      if (ahead > 1)
        lastPrefetchingLoop.reset();
    }
    return success();
  };
  LogicalResult result = visit(gridBody);
  lastPrefetchingLoop.reset();
  if (failed(result))
    return failure();
  return out;
}

SmallVector<Value> Distributor::prefetchAt(const Prefetch &p, Value iv, Value loopIv) {
  return loadRows(p.copy, prefetchOrigin(p, iv, loopIv));
}

SmallVector<Value> Distributor::prefetchOrigin(const Prefetch &p, Value iv, Value loopIv) {
  // Recompute the load's indices for induction value `iv` without touching the mapping
  // the rest of the body uses.
  IRMapping local;
  local.map(loopIv, iv);
  for (Operation *o : p.indexSlice) {
    for (Value operand : o->getOperands())
      if (!local.contains(operand))
        local.map(operand, scalars.lookup(operand));
    b.clone(*o, local);
  }
  SmallVector<Value> origin;
  for (Value i : p.copy.indices)
    origin.push_back(local.contains(i) ? local.lookup(i) : scalars.lookup(i));
  return origin;
}

bool Distributor::continuesLastLoop(scf::ForOp op, ArrayRef<Prefetch> prefetches) {
  // The tile builder's promise (tile.continues_previous), checked against the loops:
  // a shape that merely matches is not taken as one.
  if (!op->hasAttr(tile_loop::kContinuesPrevious) || !lastPrefetchingLoop ||
      op->getPrevNode() != lastPrefetchingLoop->op.getOperation())
    return false;
  scf::ForOp last = lastPrefetchingLoop->op;
  if (op.getLowerBound() != last.getUpperBound() || op.getStep() != last.getStep() ||
      prefetches.size() != lastPrefetchingLoop->prefetches.size())
    return false;
  for (auto [p, q] : llvm::zip(prefetches, lastPrefetchingLoop->prefetches)) {
    if (!p.copy.sameTarget(q.copy))
      return false;
    for (auto [i, j] : llvm::zip(p.copy.indices, q.copy.indices))
      if (!sameFunctionOfIv(i, op, j, last))
        return false;
  }
  return true;
}

/// Whether `op`'s copies may run num_stages - 1 iterations ahead: a loop of its own (it
/// neither continues the last prefetching loop nor is continued: the next loop does not
/// look back at it) whose staged tiles are all prefetched, so that no copy group but the
/// prefetches' is committed in its body and every iteration waits for a fixed count.
bool Distributor::deepPrefetch(scf::ForOp op, ArrayRef<Prefetch> prefetches) {
  if (!wgmma || firstProductOnly() || numStages <= 2 || prefetches.empty() ||
      continuesLastLoop(op, prefetches))
    return false;
  auto prefetched = [&](tile::LoadOp load) {
    return llvm::any_of(prefetches,
                        [&](const Prefetch &p) { return p.copy.op == load.getOperation(); });
  };
  return !op.getBody()
              ->walk([&](tile::LoadOp load) {
                return isStaged(load) && !prefetched(load) ? WalkResult::interrupt()
                                                           : WalkResult::advance();
              })
              .wasInterrupted();
}

void Distributor::freeFirstStages() {
  if (barrierPending)
    return;
  if (copiesPending())
    waitForCopies();
  blockBarrier();
}

LogicalResult Distributor::lowerFor(scf::ForOp op) {
  SmallVector<Value> init;
  if (failed(flatten(op.getInitArgs(), op.getResults(), init)))
    return failure();
  settleProducts();
  size_t numCarried = init.size();
  // The loop's schedule (tessera-tgpu-assign-stages): which loads are prefetched, how
  // many iterations ahead (one, each iteration's copies landing in the stage the last
  // one read, or num_stages - 1 for a loop of its own: the copy engine keeps
  // num_stages - 1 tiles in flight where a short body alone would not hide a copy), how
  // (registers, cp.async of every staged tile or of the first product's operands only)
  // and whether it takes over the previous loop's copies in flight (checked here).
  auto mode = op->getAttrOfType<StringAttr>(kPipelineAttr);
  if (!mode)
    return op.emitError("a loop without ")
           << kPipelineAttr << " in a scheduled grid: run tessera-tgpu-assign-stages after "
           << "changing the program";
  // A loop tessera-tgpu-pipeline-loops rotated: its prologue came before it, its copies
  // and stages are ops of its body (checked there); the waits and barriers around them
  // are still made here.
  bool rotated = op->hasAttr(kPipelinedAttr);
  SmallVector<Prefetch> prefetches;
  SmallVector<int> buffers; // the prefetched tiles' swizzled buffers (wgmma)
  if (rotated) {
    if (!wgmma || !isCpAsyncPipeline(mode.getValue()))
      return op.emitError("a software-pipelined loop is a wgmma kernel's \"cp_async\" or "
                          "\"cp_async_first_product\" loop");
    for (Operation &x : op.getBody()->without_terminator())
      if (auto copy = dyn_cast<tgpu::AsyncCopyOp>(x); copy && copy.getStage())
        buffers.push_back(swizzledBuffer(TileCopy::of(copy)));
  } else {
    FailureOr<SmallVector<Prefetch>> scheduled = scheduledPrefetches(op);
    if (failed(scheduled))
      return failure();
    prefetches = std::move(*scheduled);
    if (wgmma && llvm::any_of(prefetches, [](const Prefetch &p) { return p.copy.buffer; }))
      return op.emitError("a loop prefetching copies is software-pipelined first "
                          "(tessera-tgpu-pipeline-loops)");
  }
  bool prefetching = rotated || !prefetches.empty();
  StringRef expected = !prefetching ? "none"
                       : !wgmma     ? "registers"
                       : mode.getValue() == "cp_async_first_product"
                           ? "cp_async_first_product"
                           : "cp_async";
  if (mode.getValue() != expected)
    return op.emitError(kPipelineAttr)
           << " = \"" << mode.getValue() << "\" does not fit this loop: \"" << expected
           << "\" for " << (wgmma ? "a wgmma" : "an mma.sync") << " kernel with "
           << prefetches.size() << " prefetched load(s)";
  bool firstOnly = expected == "cp_async_first_product";
  for (Prefetch &p : prefetches)
    if (wgmma && bufferStages(p.copy) < 2)
      return p.copy.op->emitError("a prefetched tile needs a multi-buffered swizzled buffer: ")
             << kBufferStagesAttr << " = " << prefetchStages() << " on this load";
  auto distance = op->getAttrOfType<IntegerAttr>(kPrefetchDistanceAttr);
  int64_t ahead = distance ? std::max<int64_t>(1, distance.getInt()) : 1;
  if (!prefetches.empty() && ahead > 1 && (!wgmma || firstOnly || ahead + 1 > prefetchStages()))
    return op.emitError(kPrefetchDistanceAttr)
           << " = " << ahead << " needs a \"cp_async\" loop and " << ahead + 1
           << " buffer stages (" << kNumStagesAttr << " = " << numStages << ")";
  bool continues = !rotated && op->hasAttr(kContinuesPrefetchAttr);
  if (continues && !(wgmma && !prefetches.empty() && continuesLastLoop(op, prefetches)))
    return op.emitError("tgpu.continues_prefetch: the loop before it leaves no copies of "
                        "these tiles in flight (it must end where this loop starts and "
                        "prefetch the same tiles the same way)");
  // Copies in flight before a wgmma loop (Q) stay in flight into it: only products read
  // swizzled tiles, and the first to need them waits (older groups are waited for with
  // any newer one). Every iteration starts as if after a barrier-free body end.
  SmallVector<int> copiesBeforeLoop;
  if (!wgmma) {
    flushBarrier();
  } else if (!prefetching) {
    if (barrierPending)
      tgpu::BarrierOp::create(b);
    barrierPending = false;
    copiesBeforeLoop = pendingCopies;
  }
  Value lb = scalars.lookup(op.getLowerBound()), step = scalars.lookup(op.getStep());
  SmallVector<size_t> regCounts;
  Value first = arith::ConstantIndexOp::create(b, 0);
  for (Prefetch &p : prefetches)
    if (wgmma)
      buffers.push_back(swizzledBuffer(p.copy));
  // A next-stage copy group of this loop's prefetched buffers.
  auto isNextStage = [&](int group) {
    return group <= -2 && llvm::is_contained(buffers, nextStageGroup(group));
  };
  if (wgmma && !prefetches.empty()) {
    if (continues) {
      init.push_back(lastPrefetchingLoop->nextStage);
    } else {
      init.push_back(first); // the stage the first iteration reads
      freeFirstStages();
      for (int64_t j = 0; j < ahead; ++j) {
        Value iv = lb, stage = first;
        if (j) {
          stage = arith::ConstantIndexOp::create(b, j);
          iv = arith::AddIOp::create(b, lb, arith::MulIOp::create(b, stage, step));
        }
        for (auto [p, index] : llvm::zip(prefetches, buffers))
          issueCopies(p.copy, swizzledTiles[index], stage,
                      prefetchOrigin(p, iv, op.getInductionVar()),
                      firstOnly ? index : -1);
      }
    }
  }
  // Copies pending before a loop that may run no iteration still need their barrier.
  bool pendingBefore = barrierPending;
  for (const Prefetch &p : prefetches) {
    if (wgmma)
      break;
    SmallVector<Value> regs = prefetchAt(p, lb, op.getInductionVar());
    regCounts.push_back(regs.size());
    init.append(regs);
  }
  auto loop = scf::ForOp::create(b, lb, scalars.lookup(op.getUpperBound()), step, init);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  scalars.map(op.getInductionVar(), loop.getInductionVar());
  unflatten(op.getRegionIterArgs(), loop.getRegionIterArgs().take_front(numCarried));
  SmallVector<Value> nextRegs;
  SmallVector<int> copiesAtEntry = pendingCopies;
  if (rotated)
    prologueOpen = false; // the copies before it were this loop's
  // The copies the previous iteration (or loop) made for this one are this one's now.
  if (wgmma && firstOnly && prefetching)
    for (int &group : pendingCopies)
      if (isNextStage(group))
        group = nextStageGroup(group);
  // A rotated loop's iteration starts with its waits and barrier as ops (the pass's);
  // lowerFor's own rotation (TMA grids' loops) makes them here.
  if (wgmma && firstOnly && !prefetches.empty()) {
    // Everyone is done with the other stage and the single buffers: copy this
    // iteration's single-buffered tiles (V), then the next iteration's prefetched ones
    // (K) into the other stage; products wait for their own copies only, so this
    // iteration's K (copied an iteration ago) and V may still be landing here.
    tgpu::BarrierOp::create(b);
    barrierPending = true; // the single-buffered copies share this barrier
    Value stage = loop.getRegionIterArgs()[numCarried];
    RotatedStages stages =
        rotatedStages(b, b.getLoc(), stage, loop.getInductionVar(), step, 1, true);
    Value other = stages.fill, next = stages.target;
    for (auto [p, index] : llvm::zip(prefetches, buffers)) {
      setFill(p.copy, {Value(), false, index, stage});
      preStaged.insert(p.copy.op);
    }
    Value iv = op.getInductionVar();
    auto issueNext = [this, prefetches, buffers, other, next, iv] {
      for (auto [p, index] : llvm::zip(prefetches, buffers))
        issueCopies(p.copy, swizzledTiles[index], other, prefetchOrigin(p, next, iv),
                    nextStageGroup(index));
    };
    // After the body's own staged loads that come before its first product or branch.
    Operation *lastSingle = nullptr;
    for (Operation &x : op.getBody()->without_terminator()) {
      if (isa<tile::DotOp>(x) || x.getNumRegions())
        break;
      if (TileCopy::isCopy(&x) && TileCopy::of(&x).staged && !preStaged.contains(&x))
        lastSingle = &x;
    }
    if (lastSingle)
      afterOp = {lastSingle, issueNext};
    else
      issueNext();
    nextRegs.push_back(other);
  } else if (wgmma && !prefetches.empty()) {
    // This iteration's tiles have landed (and everyone is done with the stage the last
    // one read): start copying those `ahead` iterations on into it while this one
    // computes; the copies for the iterations in between stay in flight.
    waitForCopies(int((ahead - 1) * buffers.size()));
    tgpu::BarrierOp::create(b);
    barrierPending = false;
  }
  if (wgmma && !firstOnly && !prefetches.empty()) {
    Value stage = loop.getRegionIterArgs()[numCarried];
    auto [previous, following, target] =
        rotatedStages(b, b.getLoc(), stage, loop.getInductionVar(), step, ahead, false);
    for (auto [p, index] : llvm::zip(prefetches, buffers)) {
      issueCopies(p.copy, swizzledTiles[index], previous,
                  prefetchOrigin(p, target, op.getInductionVar()));
      setFill(p.copy, {Value(), false, index, stage});
      preStaged.insert(p.copy.op);
    }
    nextRegs.push_back(following);
  } else if (!wgmma && !prefetches.empty()) {
    // Store the tiles loaded one iteration ahead, then start loading the next ones:
    // their latency hides behind this iteration's arithmetic.
    flushBarrier();
    tgpu::BarrierOp::create(b);
    size_t pos = numCarried;
    for (auto [p, count] : llvm::zip(prefetches, regCounts)) {
      Value mem = stagingBuffer(p.copy);
      SmallVector<Value> regs(loop.getRegionIterArgs().slice(pos, count));
      storeRows(p.copy, mem, regs);
      pos += count;
      setFill(p.copy, {mem, /*transposed=*/false});
      preStaged.insert(p.copy.op);
    }
    barrierPending = true;
    Value next = arith::AddIOp::create(b, loop.getInductionVar(), step);
    for (const Prefetch &p : prefetches)
      nextRegs.append(prefetchAt(p, next, op.getInductionVar()));
  }
  if (failed(lowerBlock(*op.getBody())))
    return failure();
  SmallVector<Value> yielded;
  if (failed(flatten(op.getBody()->getTerminator()->getOperands(), op.getResults(), yielded)))
    return failure();
  yielded.append(nextRegs);
  if (loop.getBody()->mightHaveTerminator())
    loop.getBody()->getTerminator()->erase();
  b.setInsertionPointToEnd(loop.getBody());
  scf::YieldOp::create(b, yielded);
  b.setInsertionPointAfter(loop);
  unflatten(op.getResults(), loop.getResults().take_front(numCarried));
  barrierPending |= pendingBefore;
  // A loop that runs no iteration leaves the earlier copies in flight (kept as the
  // oldest groups; waiting for one already landed costs nothing).
  if (!copiesBeforeLoop.empty()) {
    copiesBeforeLoop.append(pendingCopies);
    pendingCopies = std::move(copiesBeforeLoop);
  }
  if (wgmma && firstOnly && prefetching) {
    // In flight now: the copies for iteration `ub` (or, with no iteration, for `lb`),
    // the newest groups; everything else the loop's products waited for.
    pendingCopies.clear();
    for (int group : copiesAtEntry)
      if (!llvm::is_contained(buffers, group) && !isNextStage(group))
        pendingCopies.push_back(group);
    for (int index : buffers)
      pendingCopies.push_back(nextStageGroup(index));
  }
  if (wgmma && !prefetches.empty())
    lastPrefetchingLoop = PrefetchingLoop{op, prefetches, loop.getResults().back()};
  if (ahead > 1)
    lastPrefetchingLoop.reset(); // the next loop cannot take over `ahead` stages in flight
  return success();
}

SmallVector<Type> Distributor::flatTypes(ValueRange values) {
  SmallVector<Type> types;
  for (Value v : values) {
    auto tileType = dyn_cast<RankedTensorType>(v.getType());
    if (!tileType) {
      types.push_back(v.getType());
      continue;
    }
    if (pairedSlots(tileType, layoutOf(v)))
      types.append(numSlots(layoutOf(v)) / 2, b.getI32Type());
    else
      types.append(numSlots(layoutOf(v)), tileType.getElementType());
  }
  return types;
}

/// A while loop (per-token lists: the next block above the last visited) carries its
/// tiles as slots. Its regions start and end with no copies in flight and no barrier
/// owed, the state an iteration boundary must have whatever ran before.
LogicalResult Distributor::lowerWhile(scf::WhileOp op) {
  SmallVector<Value> init;
  if (failed(flatten(op.getInits(), op.getBeforeArguments(), init)))
    return failure();
  settleProducts();
  settleShared();
  auto loop = scf::WhileOp::create(b, flatTypes(op.getAfterArguments()), init);
  OpBuilder::InsertionGuard guard(b);
  Block *before = b.createBlock(&loop.getBefore(), {}, flatTypes(op.getBeforeArguments()),
                                SmallVector<Location>(init.size(), op.getLoc()));
  unflatten(op.getBeforeArguments(), before->getArguments());
  if (failed(lowerBlock(op.getBefore().front())))
    return failure();
  scf::ConditionOp cond = op.getConditionOp();
  SmallVector<Value> forwarded;
  if (failed(flatten(cond.getArgs(), op.getAfterArguments(), forwarded)))
    return failure();
  waitPoint = blockEnd(op.getBefore().front());
  settleCopies();
  scf::ConditionOp::create(b, scalars.lookup(cond.getCondition()), forwarded);
  Block *after = b.createBlock(&loop.getAfter(), {}, flatTypes(op.getAfterArguments()),
                               SmallVector<Location>(forwarded.size(), op.getLoc()));
  unflatten(op.getAfterArguments(), after->getArguments());
  if (failed(lowerBlock(op.getAfter().front())))
    return failure();
  SmallVector<Value> yielded;
  if (failed(flatten(op.getYieldOp().getOperands(), op.getBeforeArguments(), yielded)))
    return failure();
  waitPoint = blockEnd(op.getAfter().front());
  settleCopies();
  scf::YieldOp::create(b, yielded);
  b.setInsertionPointAfter(loop);
  unflatten(op.getResults(), loop.getResults());
  return success();
}

LogicalResult Distributor::lowerIf(scf::IfOp op) {
  settleProducts();
  auto ifOp = scf::IfOp::create(b, flatTypes(op.getResults()),
                                scalars.lookup(op.getCondition()), !op.getElseRegion().empty());
  // Copies in flight at the branch (K and V loaded before a whole/partial choice) are
  // waited for by each branch's products; each branch ends with none in flight.
  SmallVector<int> copiesBefore = pendingCopies;
  bool barrierBefore = barrierPending;
  for (auto [from, to] : {std::pair{&op.getThenRegion(), &ifOp.getThenRegion()},
                          std::pair{&op.getElseRegion(), &ifOp.getElseRegion()}}) {
    if (from->empty())
      continue;
    OpBuilder::InsertionGuard guard(b);
    Block &block = to->front();
    if (block.mightHaveTerminator())
      block.getTerminator()->erase();
    b.setInsertionPointToEnd(&block);
    pendingCopies = copiesBefore;
    barrierPending = barrierBefore;
    if (failed(lowerBlock(from->front())))
      return failure();
    llvm::SaveAndRestore<WaitPoint> end(waitPoint, blockEnd(from->front()));
    settleCopies();
    SmallVector<Value> yielded;
    if (failed(flatten(from->front().getTerminator()->getOperands(), op.getResults(),
                       yielded)))
      return failure();
    scf::YieldOp::create(b, yielded);
  }
  unflatten(op.getResults(), ifOp.getResults());
  return success();
}
