//===- WarpSpecialize.cpp - producer and consumer warpgroups ----------------===//
//
// The lowering of `tgpu.warp_specialize` (written by tessera-tgpu-warp-specialize,
// WarpSpecializePass.cpp) in a TMA kernel. The block launches one warpgroup more than
// the consumers' num_warps, after them, so the consumers keep their thread ids and their
// code is the default region lowered as before, except that:
// * a staged tile is taken from a ring: each buffer has `stages` slots, each slot a full
//   barrier (the producer's arrive.expect_tx, then the copy's bytes) and an empty one
//   (one arrival per consumer warp once it is done reading). Every thread counts the
//   fills of each buffer it has taken (a word LLVM keeps in a register): fill n is in
//   slot n % stages and completes phase n / stages of its barriers, so the parity to
//   wait for is (n / stages) & 1 on the full barrier, and the producer waits for the
//   parity before that on the empty one (a fresh barrier passes it at once);
// * a tile is waited for where it is first read (so V lands under Q·Kᵀ) and given back
//   right after the op that waits for its last product (K after Q·Kᵀ's wait, V after
//   P·V's), so the producer refills the slot while the softmax runs; a tile read other
//   than by products, at the end of the block that loaded it;
// * block barriers among the consumers are named barrier 1 over their threads only.
// The producer warpgroup lowers its registers (setmaxnreg.dec) and one of its threads
// runs the partition: the same loops, bounds and branches, with each staged load as
// wait empty / arm full / copy. The consumers raise theirs (setmaxnreg.inc).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/WarpSpecialize.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

RegisterBudgets tessera::gpu::warpSpecializedRegisters(int64_t consumerWarpgroups) {
  int64_t c = consumerWarpgroups;
  // One consumer warpgroup needs fewer than 128 registers a thread (D = 128 causal: no
  // spills at 128), so two blocks share an SM, as three one-warpgroup blocks do without
  // a producer; more consumers take an SM alone.
  int64_t blocks = c == 1 ? 2 : 1;
  // What an SM's 64 K registers give each thread, in the allocation unit of 8.
  int32_t fair = int32_t(std::min<int64_t>(65536 / (128 * (1 + c) * blocks), 256) / 8 * 8);
  int32_t producer = c == 1 ? 40 : 24;
  int32_t consumer = int32_t(std::min<int64_t>(240, (fair * (1 + c) - producer) / c / 8 * 8));
  return {std::min(fair, consumer), producer, consumer, blocks};
}

int Distributor::emptyBarriersOf(int buffer) {
  auto it = emptyBarrierBase.find(buffer);
  if (it != emptyBarrierBase.end())
    return it->second;
  int64_t stages = swizzledTiles[buffer].stages;
  emptyBarrierBase[buffer] = numBarriers;
  numBarriers += stages;
  barrierArrivals.append(stages, numWarps); // one arrival per consumer warp
  return emptyBarrierBase[buffer];
}

std::pair<Value, Value> Distributor::nextRingFill(int buffer) {
  barriersOf(buffer);
  emptyBarriersOf(buffer);
  Value &counter = ringCounters[buffer];
  Value zero = arith::ConstantIndexOp::create(b, 0);
  if (!counter) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointAfter(barrierInitAnchor);
    counter = memref::AllocaOp::create(b, MemRefType::get({1}, b.getI32Type()));
    memref::StoreOp::create(b, arith::ConstantIntOp::create(b, b.getI32Type(), 0), counter,
                            ValueRange{arith::ConstantIndexOp::create(b, 0)});
  }
  Value fills = memref::LoadOp::create(b, counter, ValueRange{zero});
  Value stages = arith::ConstantIntOp::create(b, b.getI32Type(), swizzledTiles[buffer].stages);
  Value one = arith::ConstantIntOp::create(b, b.getI32Type(), 1);
  Value stage = arith::IndexCastUIOp::create(b, b.getIndexType(),
                                             arith::RemUIOp::create(b, fills, stages));
  Value parity = arith::AndIOp::create(b, arith::DivUIOp::create(b, fills, stages), one);
  memref::StoreOp::create(b, arith::AddIOp::create(b, fills, one), counter, ValueRange{zero});
  return {stage, parity};
}

