//===- ModifierBounds.cpp - a mask_mod's verdict over a box of indices -----===//
//
// Tile classification without looking at every element: the mask's scalar body is
// re-emitted over intervals. Integers carry [lo, hi] (monotone ops map end points,
// including '>>' by constants; a mask by a constant m >= 0 is in [0, m]; others,
// such as '|', '^', '<<' and shifts by variables, are unknown; table reads too unless the
// caller bounds them); booleans carry (surely true, surely false). Comparing two
// intervals that do not overlap, or two equal single points, decides the comparison
// for the whole box.
//
//===----------------------------------------------------------------------===//
#include "passes/ModifierBounds.h"

#include "dialect/attn/AttnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

#include <optional>

using namespace mlir;
using namespace tessera;

namespace {
/// An integer's range (null ends: unknown) or a boolean's verdicts.
struct Bound {
  Value lo, hi;               // integers
  Value surelyTrue, surelyFalse; // i1
};

struct BoundEmitter {
  ImplicitLocOpBuilder &b;
  DenseMap<Value, Bound> bounds;
  TableReadRange tableRange; // may be null: table reads unknown

  Value falseValue() { return arith::ConstantIntOp::create(b, b.getI1Type(), 0); }
  Value trueValue() { return arith::ConstantIntOp::create(b, b.getI1Type(), 1); }
  Bound unknownBool() { return {{}, {}, falseValue(), falseValue()}; }
  Bound decided(Value isTrue, Value isFalse) { return {{}, {}, isTrue, isFalse}; }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, x, y); }
  Value orI(Value x, Value y) { return arith::OrIOp::create(b, x, y); }
  Value cmp(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, p, x, y);
  }

  Bound visit(Operation &op);
  Bound compare(arith::CmpIPredicate pred, const Bound &x, const Bound &y);
};
} // namespace

static std::optional<int64_t> constantOf(Value v) {
  APInt c;
  if (matchPattern(v, m_ConstantInt(&c)))
    return c.getSExtValue();
  return std::nullopt;
}

Bound BoundEmitter::compare(arith::CmpIPredicate pred, const Bound &x, const Bound &y) {
  using P = arith::CmpIPredicate;
  if (!x.lo || !y.lo)
    return unknownBool();
  switch (pred) {
  case P::slt: // every x < every y; no x < any y
    return decided(cmp(P::slt, x.hi, y.lo), cmp(P::sge, x.lo, y.hi));
  case P::sle:
    return decided(cmp(P::sle, x.hi, y.lo), cmp(P::sgt, x.lo, y.hi));
  case P::sgt:
    return compare(P::slt, y, x);
  case P::sge:
    return compare(P::sle, y, x);
  case P::eq:
  case P::ne: {
    Value single = andI(andI(cmp(P::eq, x.lo, x.hi), cmp(P::eq, y.lo, y.hi)),
                        cmp(P::eq, x.lo, y.lo));
    Value apart = orI(cmp(P::slt, x.hi, y.lo), cmp(P::slt, y.hi, x.lo));
    return pred == P::eq ? decided(single, apart) : decided(apart, single);
  }
  default: // unsigned orders: the ranges may straddle zero
    return unknownBool();
  }
}

