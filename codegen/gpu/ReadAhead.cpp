//===- ReadAhead.cpp - list entries read an iteration early ----------------===//
//
// tessera-tgpu-read-ahead: in a loop whose tiles are copied when their iteration comes
// (tgpu.prefetch_distance = 0: one stage, or a user's override), a tile's copies wait
// for the scalar reads its indices come from (a block list's entry). Where the loop is
// tile.speculable, each such read of an input is made one iteration early and carried
// (carryReadAhead), so its latency overlaps the previous tile instead of delaying the
// copies. Prefetched loops are left alone: their loads must keep indices known an
// iteration early, which a carried value is not. The tile builders emit list walks in
// their canonical form (entry j read in iteration j); this is the GPU's shaping of them.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/ReadAhead.h"
#include "codegen/gpu/StageAttrs.h"
#include "dialect/tile/TileDialect.h"
#include "passes/TileLoopAttrs.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUREADAHEAD
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

bool tessera::gpu::isReadOfInput(Operation *op) {
  auto load = dyn_cast<memref::LoadOp>(op);
  if (!load)
    return false;
  auto grid = op->getParentOfType<tile::GridOp>();
  return llvm::none_of(load.getMemRef().getUsers(), [&](Operation *user) {
    if (!isa<memref::StoreOp, tile::StoreOp>(user))
      return false;
    auto writer = user->getParentOfType<tile::GridOp>();
    return !(grid && writer && writer != grid && writer->getBlock() == grid->getBlock() &&
             writer->isBeforeInBlock(grid));
  });
}

FailureOr<SmallVector<Operation *>>
tessera::gpu::indexSlice(scf::ForOp loop, ValueRange indices,
                         function_ref<bool(Operation *)> allowed) {
  Block *body = loop.getBody();
  llvm::SetVector<Operation *> slice;
  SmallVector<Value> work(indices.begin(), indices.end());
  while (!work.empty()) {
    Value v = work.pop_back_val();
    Operation *def = v.getDefiningOp();
    if (!def && v != loop.getInductionVar() && cast<BlockArgument>(v).getOwner() == body)
      return failure(); // a carried value: the next iteration's is not known yet
    if (!def || def->getBlock() != body)
      continue; // the induction variable or a value from outside the loop
    if (def->getNumRegions() || !allowed(def))
      return failure();
    if (slice.insert(def))
      work.append(def->operand_begin(), def->operand_end());
  }
  SmallVector<Operation *> ordered;
  for (Operation &op : body->without_terminator())
    if (slice.contains(&op))
      ordered.push_back(&op);
  return ordered;
}

FailureOr<SmallVector<Operation *>> tessera::gpu::prefetchSlice(scf::ForOp loop,
                                                                ValueRange indices) {
  bool speculable = loop->hasAttr(tile_loop::kSpeculable);
  return indexSlice(loop, indices, [&](Operation *def) {
    return (isPure(def) || (speculable && isReadOfInput(def))) &&
           llvm::none_of(def->getResultTypes(),
                         [](Type t) { return isa<RankedTensorType>(t); });
  });
}

bool tessera::gpu::sameFunctionOfIv(Value a, scf::ForOp la, Value b, scf::ForOp lb) {
  if (a == la.getInductionVar() || b == lb.getInductionVar())
    return a == la.getInductionVar() && b == lb.getInductionVar();
  Operation *da = a.getDefiningOp(), *db = b.getDefiningOp();
  bool insideA = da && da->getBlock() == la.getBody();
  bool insideB = db && db->getBlock() == lb.getBody();
  if (!insideA || !insideB)
    return !insideA && !insideB && a == b;
  return cast<OpResult>(a).getResultNumber() == cast<OpResult>(b).getResultNumber() &&
         OperationEquivalence::isEquivalentTo(
             da, db, [&](Value x, Value y) {
               return success(sameFunctionOfIv(x, la, y, lb));
             },
             nullptr, OperationEquivalence::IgnoreLocations);
}