LogicalResult Distributor::acquireRingTile(tile::LoadOp op) {
  int index = swizzledBuffer(TileCopy::of(op));
  auto [stage, parity] = nextRingFill(index);
  shared[op.getResult()] = {Value(), /*transposed=*/false, index, stage, parity};
  ringTaken.back().push_back({index, stage, op.getResult()});
  return success();
}

SmallVector<Operation *> tessera::gpu::readersThroughTransposes(Value tile) {
  SmallVector<Operation *> readers;
  SmallVector<Value> views{tile};
  while (!views.empty())
    for (Operation *user : views.pop_back_val().getUsers()) {
      if (auto trans = dyn_cast<tile::TransOp>(user))
        views.push_back(trans.getResult());
      else
        readers.push_back(user);
    }
  return readers;
}

LogicalResult tessera::gpu::copyBranchShell(OpBuilder &b, scf::IfOp branch, Value condition,
                                            function_ref<LogicalResult(Block &)> fill) {
  auto copy = scf::IfOp::create(b, branch.getLoc(), TypeRange{}, condition,
                                !branch.getElseRegion().empty());
  for (auto [from, to] : {std::pair{&branch.getThenRegion(), &copy.getThenRegion()},
                          std::pair{&branch.getElseRegion(), &copy.getElseRegion()}}) {
    if (from->empty())
      continue;
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(to->front().getTerminator());
    if (failed(fill(from->front())))
      return failure();
  }
  return success();
}

/// Whether every reader of `tile` sits in a region nested in the tile's block (a branch
/// that may not run): a ring slot that can go back unread.
static bool readOnlyInBranches(Value tile) {
  Block *home = tile.getParentBlock();
  SmallVector<Operation *> readers = readersThroughTransposes(tile);
  return !readers.empty() &&
         llvm::none_of(readers, [&](Operation *r) { return r->getBlock() == home; });
}

bool Distributor::ringTileRead(Value tile, Operation &lowered) {
  SmallVector<Operation *> readers = readersThroughTransposes(tile);
  for (Operation *reader : readers) {
    // Its reader lowered (it, or the loop or branch holding it, is at or before
    // `lowered` in this block; its transposes precede it) ...
    Operation *here = lowered.getBlock()->findAncestorOpInBlock(*reader);
    if (!here || (here != &lowered && !here->isBeforeInBlock(&lowered)))
      return false;
    // ... and a product whose wgmma has been waited for: other readers (registers
    // staged from the slot) keep the slot to the block's end.
    auto dot = dyn_cast<tile::DotOp>(reader);
    if (!dot || productsInFlight.count(dot.getResult()))
      return false;
  }
  return !readers.empty();
}

void Distributor::giveBackRingTiles(Operation *lowered) {
  if (ringTaken.empty())
    return;
  SmallVector<RingTake> ended;
  if (!lowered)
    ended = ringTaken.pop_back_val();
  SmallVector<RingTake *> ready;
  for (RingTake &t : lowered ? ringTaken.back() : ended)
    if (!t.givenBack && (!lowered || ringTileRead(t.tile, *lowered)))
      ready.push_back(&t);
  if (ready.empty())
    return;
  // A tile read only inside branches (a block-list entry or classified tile the
  // consumers skip) may go back unread: its fill must have landed first, or the
  // producer's next fill of the slot would count toward the same phase of its full
  // barrier and a later reader would wait for a phase that never completes. Where the
  // branch ran, its reader waited already and this wait passes at once.
  for (RingTake *t : ready)
    if (readOnlyInBranches(t->tile))
      awaitTensorCopies(shared.lookup(t->tile));
  // The warp's reads of the slots (wgmma, waited for; or loads) are done before its
  // first lane tells the producer.
  NVVM::SyncWarpOp::create(b, arith::ConstantIntOp::create(b, b.getI32Type(), -1));
  Value firstLane = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane,
                                          arith::ConstantIndexOp::create(b, 0));
  for (RingTake *t : ready) {
    t->givenBack = true;
    Value empty = barrierAddress(arith::AddIOp::create(
        b, arith::ConstantIndexOp::create(b, emptyBarriersOf(t->buffer)), t->stage));
    tgpu::MbarrierArriveOp::create(b, mbarrierAt(empty), Value(), 1, firstLane);
  }
}

