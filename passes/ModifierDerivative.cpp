//===- ModifierDerivative.cpp - derivatives of score_mod regions ----------===//
//
// The backward needs dS = dS' ∘ ∂f/∂s for the user's score_mod f. Differentiating at
// the scalar level, before the region is spread over tiles, keeps one inliner for
// every modifier (forms, table reads) and lets the derivative reuse the values of f it
// needs (tanh's result for soft-capping, the exp for a gated bias).
//
//===----------------------------------------------------------------------===//
#include "passes/ModifierDerivative.h"

#include "dialect/attn/AttnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace tessera;

namespace {
/// Tangents (∂value/∂score) of the cloned region's f32 values; a value without one does
/// not depend on the score.
struct Tangents {
  OpBuilder &b;
  Location loc;
  DenseMap<Value, Value> of;

  Value cst(double x) { return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(float(x))); }
  Value get(Value v) { // zero where absent, for ops that mix both kinds of operands
    auto it = of.find(v);
    return it != of.end() ? it->second : cst(0.0);
  }
  bool has(Value v) { return of.contains(v); }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  Value select(Value c, Value x, Value y) { return arith::SelectOp::create(b, loc, c, x, y); }
  Value cmp(arith::CmpFPredicate p, Value x, Value y) {
    return arith::CmpFOp::create(b, loc, p, x, y);
  }

  /// The tangent of the (single, f32) result `r` of `op`, whose operands (in the clone)
  /// are `x` (and `y`); null if the derivative is not known.
  Value derive(Operation *op, Value r) {
    auto d = [&](unsigned i) { return get(op->getOperand(i)); };
    auto x = [&](unsigned i) { return op->getOperand(i); };
    return TypeSwitch<Operation *, Value>(op)
        .Case([&](arith::AddFOp) { return add(d(0), d(1)); })
        .Case([&](arith::SubFOp) { return sub(d(0), d(1)); })
        .Case([&](arith::NegFOp) { return arith::NegFOp::create(b, loc, d(0)).getResult(); })
        .Case([&](arith::MulFOp) { return add(mul(d(0), x(1)), mul(x(0), d(1))); })
        .Case([&](arith::DivFOp) { // (dx - r dy) / y
          return div(sub(d(0), mul(r, d(1))), x(1));
        })
        .Case([&](arith::RemFOp) { // x - trunc(x / y) y: dx - trunc(x / y) dy
          Value quotient = math::TruncOp::create(b, loc, div(x(0), x(1)));
          return sub(d(0), mul(quotient, d(1)));
        })
        .Case<arith::MaximumFOp, arith::MaxNumFOp>([&](Operation *) {
          return select(cmp(arith::CmpFPredicate::OGE, x(0), x(1)), d(0), d(1));
        })
        .Case<arith::MinimumFOp, arith::MinNumFOp>([&](Operation *) {
          return select(cmp(arith::CmpFPredicate::OLE, x(0), x(1)), d(0), d(1));
        })
        .Case([&](arith::SelectOp) { return select(x(0), d(1), d(2)); })
        .Case([&](math::ExpOp) { return mul(r, d(0)); })
        .Case([&](math::Exp2Op) { return mul(mul(r, cst(M_LN2)), d(0)); })
        .Case([&](math::ExpM1Op) { return mul(add(r, cst(1.0)), d(0)); })
        .Case([&](math::LogOp) { return div(d(0), x(0)); })
        .Case([&](math::Log2Op) { return div(d(0), mul(x(0), cst(M_LN2))); })
        .Case([&](math::Log1pOp) { return div(d(0), add(x(0), cst(1.0))); })
        .Case([&](math::TanhOp) { return mul(sub(cst(1.0), mul(r, r)), d(0)); })
        .Case([&](math::SqrtOp) { return div(d(0), mul(cst(2.0), r)); })
        .Case([&](math::RsqrtOp) { // -r^3 / 2
          return mul(mul(cst(-0.5), mul(r, mul(r, r))), d(0));
        })
        .Case([&](math::AbsFOp) {
          Value negative = cmp(arith::CmpFPredicate::OLT, x(0), cst(0.0));
          return select(negative, arith::NegFOp::create(b, loc, d(0)).getResult(), d(0));
        })
        .Case([&](math::SinOp) { return mul(math::CosOp::create(b, loc, x(0)), d(0)); })
        .Case([&](math::CosOp) {
          return mul(arith::NegFOp::create(b, loc, math::SinOp::create(b, loc, x(0))), d(0));
        })
        .Case([&](math::PowFOp) { // y x^(y-1) dx + ln(x) x^y dy
          Value base = x(0), e = x(1);
          Value viaBase =
              has(base) ? mul(mul(e, math::PowFOp::create(b, loc, base, sub(e, cst(1.0)))), d(0))
                        : cst(0.0);
          Value viaExp =
              has(e) ? mul(mul(math::LogOp::create(b, loc, base), r), d(1)) : cst(0.0);
          return add(viaBase, viaExp);
        })
        // Piecewise constant: derivative 0 almost everywhere.
        .Case<math::FloorOp, math::CeilOp, math::RoundOp, math::RoundEvenOp, math::TruncOp>(
            [&](Operation *) { return cst(0.0); })
        .Default([](Operation *) { return Value(); });
  }
};
} // namespace

