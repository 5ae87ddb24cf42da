//===- SoftmaxTileStep.cpp - one key tile of the online softmax -----------===//
//
// What every walk does with a key tile it visits: the scores Q Kᵀ, the score_mod, the
// mask (bounds, block-list rows, mask_mod) where the tile is masked, and the
// online-softmax update of (m, l, acc) (SEMANTICS.md §1).
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxTileProgram.h"

#include "passes/ModifierInlining.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace tessera;

static constexpr double kLog2E = 1.4426950408889634;
static constexpr float kMaxLag = 8.0f;

std::pair<Value, Value> SoftmaxProgram::indexTiles(Value n0) {
  Value qIdx = rowBroadcast(rows, bn);
  Value cols = tile::RangeOp::create(b, tileType({bn}, i32), n0);
  Value kIdx = tile::BroadcastOp::create(b, tileType({bm, bn}, i32), cols, 0);
  return {qIdx, kIdx};
}

Value SoftmaxProgram::keepTile(Value qIdx, Value kIdx) {
  SmallVector<int64_t> shape{bm, bn};
  // Keys past the end are padding: always masked. A tile not to be visited is all
  // padding (a scalar choice of the end: no more per-key work than the end's mask).
  Value end = toI32(nk);
  if (tileKept)
    end = arith::SelectOp::create(b, tileKept, end, arith::ConstantIntOp::create(b, i32, 0));
  Value keep = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kIdx, splatOf(shape, end));
  Value diag; // i + Nk - Nq
  if (op.getCausal()) {
    diag = arith::AddIOp::create(b, qIdx, splatOf(shape, offset));
    keep = arith::AndIOp::create(
        b, keep, arith::CmpIOp::create(b, arith::CmpIPredicate::sle, kIdx, diag));
  }
  if (auto w = op.getWindowAttr()) {
    Value width = splatOf(shape, arith::ConstantIntOp::create(b, i32, w.getInt()));
    if (!diag) { // a window without causality: |j - (i + Nk - Nq)| < w
      diag = arith::AddIOp::create(b, qIdx, splatOf(shape, offset));
      Value highest = arith::AddIOp::create(b, diag, width);
      keep = arith::AndIOp::create(
          b, keep, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kIdx, highest));
    }
    Value lowest = arith::SubIOp::create(b, diag, width);
    keep = arith::AndIOp::create(
        b, keep, arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, kIdx, lowest));
  }
  if (rowKeep)
    keep = arith::AndIOp::create(b, keep, rowBroadcast(rowKeep, bn));
  if (op.hasMaskMod()) {
    SmallVector<Value> args{splatOf(shape, toI32(batch)), splatOf(shape, toI32(head)),
                            qIdx, kIdx};
    FailureOr<Value> userKeep =
        inlineModifierElementwise(b, op.getMaskMod(), args, shape, buffers);
    keep = arith::AndIOp::create(b, keep, *userKeep);
  }
  return keep;
}

std::pair<Value, Value> SoftmaxProgram::loadKeyValue(Value n0) {
  Value k = tile::LoadOp::create(b, tileType({bn, d}, elemType), buffers.lookup(op.getKey()),
                                 ValueRange{batch, kvHead, n0, cIndex(0)}, nullptr);
  Value v = tile::LoadOp::create(b, tileType({bn, dv}, elemType),
                                 buffers.lookup(op.getValue()),
                                 ValueRange{batch, kvHead, n0, cIndex(0)}, nullptr);
  return {k, v};
}

SmallVector<Value> SoftmaxProgram::stepTile(Value t, ValueRange carried, bool masked) {
  Value n0 = arith::MulIOp::create(b, t, bnIdx);
  auto [k, v] = loadKeyValue(n0);
  return step(n0, k, v, carried, masked);
}