/// The first and the last product directly in `block`, where it has two or more.
static std::pair<Operation *, Operation *> turnOf(Block *block) {
  Operation *first = nullptr, *last = nullptr;
  for (Operation &op : *block)
    if (isa<tile::DotOp>(op)) {
      first = first ? first : &op;
      last = &op;
    }
  return first == last ? std::pair<Operation *, Operation *>{} : std::pair{first, last};
}

Value Distributor::turnBarrier(bool own) {
  // Warpgroup g's is kFirstTurnBarrier + g; the other's kFirstTurnBarrier + 1 - g.
  Value g = toI32(b, warpgroup);
  Value first = arith::ConstantIntOp::create(b, b.getI32Type(), kFirstTurnBarrier);
  if (own)
    return arith::AddIOp::create(b, first, g);
  return arith::SubIOp::create(
      b, arith::ConstantIntOp::create(b, b.getI32Type(), kFirstTurnBarrier + 1), g);
}

void Distributor::beforeConsumerOp(Operation &op) {
  // Its turn: the other warpgroup has issued its last product of the turn before.
  if (pingpong && turnOf(op.getBlock()).first == &op)
    turns.push_back(
        {tgpu::NamedBarrierOp::create(b, turnBarrier(/*own=*/true), numThreads), nullptr});
}

void Distributor::afterConsumerOp(Operation &op) {
  // Its last product issued (not waited for): the other's turn, under this one's
  // softmax.
  if (pingpong && turnOf(op.getBlock()).second == &op)
    turns.back().second =
        tgpu::NamedBarrierArriveOp::create(b, turnBarrier(/*own=*/false), numThreads);
  // A slot goes back as soon as its products are waited for (K's after Q·Kᵀ, not at the
  // end of the iteration), so the producer refills it sooner.
  giveBackRingTiles(&op);
}

// Why the turns cannot deadlock. The consumers' control flow is uniform over the block
// (loop bounds and branch conditions are tile scalars, the same in every thread), so
// both warpgroups run the same turns, T of them. Barrier 2 (warpgroup 0's) sees
// warpgroup 1 arrive 1 + T times (entry, each turn's end) and warpgroup 0 wait T + 1
// times (each turn's start, exit); barrier 3 sees T arrivals of warpgroup 0 and T
// waits of warpgroup 1: every wait is matched, nothing is left arrived at exit. By
// induction on k: warpgroup 0's k-th wait on barrier 2 meets warpgroup 1's k-th
// arrival (entry, or the end of its turn k - 1, which began after warpgroup 0's
// arrival ending turn k - 1), and warpgroup 1's k-th wait on barrier 3 meets warpgroup
// 0's k-th arrival, which follows that k-th wait of warpgroup 0. Nor can a warpgroup
// arrive twice in one phase: its next arrival follows its own next wait, which needs
// the other's. A block barrier inside a turn breaks this; checkTurns refuses it.
void Distributor::turnAtEdge(int64_t warpgroupIndex, bool wait) {
  Value id = arith::ConstantIntOp::create(b, b.getI32Type(), kFirstTurnBarrier);
  auto here = scf::IfOp::create(
      b, TypeRange{},
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warpgroup,
                            arith::ConstantIndexOp::create(b, warpgroupIndex)),
      /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(here.thenBlock()->getTerminator());
  if (wait)
    tgpu::NamedBarrierOp::create(b, id, numThreads);
  else
    tgpu::NamedBarrierArriveOp::create(b, id, numThreads);
}