Bound BoundEmitter::visit(Operation &op) {
  auto in = [&](unsigned i) {
    Bound x = bounds.lookup(op.getOperand(i));
    if (op.getOperand(i).getType().isInteger(1) && !x.surelyTrue)
      return unknownBool();
    return x;
  };
  Type type = op.getNumResults() == 1 ? op.getResult(0).getType() : Type();
  if (type && type.isInteger(1)) {
    if (auto c = constantOf(op.getResult(0)))
      return *c ? decided(trueValue(), falseValue()) : decided(falseValue(), trueValue());
    if (auto c = dyn_cast<arith::CmpIOp>(op))
      return compare(c.getPredicate(), in(0), in(1));
    Bound x = in(0);
    if (isa<arith::AndIOp>(op))
      return decided(andI(x.surelyTrue, in(1).surelyTrue), orI(x.surelyFalse, in(1).surelyFalse));
    if (isa<arith::OrIOp>(op))
      return decided(orI(x.surelyTrue, in(1).surelyTrue), andI(x.surelyFalse, in(1).surelyFalse));
    if (isa<arith::XOrIOp>(op)) {
      Bound y = in(1);
      return decided(orI(andI(x.surelyTrue, y.surelyFalse), andI(x.surelyFalse, y.surelyTrue)),
                     orI(andI(x.surelyTrue, y.surelyTrue), andI(x.surelyFalse, y.surelyFalse)));
    }
    if (auto s = dyn_cast<arith::SelectOp>(op)) {
      Bound c = x, t = in(1), f = in(2);
      // Decided when the condition is, or when both arms agree.
      auto pick = [&](Value onTrue, Value onFalse) {
        return orI(orI(andI(c.surelyTrue, onTrue), andI(c.surelyFalse, onFalse)),
                   andI(onTrue, onFalse));
      };
      return decided(pick(t.surelyTrue, f.surelyTrue), pick(t.surelyFalse, f.surelyFalse));
    }
    return unknownBool();
  }
  if (!type || !type.isSignlessIntOrIndex())
    return {};
  if (isa<tensor::ExtractOp>(op)) {
    if (!tableRange)
      return {};
    SmallVector<std::pair<Value, Value>> indexRanges;
    for (Value index : op.getOperands().drop_front()) {
      Bound x = bounds.lookup(index);
      if (!x.lo)
        return {};
      indexRanges.push_back({x.lo, x.hi});
    }
    auto [lo, hi] = tableRange(&op, indexRanges);
    return {lo, hi, {}, {}};
  }
  if (auto c = constantOf(op.getResult(0))) {
    Value v = arith::ConstantOp::create(b, type, b.getIntegerAttr(type, *c));
    return {v, v, {}, {}};
  }
  // Casts between index and i32, sign extension: monotone.
  if (isa<arith::IndexCastOp, arith::ExtSIOp>(op)) {
    Bound x = in(0);
    if (!x.lo)
      return {};
    return {b.create(op.getLoc(), op.getName().getIdentifier(), {x.lo}, {type})->getResult(0),
            b.create(op.getLoc(), op.getName().getIdentifier(), {x.hi}, {type})->getResult(0),
            {}, {}};
  }
  if (isa<arith::ExtUIOp>(op) && op.getOperand(0).getType().isInteger(1)) {
    Bound x = in(0);
    auto asInt = [&](Value bit) { return arith::ExtUIOp::create(b, type, bit).getResult(); };
    // 1 surely when true; 0 surely when false; else [0, 1].
    return {asInt(x.surelyTrue), asInt(arith::XOrIOp::create(b, x.surelyFalse, trueValue())),
            {}, {}};
  }
  // A mask by a non-negative constant lands in [0, mask], whatever the other operand.
  if (isa<arith::AndIOp>(op)) {
    std::optional<int64_t> m = constantOf(op.getOperand(1));
    if (!m)
      m = constantOf(op.getOperand(0));
    if (m && *m >= 0)
      return {arith::ConstantOp::create(b, type, b.getIntegerAttr(type, 0)),
              arith::ConstantOp::create(b, type, b.getIntegerAttr(type, *m)), {}, {}};
    return {};
  }
  if (op.getNumOperands() != 2 || !in(0).lo || !in(1).lo)
    return {};
  Bound x = in(0), y = in(1);
  auto binary = [&](Value l, Value r) {
    return b.create(op.getLoc(), op.getName().getIdentifier(), {l, r}, {type})->getResult(0);
  };
  if (isa<arith::AddIOp, arith::MinSIOp, arith::MaxSIOp>(op)) // monotone in both
    return {binary(x.lo, y.lo), binary(x.hi, y.hi), {}, {}};
  if (isa<arith::SubIOp>(op))
    return {binary(x.lo, y.hi), binary(x.hi, y.lo), {}, {}};
  // A right shift by a constant count (the frontend's form for counts in [0, 31]) is
  // monotone and never overflows ('<<' may wrap, so it stays unknown).
  if (isa<arith::ShRSIOp>(op)) {
    std::optional<int64_t> n = constantOf(op.getOperand(1));
    if (!n || *n < 0 || *n > 31)
      return {};
    return {binary(x.lo, y.lo), binary(x.hi, y.lo), {}, {}};
  }
  // A product or quotient by a constant: monotone in the other operand, reversed when
  // the constant is negative.
  std::optional<int64_t> c = constantOf(op.getOperand(1));
  if (isa<arith::MulIOp>(op) && !c) {
    c = constantOf(op.getOperand(0));
    std::swap(x, y);
  }
  // (No quotient by 0 or -1: INT32_MIN / -1 traps on x86 like / 0; the frontend guards
  // those divisors itself.)
  if (!c || !isa<arith::MulIOp, arith::DivSIOp, arith::FloorDivSIOp, arith::CeilDivSIOp>(op) ||
      ((*c == 0 || *c == -1) && !isa<arith::MulIOp>(op)))
    return {};
  if (*c >= 0)
    return {binary(x.lo, y.lo), binary(x.hi, y.hi), {}, {}};
  return {binary(x.hi, y.lo), binary(x.lo, y.hi), {}, {}};
}

BoxVerdict tessera::boundMaskOverBox(ImplicitLocOpBuilder &b, Region &region,
                                     ArrayRef<std::pair<Value, Value>> ranges,
                                     TableReadRange tableRange) {
  Block &block = region.front();
  BoundEmitter e{b, DenseMap<Value, Bound>(), tableRange};
  for (auto [arg, range] : llvm::zip(block.getArguments(), ranges))
    e.bounds[arg] = {range.first, range.second, {}, {}};
  for (Operation &op : block.without_terminator())
    if (op.getNumResults() == 1)
      e.bounds[op.getResult(0)] = e.visit(op);
  Bound kept = e.bounds.lookup(cast<attn::YieldOp>(block.getTerminator()).getValues()[0]);
  if (!kept.surelyTrue) // the yield of an op left unvisited
    return {e.falseValue(), e.falseValue()};
  return {kept.surelyTrue, kept.surelyFalse};
}