SmallVector<Value> SoftmaxProgram::step(Value n0, Value k, Value v, ValueRange carried,
                                        bool masked) {
  Value m = carried[0], l = carried[1], acc = carried[2];
  Value kt = tile::TransOp::create(b, tileType({d, bn}, elemType), k);
  SmallVector<int64_t> shape{bm, bn};
  Value s = tile::DotOp::create(b, tileType(shape, f32), qTile, kt, splatF32(shape, 0.0f));
  // Scores are kept in base 2 (times log2 e) so the exponentials below are exp2, one
  // hardware instruction on GPUs. Without a score_mod the scale c > 0 commutes with the
  // row maximum, so it is applied after it: each exponent is then one fused
  // s * c - base (`contract`) instead of a multiply for the maximum and a subtraction.
  double scale = op.getEffectiveScale();
  bool scaleLate = !op.hasScoreMod() && scale > 0;
  if (!op.hasScoreMod())
    scale *= kLog2E;
  if (!scaleLate)
    s = arith::MulFOp::create(b, s, splatF32(shape, float(scale)));

  Value qIdx, kIdx;
  if (masked || op.hasScoreMod())
    std::tie(qIdx, kIdx) = indexTiles(n0);
  if (op.hasScoreMod()) {
    SmallVector<Value> args{s, splatOf(shape, toI32(batch)), splatOf(shape, toI32(head)),
                            qIdx, kIdx};
    s = *inlineModifierElementwise(b, op.getScoreMod(), args, shape, buffers);
    s = arith::MulFOp::create(b, s, splatF32(shape, float(kLog2E)));
  }
  if (masked) {
    Value negInf = splatF32(shape, -std::numeric_limits<float>::infinity());
    s = arith::SelectOp::create(b, keepTile(qIdx, kIdx), s, negInf);
  }

  // Online softmax (SEMANTICS.md §1). A row that has seen no key keeps m = -inf; its
  // exponent base is taken as 0 so that exp(-inf - base) = 0 instead of NaN.
  Value rowMax = tile::ReduceOp::create(b, tileType({bm}, f32), tile::Combiner::max, s, 1);
  if (scaleLate)
    rowMax = arith::MulFOp::create(b, rowMax, splatF32({bm}, float(scale)));
  // The maximum a row's exponents are taken from moves only when the tile's maximum
  // exceeds it by more than kMaxLag (base 2): a weight is then at most 2^kMaxLag, far from
  // f32 or bf16 overflow, and most key tiles leave every row's factor alpha exactly 1, so
  // the GPU skips the accumulator's rescale (FlashAttention-4). The result is the same
  // softmax: every weight, the sum and the output share one base per row.
  Value lagging = arith::AddFOp::create(b, m, splatF32({bm}, kMaxLag));
  Value moves = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, rowMax, lagging);
  Value mNew = arith::SelectOp::create(b, moves, rowMax, m);
  Value negInf = splatF32({bm}, -std::numeric_limits<float>::infinity());
  Value isEmpty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, mNew, negInf);
  Value base = arith::SelectOp::create(b, isEmpty, splatF32({bm}, 0.0f), mNew);
  auto contract = arith::FastMathFlags::contract;
  Value exponent = s;
  if (scaleLate)
    exponent = arith::MulFOp::create(b, s, splatF32(shape, float(scale)), contract);
  exponent = arith::SubFOp::create(b, exponent, rowBroadcast(base, bn), contract);
  Value p = math::Exp2Op::create(b, exponent);
  Value alpha = math::Exp2Op::create(b, arith::SubFOp::create(b, m, base));
  Value lNew = arith::AddFOp::create(
      b, arith::MulFOp::create(b, alpha, l),
      tile::ReduceOp::create(b, tileType({bm}, f32), tile::Combiner::sum, p, 1));
  Value scaled = arith::MulFOp::create(b, acc, rowBroadcast(alpha, dv));
  Value pCast = p;
  if (elemType != f32) // the second product runs at the input precision, as on GPUs
    pCast = arith::TruncFOp::create(b, tileType(shape, elemType), p);
  Value accNew = tile::DotOp::create(b, tileType({bm, dv}, f32), pCast, v, scaled);
  return {mNew, lNew, accNew};
}