/// Rewrites `loop` so that `read`, a load in its body whose indices follow from the
/// induction variable alone (through pure ops of the body), is made one iteration early:
/// the value for the lower bound is read before the loop and carried first among its
/// values, and each iteration reads the next one's at its top. The read must be in
/// bounds for the iteration after the last (as in a tile.speculable loop). Returns the
/// new loop, which replaces `loop`; fails, changing nothing, on another read.
static FailureOr<scf::ForOp> carryReadAhead(OpBuilder &b, scf::ForOp loop,
                                            memref::LoadOp read) {
  Block *body = loop.getBody();
  if (read->getBlock() != body)
    return failure();
  FailureOr<SmallVector<Operation *>> ordered =
      indexSlice(loop, read.getIndices(), [](Operation *op) { return isPure(op); });
  if (failed(ordered))
    return failure();
  // The read at induction value `iv`, the slice's ops reading the variable `current`.
  auto readAt = [&](Value current, Value iv) {
    IRMapping map;
    map.map(current, iv);
    for (Operation *op : *ordered)
      b.clone(*op, map);
    return b.clone(*read, map)->getResult(0);
  };

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop);
  SmallVector<Value> inits{readAt(loop.getInductionVar(), loop.getLowerBound())};
  llvm::append_range(inits, loop.getInitArgs());
  auto ahead = scf::ForOp::create(b, loop.getLoc(), loop.getLowerBound(),
                                  loop.getUpperBound(), loop.getStep(), inits);
  ahead->setDiscardableAttrs(loop->getDiscardableAttrDictionary());
  Block *aheadBody = ahead.getBody();
  aheadBody->getOperations().splice(aheadBody->end(), body->getOperations());
  loop.getInductionVar().replaceAllUsesWith(ahead.getInductionVar());
  for (auto [from, to] :
       llvm::zip(loop.getRegionIterArgs(), ahead.getRegionIterArgs().drop_front()))
    from.replaceAllUsesWith(to);
  Value carried = ahead.getRegionIterArgs().front();

  b.setInsertionPointToStart(aheadBody);
  Value next = readAt(ahead.getInductionVar(), arith::AddIOp::create(b, loop.getLoc(),
                                                                     ahead.getInductionVar(),
                                                                     ahead.getStep()));
  read.getResult().replaceAllUsesWith(carried);
  read->erase();
  for (Operation *op : llvm::reverse(*ordered))
    if (op->use_empty())
      op->erase();
  auto yield = cast<scf::YieldOp>(aheadBody->getTerminator());
  yield->insertOperands(0, next);

  for (auto [from, to] : llvm::zip(loop.getResults(), ahead.getResults().drop_front()))
    from.replaceAllUsesWith(to);
  loop->erase();
  return ahead;
}

namespace {
struct TgpuReadAheadPass : tessera::gpu::impl::TgpuReadAheadBase<TgpuReadAheadPass> {
  void runOnOperation() override;
};
} // namespace

/// Whether `loop` copies its tiles when their iteration comes: scheduled with no
/// prefetching.
static bool copiesInPlace(scf::ForOp loop) {
  auto distance = loop->getAttrOfType<IntegerAttr>(kPrefetchDistanceAttr);
  return distance && distance.getInt() == 0;
}

/// The reads of inputs among the body ops the indices of `loop`'s tile loads come from,
/// in body order (the loads are top-level ops of the body: loads first).
static SmallVector<memref::LoadOp> readsBeforeCopies(scf::ForOp loop) {
  Block *body = loop.getBody();
  llvm::SetVector<Operation *> slice;
  SmallVector<Value> work;
  for (auto load : body->getOps<tile::LoadOp>())
    work.append(load.getIndices().begin(), load.getIndices().end());
  while (!work.empty()) {
    Operation *def = work.pop_back_val().getDefiningOp();
    if (!def || def->getBlock() != body || !slice.insert(def))
      continue;
    work.append(def->operand_begin(), def->operand_end());
  }
  SmallVector<memref::LoadOp> reads;
  for (Operation &op : body->without_terminator())
    if (slice.contains(&op) && isReadOfInput(&op))
      reads.push_back(cast<memref::LoadOp>(op));
  return reads;
}

void TgpuReadAheadPass::runOnOperation() {
  SmallVector<scf::ForOp> loops;
  getOperation().walk([&](scf::ForOp loop) {
    if (loop->hasAttr(tile_loop::kSpeculable) && copiesInPlace(loop) &&
        loop->getParentOfType<tile::GridOp>())
      loops.push_back(loop);
  });
  OpBuilder b(&getContext());
  for (scf::ForOp loop : loops) {
    // A read whose indices depend on a carried value (or on another read) stays where
    // it is: carryReadAhead refuses it and changes nothing.
    for (memref::LoadOp read : readsBeforeCopies(loop))
      if (FailureOr<scf::ForOp> ahead = carryReadAhead(b, loop, read); succeeded(ahead))
        loop = *ahead;
  }
}
