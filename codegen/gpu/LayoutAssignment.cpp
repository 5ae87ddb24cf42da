//===- LayoutAssignment.cpp - a layout for every tile value ---------------===//
//
// Producers fix layouts (dot -> Acc, reduce -> Row/Col, broadcast -> Acc); consumers
// demand them from layout-free producers (a load feeding a dot's left side becomes A).
// Both directions run to a fixed point over the grid body. Splat constants have no
// layout: they are one scalar used by every slot.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutAssignment.h"

#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

bool tessera::gpu::isSplat(Value v) {
  if (v.getDefiningOp<tensor::SplatOp>())
    return true;
  DenseElementsAttr dense;
  return matchPattern(v, m_Constant(&dense)) && dense.isSplat();
}

static bool isTile(Value v) { return isa<RankedTensorType>(v.getType()); }

static ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

static Layout make(LayoutKind kind, Value v, int64_t mTiles) {
  ArrayRef<int64_t> s = shapeOf(v);
  bool rowDistributed =
      kind == LayoutKind::Acc || kind == LayoutKind::Row || kind == LayoutKind::A;
  return {kind, s[0], s.size() > 1 ? s[1] : 0, rowDistributed ? mTiles : 1};
}

static bool isElementwise(Operation *op) {
  if (op->getNumResults() != 1 || !isTile(op->getResult(0)))
    return false;
  StringRef ns = op->getDialect() ? op->getDialect()->getNamespace() : "";
  return (ns == "arith" || ns == "math") && !isa<arith::ConstantOp>(op);
}

namespace {
struct Assigner {
  DenseMap<Value, Layout> &layouts;
  int64_t mTiles;
  bool changed = false;
  std::string error;

  /// Records `layout` for `v` unless it is a splat; a conflicting second layout is an
  /// error except where the consumer converts (see `converts`).
  void set(Value v, Layout layout) {
    if (!isTile(v) || isSplat(v))
      return;
    auto [it, inserted] = layouts.try_emplace(v, layout);
    if (inserted)
      changed = true;
  }
  std::optional<Layout> get(Value v) {
    auto it = layouts.find(v);
    if (it == layouts.end())
      return std::nullopt;
    return it->second;
  }

  /// Whole-tile layouts agree by kind when shapes match; Row/Col/Acc of the same shape
  /// propagate through element-wise ops.
  void sameAs(Value from, Value to) {
    if (auto l = get(from))
      if (shapeOf(from) == shapeOf(to))
        set(to, *l);
  }

  void visit(Operation *op) {
    if (auto dot = dyn_cast<tile::DotOp>(op)) {
      set(dot.getResult(), make(LayoutKind::Acc, dot.getResult(), mTiles));
      set(dot.getAcc(), make(LayoutKind::Acc, dot.getAcc(), mTiles));
      set(dot.getLhs(), make(LayoutKind::A, dot.getLhs(), mTiles));
      set(dot.getRhs(), make(LayoutKind::B, dot.getRhs(), mTiles));
    } else if (auto trans = dyn_cast<tile::TransOp>(op)) {
      if (auto l = get(trans.getResult()); l && l->kind == LayoutKind::B)
        set(trans.getInput(), make(LayoutKind::BT, trans.getInput(), mTiles));
    } else if (auto red = dyn_cast<tile::ReduceOp>(op)) {
      auto in = red.getInput();
      if (shapeOf(in).size() == 2) {
        set(in, make(LayoutKind::Acc, in, mTiles));
        set(red.getResult(),
            make(red.getAxis() == 1 ? LayoutKind::Row : LayoutKind::Col, red.getResult(),
                 mTiles));
      }
    } else if (auto bc = dyn_cast<tile::BroadcastOp>(op)) {
      set(bc.getResult(), make(LayoutKind::Acc, bc.getResult(), mTiles));
      set(bc.getInput(),
          make(bc.getAxis() == 1 ? LayoutKind::Row : LayoutKind::Col, bc.getInput(), mTiles));
    } else if (auto gather = dyn_cast<tile::GatherOp>(op)) {
      sameAs(gather.getIndices(), gather.getResult());
      sameAs(gather.getResult(), gather.getIndices());
    } else if (auto forOp = dyn_cast<scf::ForOp>(op)) {
      auto yield = cast<scf::YieldOp>(forOp.getBody()->getTerminator());
      for (auto [i, res] : llvm::enumerate(forOp.getResults())) {
        Value group[] = {forOp.getInitArgs()[i], forOp.getRegionIterArgs()[i],
                         yield.getOperand(i), res};
        for (Value a : group)
          for (Value b : group)
            if (a != b)
              sameAs(a, b);
      }
    } else if (auto ifOp = dyn_cast<scf::IfOp>(op)) {
      for (auto [i, res] : llvm::enumerate(ifOp.getResults()))
        for (Region *r : {&ifOp.getThenRegion(), &ifOp.getElseRegion()}) {
          Value y = cast<scf::YieldOp>(r->front().getTerminator()).getOperand(i);
          sameAs(y, res);
          sameAs(res, y);
        }
    } else if (auto store = dyn_cast<tile::StoreOp>(op)) {
      Value v = store.getValue();
      if (!get(v))
        set(v, make(shapeOf(v).size() == 2 ? LayoutKind::Acc : LayoutKind::Row, v, mTiles));
    } else if (isElementwise(op)) {
      Value res = op->getResult(0);
      for (Value operand : op->getOperands())
        if (isTile(operand))
          sameAs(operand, res);
      for (Value operand : op->getOperands())
        if (isTile(operand))
          sameAs(res, operand);
    }
  }
};
} // namespace

LogicalResult tessera::gpu::assignLayouts(tile::GridOp grid, int64_t mTiles,
                                          DenseMap<Value, Layout> &layouts) {
  Assigner a{layouts, mTiles};
  do {
    a.changed = false;
    grid.getBody().walk([&](Operation *op) { a.visit(op); });
  } while (a.changed);

  WalkResult result = grid.getBody().walk([&](Operation *op) -> WalkResult {
    for (Value r : op->getResults())
      if (isTile(r) && !isSplat(r) && !layouts.count(r) && !isa<tile::TransOp>(op)) {
        op->emitError("no GPU layout could be assigned to this tile");
        return WalkResult::interrupt();
      }
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  // A transpose relabels: its result takes the layout demanded by its consumer (B).
  grid.getBody().walk([&](tile::TransOp t) {
    if (!layouts.count(t.getResult()))
      layouts[t.getResult()] = make(LayoutKind::B, t.getResult(), mTiles);
  });
  return success();
}