LogicalResult Distributor::checkTurns() {
  // A block barrier among the consumers inside a turn would wait for the other
  // warpgroup, itself waiting for the turn to end.
  for (auto [wait, arrive] : turns) {
    if (!arrive || arrive->getBlock() != wait->getBlock())
      return wait->emitError("pingpong: a turn must end in the block it begins in");
    for (Operation *op = wait; op != arrive; op = op->getNextNode()) {
      bool barrier = false;
      op->walk([&](tgpu::BarrierOp) { barrier = true; });
      if (barrier)
        return op->emitError("pingpong: a block barrier among the consumers between "
                             "their products would deadlock the turns");
    }
  }
  return success();
}

void Distributor::produceRingTile(tile::LoadOp op) {
  int index = swizzledBuffer(TileCopy::of(op));
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  auto [stage, parity] = nextRingFill(index);
  Value one = arith::ConstantIntOp::create(b, b.getI32Type(), 1);
  Value empty = barrierAddress(arith::AddIOp::create(
      b, arith::ConstantIndexOp::create(b, emptyBarriersOf(index)), stage));
  // The slot's previous fill has been read by every consumer warp.
  waitParity(empty, arith::XOrIOp::create(b, parity, one));
  Value full = barrierAddress(barrierIndex(index, stage));
  armTensorCopy(op, index, tensorCopyTarget(index, stage, origin), full);
}

LogicalResult Distributor::lowerProducerBlock(Block &block) {
  for (Operation &op : block.without_terminator()) {
    if (auto load = dyn_cast<tile::LoadOp>(op)) {
      produceRingTile(load);
      continue;
    }
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      SmallVector<Value> init;
      for (Value v : loop.getInitArgs())
        init.push_back(scalars.lookup(v));
      auto copy = scf::ForOp::create(b, scalars.lookup(loop.getLowerBound()),
                                     scalars.lookup(loop.getUpperBound()),
                                     scalars.lookup(loop.getStep()), init);
      OpBuilder::InsertionGuard guard(b);
      if (copy.getBody()->mightHaveTerminator())
        copy.getBody()->getTerminator()->erase();
      b.setInsertionPointToEnd(copy.getBody());
      scalars.map(loop.getInductionVar(), copy.getInductionVar());
      for (auto [from, to] : llvm::zip(loop.getRegionIterArgs(), copy.getRegionIterArgs()))
        scalars.map(from, to);
      if (failed(lowerProducerBlock(*loop.getBody())))
        return failure();
      SmallVector<Value> yielded;
      for (Value v : loop.getBody()->getTerminator()->getOperands())
        yielded.push_back(scalars.lookup(v));
      scf::YieldOp::create(b, yielded);
      b.setInsertionPointAfter(copy);
      for (auto [from, to] : llvm::zip(loop.getResults(), copy.getResults()))
        scalars.map(from, to);
      continue;
    }
    if (auto branch = dyn_cast<scf::IfOp>(op)) {
      if (branch.getNumResults())
        return branch.emitError("a producer partition's branch yields nothing");
      if (failed(copyBranchShell(b, branch, scalars.lookup(branch.getCondition()),
                                 [&](Block &from) { return lowerProducerBlock(from); })))
        return failure();
      continue;
    }
    if (llvm::any_of(op.getResultTypes(), llvm::IsaPred<RankedTensorType>) ||
        op.getNumRegions())
      return op.emitError("a producer partition computes scalars, loops, branches and "
                          "staged loads only (tessera-tgpu-warp-specialize)");
    if (failed(lowerOp(&op))) // program ids; other scalar ops are cloned
      return failure();
  }
  return success();
}

