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

static bool isRowDistributed(LayoutKind kind) {
  return kind == LayoutKind::Acc || kind == LayoutKind::Row || kind == LayoutKind::A ||
         kind == LayoutKind::RowSpan;
}

/// A 2-D tile too narrow for the accumulator layout's 8-column blocks.
static bool isNarrow(ArrayRef<int64_t> shape) { return shape.size() == 2 && shape[1] % 8; }

/// The layout a stored tile with no other consumer is computed in: a vector shorter than
/// the warps' rows (a single element moved by a row mover) is held whole by every thread.
static LayoutKind storedKind(ArrayRef<int64_t> shape, int64_t numWarps) {
  if (shape.size() == 1)
    return shape[0] < 16 * numWarps ? LayoutKind::Whole : LayoutKind::Row;
  return isNarrow(shape) ? LayoutKind::RowSpan : LayoutKind::Acc;
}

/// Row-distributed tiles give each of the `numWarps` warps rows / numWarps consecutive
/// rows, in 16-row m-tiles (a tile too short for that is reported after assignment).
static Layout make(LayoutKind kind, Value v, int64_t numWarps) {
  ArrayRef<int64_t> s = shapeOf(v);
  int64_t mTiles = isRowDistributed(kind) ? std::max<int64_t>(1, s[0] / (16 * numWarps)) : 1;
  return {kind, s[0], s.size() > 1 ? s[1] : 0, mTiles};
}

/// Layouts whose every warp holds the whole tile: only a product's right operand wants
/// them, and they do not spread to element-wise results (that would replicate the work).
static bool isReplicated(LayoutKind kind) {
  return kind == LayoutKind::B || kind == LayoutKind::BT;
}

static bool isElementwise(Operation *op) {
  if (op->getNumResults() != 1 || !isTile(op->getResult(0)))
    return false;
  StringRef ns = op->getDialect() ? op->getDialect()->getNamespace() : "";
  return (ns == "arith" || ns == "math") && !isa<arith::ConstantOp>(op);
}

/// Values that may take a replicated layout (every warp reads them whole from shared
/// memory): loads, staged by 16-byte copies, and transposes, whose input is staged from
/// wherever it lives. Other computed or carried tiles stay distributed.
static bool mayBeReplicated(Value v) {
  return v.getDefiningOp<tile::LoadOp>() || v.getDefiningOp<tile::TransOp>();
}

namespace {
struct Assigner {
  DenseMap<Value, Layout> &layouts;
  int64_t numWarps;
  bool changed = false;
  std::string error;