/// Starts `into` with one block taking `scoreMod`'s arguments (mapped in `map`) and
/// returns a builder at its end.
static OpBuilder startRegionLike(Region &scoreMod, Region &into, IRMapping &map) {
  Block *dst = new Block;
  into.push_back(dst);
  for (BlockArgument arg : scoreMod.front().getArguments())
    map.map(arg, dst->addArgument(arg.getType(), arg.getLoc()));
  OpBuilder b(scoreMod.getContext()); // `into` may have no parent op to ask
  b.setInsertionPointToEnd(dst);
  return b;
}

/// Clones `scoreMod` into `into` with the tangents of every f32 value with respect to
/// the score (`seed` null) or to the value the table read `seed` yields; yields the
/// result's tangent.
static LogicalResult differentiate(Region &scoreMod, Region &into, Operation *seed) {
  Block &src = scoreMod.front();
  IRMapping map;
  OpBuilder b = startRegionLike(scoreMod, into, map);
  Tangents t{b, scoreMod.getLoc(), DenseMap<Value, Value>()};
  if (!seed)
    t.of[b.getInsertionBlock()->getArgument(0)] = t.cst(1.0);
  for (Operation &op : src.without_terminator()) {
    Operation *clone = b.clone(op, map);
    if (&op == seed) {
      t.of[clone->getResult(0)] = t.cst(1.0);
      continue;
    }
    bool dependsOnScore = llvm::any_of(clone->getOperands(), [&](Value v) { return t.has(v); });
    if (!dependsOnScore || clone->getNumResults() != 1 ||
        !clone->getResult(0).getType().isF32())
      continue; // comparisons, casts to integers: no derivative flows through
    t.loc = op.getLoc();
    Value tangent = t.derive(clone, clone->getResult(0));
    if (!tangent)
      return op.emitError("score_mod: the compiler cannot differentiate '")
             << op.getName() << "' with respect to the "
             << (seed ? "table it reads" : "score") << " (no derivative rule)";
    t.of[clone->getResult(0)] = tangent;
  }
  auto yield = cast<attn::YieldOp>(src.getTerminator());
  t.loc = yield.getLoc();
  Value derivative = t.get(map.lookup(yield.getValues()[0]));
  attn::YieldOp::create(b, yield.getLoc(), ValueRange{derivative});
  return success();
}

LogicalResult tessera::differentiateScoreMod(Region &scoreMod, Region &into) {
  return differentiate(scoreMod, into, nullptr);
}

LogicalResult tessera::differentiateScoreModByRead(Region &scoreMod, Region &into,
                                                   Operation *read) {
  return differentiate(scoreMod, into, read);
}

void tessera::readIndexRegion(Region &scoreMod, Region &into, Operation *read, unsigned dim) {
  IRMapping map;
  OpBuilder b = startRegionLike(scoreMod, into, map);
  for (Operation &op : scoreMod.front().without_terminator()) {
    b.clone(op, map);
    if (&op == read)
      break;
  }
  // The i32 the frontend cast to index, else a cast back (tile indices are i32).
  Value index = read->getOperand(1 + dim);
  if (auto cast = index.getDefiningOp<arith::IndexCastOp>(); cast && cast.getIn().getType().isInteger(32))
    index = cast.getIn();
  Value mapped = map.lookup(index);
  if (!mapped.getType().isInteger(32))
    mapped = arith::IndexCastOp::create(b, read->getLoc(), b.getI32Type(), mapped);
  attn::YieldOp::create(b, read->getLoc(), ValueRange{mapped});
}
