//===- LoopReadAhead.cpp - a loop's scalar read, one iteration early ------===//
#include "passes/LoopReadAhead.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "llvm/ADT/SetVector.h"

using namespace mlir;

FailureOr<scf::ForOp> tessera::carryReadAhead(OpBuilder &b, scf::ForOp loop,
                                              memref::LoadOp read) {
  Block *body = loop.getBody();
  if (read->getBlock() != body)
    return failure();
  // The body's ops the read's indices come from.
  llvm::SetVector<Operation *> slice;
  SmallVector<Value> work(read.getIndices().begin(), read.getIndices().end());
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      if (arg.getOwner() == body && arg != loop.getInductionVar())
        return failure(); // a carried value: the next iteration's is not known yet
      continue;
    }
    Operation *def = v.getDefiningOp();
    if (def->getBlock() != body)
      continue;
    if (!isPure(def) || def->getNumRegions())
      return failure();
    if (slice.insert(def))
      work.append(def->operand_begin(), def->operand_end());
  }
  SmallVector<Operation *> ordered(slice.begin(), slice.end());
  llvm::sort(ordered, [](Operation *x, Operation *y) { return x->isBeforeInBlock(y); });
  // The read at induction value `iv`, the slice's ops reading the variable `current`.
  auto readAt = [&](Value current, Value iv) {
    IRMapping map;
    map.map(current, iv);
    for (Operation *op : ordered)
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
  for (Operation *op : llvm::reverse(ordered))
    if (op->use_empty())
      op->erase();
  auto yield = cast<scf::YieldOp>(aheadBody->getTerminator());
  yield->insertOperands(0, next);

  for (auto [from, to] : llvm::zip(loop.getResults(), ahead.getResults().drop_front()))
    from.replaceAllUsesWith(to);
  loop->erase();
  return ahead;
}