  /// Records `layout` for `v` unless it is a splat or already has one: a value used in
  /// several layouts is converted where a use needs another (TileToGpu). One exception:
  /// a load wanted whole by a product is staged in shared memory, and its other uses
  /// read it from there.
  void set(Value v, Layout layout) {
    if (!isTile(v) || isSplat(v))
      return;
    if (isReplicated(layout.kind) && !mayBeReplicated(v))
      return;
    auto [it, inserted] = layouts.try_emplace(v, layout);
    if (inserted) {
      changed = true;
    } else if (v.getDefiningOp<tile::LoadOp>() && isReplicated(layout.kind) &&
               !isReplicated(it->second.kind)) {
      it->second = layout;
      changed = true;
    }
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
  /// One layout for all of `group` (the places one loop-state position passes through).
  void unify(ArrayRef<Value> group) {
    for (Value a : group)
      for (Value b : group)
        if (a != b)
          sameAs(a, b);
  }
  /// Forward through an element-wise op: distributed layouts only.
  void forward(Value operand, Value result) {
    if (auto l = get(operand); l && !isReplicated(l->kind))
      sameAs(operand, result);
  }

  void visit(Operation *op) {
    if (auto dot = dyn_cast<tile::DotOp>(op)) {
      set(dot.getResult(), make(LayoutKind::Acc, dot.getResult(), numWarps));
      set(dot.getAcc(), make(LayoutKind::Acc, dot.getAcc(), numWarps));
      set(dot.getLhs(), make(LayoutKind::A, dot.getLhs(), numWarps));
      set(dot.getRhs(), make(LayoutKind::B, dot.getRhs(), numWarps));
    } else if (auto trans = dyn_cast<tile::TransOp>(op)) {
      // A transposed load is staged in shared memory and read back transposed.
      auto l = get(trans.getResult());
      if (l && (l->kind == LayoutKind::B || trans.getInput().getDefiningOp<tile::LoadOp>()))
        set(trans.getInput(), make(LayoutKind::BT, trans.getInput(), numWarps));
    } else if (auto red = dyn_cast<tile::ReduceOp>(op)) {
      auto in = red.getInput();
      if (shapeOf(in).size() == 1)
        set(in, make(LayoutKind::Row, in, numWarps)); // unless it came as a column
      if (isNarrow(shapeOf(in)) && red.getAxis() == 1) {
        // Whole rows per thread: reduced without shuffles.
        set(in, make(LayoutKind::RowSpan, in, numWarps));
        set(red.getResult(), make(LayoutKind::Row, red.getResult(), numWarps));
      } else if (shapeOf(in).size() == 2) {
        set(in, make(LayoutKind::Acc, in, numWarps));
        set(red.getResult(),
            make(red.getAxis() == 1 ? LayoutKind::Row : LayoutKind::Col, red.getResult(),
                 numWarps));
      }
    } else if (auto bc = dyn_cast<tile::BroadcastOp>(op); bc && isNarrow(shapeOf(bc.getResult()))) {
      // Into whole rows: a row value per row, or every element of a short vector.
      set(bc.getResult(), make(LayoutKind::RowSpan, bc.getResult(), numWarps));
      set(bc.getInput(), make(bc.getAxis() == 1 ? LayoutKind::Row : LayoutKind::Whole,
                              bc.getInput(), numWarps));
    } else if (auto bc = dyn_cast<tile::BroadcastOp>(op)) {
      set(bc.getResult(), make(LayoutKind::Acc, bc.getResult(), numWarps));
      set(bc.getInput(),
          make(bc.getAxis() == 1 ? LayoutKind::Row : LayoutKind::Col, bc.getInput(), numWarps));
    } else if (auto gather = dyn_cast<tile::GatherOp>(op)) {
      for (Value indices : gather.getIndices()) {
        sameAs(indices, gather.getResult());
        sameAs(gather.getResult(), indices);
      }
    } else if (auto scatter = dyn_cast<tile::ScatterAddOp>(op)) {
      // One thread per element (each adds what it holds): an accumulator unless the
      // values come in another layout.
      Value values = scatter.getValues();
      if (!get(values) && shapeOf(values).size() == 2)
        set(values, make(LayoutKind::Acc, values, numWarps));
      SmallVector<Value> group{values};
      llvm::append_range(group, scatter.getIndices());
      if (scatter.getMask())
        group.push_back(scatter.getMask());
      unify(group);
    } else if (auto forOp = dyn_cast<scf::ForOp>(op)) {
      auto yield = cast<scf::YieldOp>(forOp.getBody()->getTerminator());
      for (auto [i, res] : llvm::enumerate(forOp.getResults()))
        unify({forOp.getInitArgs()[i], forOp.getRegionIterArgs()[i], yield.getOperand(i), res});
    } else if (auto whileOp = dyn_cast<scf::WhileOp>(op)) {
      // Carried values: the same layout at every place a position of the loop state is
      // (loops that forward their state unchanged to the body, as the tile programs do).
      bool forwards = whileOp.getBeforeArguments().size() == whileOp.getResults().size() &&
                      whileOp.getInits().size() == whileOp.getResults().size();
      for (auto [i, res] : llvm::enumerate(forwards ? whileOp.getResults() : ValueRange()))
        unify({whileOp.getInits()[i], whileOp.getBeforeArguments()[i],
               whileOp.getConditionOp().getArgs()[i], whileOp.getAfterArguments()[i],
               whileOp.getYieldOp().getOperand(i), res});
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
        set(v, make(storedKind(shapeOf(v), numWarps), v, numWarps));
    } else if (isElementwise(op)) {
      Value res = op->getResult(0);
      for (Value operand : op->getOperands())
        if (isTile(operand))
          forward(operand, res);
      for (Value operand : op->getOperands())
        if (isTile(operand))
          sameAs(res, operand);
    }
  }
};
} // namespace

LogicalResult tessera::gpu::assignLayouts(tile::GridOp grid, int64_t numWarps,
                                          DenseMap<Value, Layout> &layouts) {
  Assigner a{layouts, numWarps};
  auto toFixedPoint = [&] {
    do {
      a.changed = false;
      grid.getBody().walk([&](Operation *op) { a.visit(op); });
    } while (a.changed);
  };
  toFixedPoint();
  // A right operand computed from tiles that nothing else lays out (a loaded f32 tile
  // narrowed to 16 bits) is computed distributed, then staged from registers.
  grid.getBody().walk([&](tile::DotOp dot) {
    Value rhs = dot.getRhs();
    if (!layouts.count(rhs) && !isSplat(rhs))
      layouts[rhs] = make(LayoutKind::Acc, rhs, numWarps);
  });
  toFixedPoint();

  // A splat takes the layout of each use; a stored one (a zero fill) has no consumer to
  // take it from, so it is stored the way a computed tile of its shape would be.
  grid.getBody().walk([&](tile::StoreOp store) {
    Value v = store.getValue();
    if (isSplat(v) && !layouts.count(v))
      layouts[v] = make(storedKind(shapeOf(v), numWarps), v, numWarps);
  });
  WalkResult result = grid.getBody().walk([&](Operation *op) -> WalkResult {
    for (Value r : op->getResults())
      if (isTile(r) && !shapeOf(r).empty() && !isSplat(r) && !layouts.count(r) &&
          !isa<tile::TransOp>(op)) {
        op->emitError("no GPU layout could be assigned to this tile");
        return WalkResult::interrupt();
      }
    for (Value r : op->getResults()) {
      auto it = layouts.find(r);
      if (it == layouts.end())
        continue;
      const Layout &l = it->second;
      // Accumulator-shaped tiles hold column pairs of 8-column blocks (operands are
      // checked where products are lowered).
      if ((l.kind == LayoutKind::Acc || l.kind == LayoutKind::Col) && l.cols % 8) {
        op->emitError("a tile of ")
            << l.cols << " columns cannot be spread over a warp's lanes (columns must be a "
            << "multiple of 8)";
        return WalkResult::interrupt();
      }
      if (!isRowDistributed(l.kind))
        continue;
      if (l.rows != 16 * numWarps * l.mTiles) {
        op->emitError("a tile of ")
            << l.rows << " rows cannot be spread over " << numWarps
            << " warps in 16-row blocks (rows must be 16 x num_warps x m)";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  // A transpose relabels: its result takes the layout demanded by its consumer (B).
  grid.getBody().walk([&](tile::TransOp t) {
    if (!layouts.count(t.getResult()))
      layouts[t.getResult()] = make(LayoutKind::B, t.getResult(), numWarps);
  });
  return success();
}