LogicalResult Distributor::lowerWarpSpecialize(tgpu::WarpSpecializeOp op) {
  if (!wgmma || !tensorCopies || !onlyTensorStaging)
    return op.emitError("a warp-specialised kernel's producer copies every staged tile by "
                        "TMA: its grid is marked tgpu.tensor_copies "
                        "(tessera-tgpu-stage-operands{tma=true}) and stages no tile in a "
                        "padded buffer");
  if (numWarps % 4 || op.getPartitionRegions().size() != 1 ||
      op.getNumWarps() != ArrayRef<int32_t>{int32_t(kProducerWarps)} || op.getNumResults())
    return op.emitError("the GPU lowering takes one producer partition of ")
           << kProducerWarps << " warps beside whole consumer warpgroups, and no results";
  RegisterBudgets budgets = warpSpecializedRegisters(numWarps / 4);
  int32_t producerRegisters = op.getRegisters() ? (*op.getRegisters())[0] : budgets.producer;
  int32_t consumerRegisters = op.getDefaultRegisters().value_or(budgets.consumer);
  if (int64_t(budgets.entry) * (numWarps / 4 + 1) <
      producerRegisters + int64_t(consumerRegisters) * (numWarps / 4))
    return op.emitError("registers: ")
           << budgets.entry << " a thread at entry cannot cover the producer's "
           << producerRegisters << " and " << numWarps / 4 << " consumer warpgroup(s) of "
           << consumerRegisters;
  // The launch's threads and the registers at entry are the kernel's attributes
  // (tessera-tgpu-outline-kernels); setmaxnreg moves registers from there.
  warpSpecialized = true;
  Value producer = arith::CmpIOp::create(b, arith::CmpIPredicate::uge, threadId,
                                         arith::ConstantIndexOp::create(b, numThreads));
  auto split = scf::IfOp::create(b, TypeRange{}, producer, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(split.thenBlock()->getTerminator());
    NVVM::SetMaxRegisterOp::create(b, producerRegisters, NVVM::SetMaxRegisterAction::decrease);
    // One thread issues every copy; the warpgroup's other threads are done.
    Value issuer = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, threadId,
                                         arith::ConstantIndexOp::create(b, numThreads));
    auto single = scf::IfOp::create(b, TypeRange{}, issuer, /*withElseRegion=*/false);
    b.setInsertionPoint(single.thenBlock()->getTerminator());
    if (failed(lowerProducerBlock(op.getPartitionRegions()[0].front())))
      return failure();
  }
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(split.elseBlock()->getTerminator());
  NVVM::SetMaxRegisterOp::create(b, consumerRegisters, NVVM::SetMaxRegisterAction::increase);
  pingpong = op->hasAttr(kPingpongAttr);
  if (pingpong && numWarps != 8)
    return op.emitError("pingpong takes turns between two consumer warpgroups; this one "
                        "has ")
           << numWarps / 4;
  // Warpgroup 0 takes the first turn: warpgroup 1 arrives on its barrier at entry.
  if (pingpong)
    turnAtEdge(/*warpgroupIndex=*/1, /*wait=*/false);
  if (failed(lowerBlock(op.getDefaultRegion().front())))
    return failure();
  // Balanced at exit: warpgroup 0 waits once more, for warpgroup 1's last arrival.
  if (pingpong) {
    turnAtEdge(/*warpgroupIndex=*/0, /*wait=*/true);
    if (failed(checkTurns()))
      return failure();
  }
  // The consumers synchronise among themselves: named barrier 1 over their threads.
  SmallVector<tgpu::BarrierOp> blockBarriers;
  split.getElseRegion().walk([&](tgpu::BarrierOp barrier) {
    blockBarriers.push_back(barrier);
  });
  for (tgpu::BarrierOp barrier : blockBarriers) {
    b.setInsertionPoint(barrier);
    tgpu::NamedBarrierOp::create(b, arith::ConstantIntOp::create(b, b.getI32Type(), 1),
                                 numThreads);
    barrier.erase();
  }
  return success();
}
