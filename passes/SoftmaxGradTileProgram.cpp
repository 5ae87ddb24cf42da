//===- SoftmaxGradTileProgram.cpp - softmax attention backward ------------===//
//
// The backward of the online-softmax forward (SEMANTICS.md §1, backward), as three
// grids that write every gradient element once, in a fixed order (deterministic, as
// FlashAttention-3's deterministic mode):
//
//   1. Δ = rowsum(dO ∘ O), one program per (query tile, head, batch);
//   2. dK, dV: one program per (key tile, key/value head, batch) walks the query heads
//      of its group and, for each, the query tiles that see any of its keys, keeping dK
//      and dV on chip (GQA sums without races);
//   3. dQ: one program per (query tile, head, batch) walks the key tiles it sees, as
//      the forward does.
//
// Each (query tile, key tile) pair recomputes P = exp(f(τ Q Kᵀ) − L) from the saved L.
// Grid 2 computes the pair's tiles transposed, [key, query] (Sᵀ = K Qᵀ, dPᵀ = V dOᵀ), so
// that Pᵀ and dSᵀ are the left operands of dV += Pᵀ dO and dK += dSᵀ Q as they stand
// (wgmma: straight from the accumulator registers, no transpose through shared memory);
// with keyMajor false (mma.sync, sm_80: K and V as left operands would be held in
// registers across the loop) it computes [query, key] tiles and transposes P and dS.
// dP − Δ accumulates onto −Δ and P is one exp2 of a multiply-add, as in the forward.
// Tile classification runs transposed in grid 2: causal / window bounds give each key
// tile the range of query tiles that see it, and tiles those bounds keep whole skip all
// mask arithmetic; a mask_mod or block list is evaluated on the other tiles, and a tile
// it masks entirely is skipped (no products).
//
// With `dqAtomic` (GPUs) grid 3 goes: grid 2 also forms each pair's dS K and adds it into
// an f32 workspace with atomic reductions (FlashAttention-2/3's dQaccum: 5 products per
// pair instead of 7), Δ's grid zeroes that workspace first, and a last grid scales it into
// dQ's type. Sums in no fixed order: not the same bits every run.
//
//===----------------------------------------------------------------------===//
#include "passes/TilePrograms.h"

#include "passes/ModifierDerivative.h"
#include "passes/ModifierInlining.h"
#include "passes/SoftmaxGradClassification.h"
#include "passes/TileBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>
#include <memory>
#include <numeric>
#include <optional>

using namespace mlir;
using namespace tessera;
using P = arith::CmpIPredicate;

static constexpr double kLog2E = 1.4426950408889634;

namespace {
/// Where a table's gradient collects: one f32 table the score_mod reads, and per read of
/// it, the regions giving ∂score_mod/∂(value read) and the entry read (one per dim).
struct TableRead {
  Value grad; // the gradient's buffer
  std::unique_ptr<Region> slope;
  SmallVector<std::unique_ptr<Region>> index;
};

/// The gradients of one pair: P, dS' = P ∘ (dP − Δ), dS = dS' ∘ ∂f/∂s, the kept pairs
/// (null where the bounds keep the whole tile) and the score_mod's arguments.
struct PairGrads {
  Value p, dsPrime, ds, keep;
  SmallVector<Value> modArgs; // (τ Q Kᵀ, b, h, i, j) tiles
};

/// The operand tiles of one (query tile, key tile) pair.
struct PairTiles {
  Value m0, n0, head; // tile origins (index) and the query head
  Value q, k, v, dO;  // BM x D, BN x D, BN x Dv, BM x Dv (the inputs' type)
  SmallVector<Value> kPieces; // K's 64-column pieces, where dQᵀ goes in 64-row products
  Value lse, delta;   // BM (f32); null: read where used (grid 2, for shorter live ranges)
};

struct GradProgram : TileBuilder {
  attn::AttentionGradOp op;
  const IRMapping &buffers;
  Region *scoreDerivative = nullptr; // ∂score_mod/∂score, when there is a score_mod
  SmallVector<TableRead> tableReads; // tables whose gradient is asked, per read
  int64_t bm = 0, bn = 0, d = 0, dv = 0; // the current grid's query and key tiles
  /// Pair tiles are [key, query] (the dK / dV grid): Sᵀ and dPᵀ come straight out of
  /// their products, so Pᵀ and dSᵀ are the left operands of dV and dK as computed (on
  /// the GPU, in registers: no transpose through shared memory).
  bool keyRows = false;
  Value nq, nk, offset; // lengths (index) and Nk - Nq (index)
  Value batch;          // program coordinate (index)
  Value delta;          // Δ, [B, H, Nq] f32

  GradProgram(ImplicitLocOpBuilder &b, attn::AttentionGradOp op, const IRMapping &buffers)
      : TileBuilder(b), op(op), buffers(buffers) {}

  Value buffer(Value tensor) { return buffers.lookup(tensor); }
  SmallVector<int64_t> pairShape() {
    return keyRows ? SmallVector<int64_t>{bn, bm} : SmallVector<int64_t>{bm, bn};
  }
  /// A [bm] per-query vector (or [bn] per-key one) spread over the pair tile.
  Value perQuery(Value v) { return keyRows ? broadcast(v, 0, bn) : broadcast(v, 1, bn); }
  Value perKey(Value v) { return keyRows ? broadcast(v, 1, bm) : broadcast(v, 0, bm); }
  Value load(Value tensor, ArrayRef<int64_t> shape, ValueRange at) {
    return loadF32(buffer(tensor), shape, at);
  }
  /// A product operand in the inputs' type (f16 / bf16 stay so, for tensor cores).
  Value operand(Value tensor, ArrayRef<int64_t> shape, ValueRange at) {
    return loadOperand(buffer(tensor), shape, at);
  }
  /// An f32 tile (P, dS) narrowed to the operands' type for a product, as the forward
  /// narrows P: the products run at the input precision, accumulating in f32.
  Value narrow(Value t) {
    Type elem = cast<RankedTensorType>(operandType).getElementType();
    if (elem == f32)
      return t;
    auto type = cast<RankedTensorType>(t.getType());
    return arith::TruncFOp::create(b, tileType(type.getShape(), elem), t);
  }
  Type operandType; // the type of a loaded Q tile
  /// The i1 tile of pairs the masks keep (bounds, ragged ends, mask_mod, block list);
  /// null where nothing is masked.
  Value keepTile(const PairTiles &t, bool withUserMasks);
  /// Which rows of the query tile at `m0` list the key block holding key `n0`.
  Value listedRows(Value m0, Value n0, Value head);
  /// Whether causal / window bounds and the ragged ends (and the user's masks, unless
  /// `boundsOnly`) keep every pair of the tile (null: every tile is kept whole).
  Value wholeTile(Value m0, Value n0, bool boundsOnly = false);
  /// The key tiles (of `keys` keys) some of the `rows` rows from `m0` may see: [lo, hi).
  std::pair<Value, Value> keyTileRange(Value m0, int64_t rows, int64_t keys);
  /// The query tiles (of `rows` rows) that may see some of the `keys` keys from `n0`.
  std::pair<Value, Value> queryTileRange(Value n0, int64_t rows, int64_t keys);
  /// Which ragged ends are masked. Loads past an end read 0, so without a score_mod
  /// (which may turn such a score into inf or NaN) or user masks, a padding query adds
  /// nothing to a stored gradient (its Q, dO, L and Δ are 0: P = 1, dS = 0), and a
  /// padding key of the dK / dV grid only to its own rows, which are not stored. A
  /// padding key of the dQ grid is masked: its P = 2^(−L) overflows for rows whose L is
  /// very negative, and inf · 0 is NaN; so is one of the dK / dV grid that adds dS K.
  bool maskQueryEnd() { return op.hasScoreMod() || hasUserMasks(); }
  bool maskKeyEnd() { return maskQueryEnd() || !keyRows || dqAtomic; }
  bool dqAtomic = false; // grid 2 adds dS K into dQ's f32 sum (its padding keys masked)
  /// The pair's gradients (masked entries 0); `masked` evaluates the masks.
  PairGrads pairGrads(const PairTiles &t, bool masked);
  /// Adds the pair's share of every table gradient, dS' ∘ ∂f/∂T at the entries read.
  void accumulateTableGrads(const PairTiles &t, const PairGrads &g);
  /// Adds the pair's dS K (unscaled) into `dqSum` [B, H, Nq, D] with atomics: in [key,
  /// query] tiles as (dS K)ᵀ = Kᵀ dSᵀ, whose rows are head dims (wgmma's 64-row products
  /// where the query tile is narrower) and whose right operand is dSᵀ as computed.
  void addQueryGrad(const PairTiles &t, const PairGrads &g, Value dqSum);
  /// Runs `body` (returning the updated accumulators) on the pair if it keeps any
  /// entry: directly where the bounds keep it whole, masked otherwise. A pair from a
  /// classification list (`listedWhole`: whether the mask_mod keeps it whole) keeps
  /// something by construction.
  SmallVector<Value> visitPair(const PairTiles &t, ValueRange acc,
                               function_ref<SmallVector<Value>(const PairGrads &, ValueRange)> body,
                               Value listedWhole = {});
  bool hasUserMasks() { return op.hasMaskMod() || op.getBlockIndices(); }
  /// How far past its diagonal (i + Nk - Nq) a row sees: 0 under causal, w - 1 for a
  /// window w without causal (|j - diag| < w), unbounded (nullopt) otherwise.
  std::optional<int64_t> reach() {
    if (op.getCausal())
      return 0;
    if (auto w = op.getWindowAttr())
      return w.getInt() - 1;
    return std::nullopt;
  }
};
} // namespace

Value GradProgram::keepTile(const PairTiles &t, bool withUserMasks) {
  SmallVector<int64_t> shape = pairShape();
  Value qIdx = perQuery(range(t.m0, bm));
  Value kIdx = perKey(range(t.n0, bn));
  Value keep; // null: every pair
  auto both = [&](Value x) { keep = keep ? arith::AndIOp::create(b, keep, x).getResult() : x; };
  if (maskQueryEnd())
    both(cmpI(P::slt, qIdx, splatOf(shape, toI32(nq))));
  if (maskKeyEnd())
    both(cmpI(P::slt, kIdx, splatOf(shape, toI32(nk))));
  Value diag = arith::AddIOp::create(b, qIdx, splatOf(shape, toI32(offset))); // i + Nk - Nq
  if (std::optional<int64_t> r = reach()) {
    Value highest = arith::AddIOp::create(
        b, diag, splatOf(shape, arith::ConstantIntOp::create(b, i32, *r)));
    both(cmpI(P::sle, kIdx, highest));
  }
  if (auto w = op.getWindowAttr()) {
    Value lowest = arith::SubIOp::create(
        b, diag, splatOf(shape, arith::ConstantIntOp::create(b, i32, w.getInt())));
    both(cmpI(P::sgt, kIdx, lowest));
  }
  if (!withUserMasks)
    return keep;
  if (op.getBlockIndices())
    both(perQuery(listedRows(t.m0, t.n0, t.head)));
  if (op.hasMaskMod()) {
    SmallVector<Value> args{splatOf(shape, toI32(batch)), splatOf(shape, toI32(t.head)), qIdx,
                            kIdx};
    both(*inlineModifierElementwise(b, op.getMaskMod(), args, shape, buffers));
  }
  return keep;
}

Value GradProgram::listedRows(Value m0, Value n0, Value head) {
  // The block lists are walked (K entries per pair) rather than transposed into
  // per-key-block lists: K is small (top-k selections) and no buffer is needed.
  Value list = buffer(op.getBlockIndices());
  int64_t bq = op.getBlockQAttr().getInt(), bk = op.getBlockKAttr().getInt();
  Value c0 = cIndex(0), c1 = cIndex(1);
  Value sharedList = cmpI(P::eq, dim(list, 1), c1);
  Value listHead = select(sharedList, c0, head);
  Value keyBlock = toI32(arith::DivSIOp::create(b, n0, cIndex(bk)));
  Value entries = dim(list, 3);
  Value none = splatOf({bm}, arith::ConstantIntOp::create(b, b.getI1Type(), 0));
  return forLoop(c0, entries, ValueRange{none}, [&](Value e, ValueRange acc) {
    Value listed;
    if (bq == 1) { // a list per row: the rows' column of entry e (-1 past the last row)
      Value col = tile::LoadOp::create(b, tileType({bm, 1}, i32), list,
                                       ValueRange{batch, listHead, m0, e},
                                       b.getI32IntegerAttr(-1));
      listed = reduce(tile::Combiner::sum, col, 1);
    } else { // the tile lies in one query block (block_q is a multiple of block_m)
      Value qBlock = arith::DivSIOp::create(b, m0, cIndex(bq));
      listed = splatOf({bm}, memref::LoadOp::create(b, list,
                                                    ValueRange{batch, listHead, qBlock, e}));
    }
    Value hit = cmpI(P::eq, listed, splatOf({bm}, keyBlock));
    return SmallVector<Value>{arith::OrIOp::create(b, acc[0], hit)};
  })[0];
}

Value GradProgram::wholeTile(Value m0, Value n0, bool boundsOnly) {
  if (hasUserMasks() && !boundsOnly)
    return arith::ConstantIntOp::create(b, b.getI1Type(), 0);
  Value whole; // null: every tile
  auto both = [&](Value x) { whole = whole ? arith::AndIOp::create(b, whole, x).getResult() : x; };
  Value lastRow = arith::AddIOp::create(b, m0, cIndex(bm - 1));
  Value lastKey = arith::AddIOp::create(b, n0, cIndex(bn - 1));
  if (maskQueryEnd())
    both(cmpI(P::slt, lastRow, nq));
  if (maskKeyEnd())
    both(cmpI(P::slt, lastKey, nk));
  if (std::optional<int64_t> r = reach()) // the first row sees the last key
    both(cmpI(P::sle, lastKey,
              arith::AddIOp::create(b, arith::AddIOp::create(b, m0, offset), cIndex(*r))));
  if (auto w = op.getWindowAttr()) { // the last row still sees the first key
    Value lowest = arith::SubIOp::create(b, arith::AddIOp::create(b, lastRow, offset),
                                         cIndex(w.getInt()));
    both(cmpI(P::sgt, n0, lowest));
  }
  return whole;
}

// Rows see keys from the first row's window start to the last row's diagonal (causal)
// or window end.
std::pair<Value, Value> GradProgram::keyTileRange(Value m0, int64_t rows, int64_t keys) {
  Value c0 = cIndex(0), c1 = cIndex(1);
  Value keyBegin = c0, keyEnd = nk;
  Value lastRow = arith::MinSIOp::create(b, arith::AddIOp::create(b, m0, cIndex(rows - 1)),
                                         arith::SubIOp::create(b, nq, c1));
  if (std::optional<int64_t> r = reach())
    keyEnd = arith::MinSIOp::create(
        b, nk,
        arith::MaxSIOp::create(
            b, c0,
            arith::AddIOp::create(b, arith::AddIOp::create(b, lastRow, offset), cIndex(*r + 1))));
  if (auto w = op.getWindowAttr())
    keyBegin = arith::MaxSIOp::create(
        b, c0, arith::AddIOp::create(b, arith::AddIOp::create(b, m0, offset),
                                     cIndex(1 - w.getInt())));
  Value lo = arith::FloorDivSIOp::create(b, keyBegin, cIndex(keys));
  return {lo, arith::MaxSIOp::create(b, lo, ceilDiv(keyEnd, keys))};
}

// Keys are seen from the first row whose diagonal reaches the first key (causal) to the
// last row whose window still holds the last key.
std::pair<Value, Value> GradProgram::queryTileRange(Value n0, int64_t rows, int64_t keys) {
  Value c0 = cIndex(0), c1 = cIndex(1);
  Value rowBegin = c0, rowEnd = nq;
  if (std::optional<int64_t> r = reach())
    rowBegin = arith::MaxSIOp::create(
        b, c0, arith::SubIOp::create(b, n0, arith::AddIOp::create(b, offset, cIndex(*r))));
  if (auto w = op.getWindowAttr()) {
    Value lastKey = arith::MinSIOp::create(b, arith::AddIOp::create(b, n0, cIndex(keys - 1)),
                                           arith::SubIOp::create(b, nk, c1));
    Value past = arith::AddIOp::create(b, arith::SubIOp::create(b, lastKey, offset),
                                       cIndex(w.getInt()));
    rowEnd = arith::MaxSIOp::create(b, c0, arith::MinSIOp::create(b, nq, past));
  }
  Value lo = arith::FloorDivSIOp::create(b, rowBegin, cIndex(rows));
  return {lo, arith::MaxSIOp::create(b, lo, ceilDiv(rowEnd, rows))};
}

PairGrads GradProgram::pairGrads(const PairTiles &t, bool masked) {
  SmallVector<int64_t> shape = pairShape();
  Value zero = splatF32(shape, 0.0f);
  auto contract = arith::FastMathFlags::contract;
  float scale = float(op.getEffectiveScale()), log2e = float(kLog2E);
  // A row that kept no key has L = -inf: taking +inf instead makes its P 0, not NaN.
  auto loadLse = [&] {
    Value negInf = splatF32({bm}, -std::numeric_limits<float>::infinity());
    Value saved = t.lse ? t.lse : load(op.getLse(), {bm}, ValueRange{batch, t.head, t.m0});
    Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, saved, negInf);
    return select(empty, splatF32({bm}, std::numeric_limits<float>::infinity()), saved);
  };
  auto product = [&](Value init) {
    return keyRows ? dot(t.k, trans(t.q), init) : dot(t.q, trans(t.k), init);
  };
  Value exponent, slope; // ∂f/∂s
  SmallVector<Value> args;
  if (!op.hasScoreMod() && scale > 0) {
    // P = 2^((s − L / τ) τ log2 e): the product accumulates onto −L / τ, so L is not
    // held beside the scores (as dP accumulates onto −Δ).
    Value minusBase = arith::MulFOp::create(b, loadLse(), splatF32({bm}, -1.0f / scale));
    exponent = arith::MulFOp::create(b, product(perQuery(minusBase)),
                                     splatF32(shape, scale * log2e));
  } else {
    // P = exp(f(τ s) − L) = 2^(f(τ s) log2 e − L log2 e): one multiply-add and one ex2
    // per pair, as the forward's weights.
    Value s = product(zero);
    if (op.hasScoreMod()) {
      s = arith::MulFOp::create(b, s, splatF32(shape, scale));
      Value qIdx = perQuery(range(t.m0, bm));
      Value kIdx = perKey(range(t.n0, bn));
      args = {s, splatOf(shape, toI32(batch)), splatOf(shape, toI32(t.head)), qIdx, kIdx};
      slope = *inlineModifierElementwise(b, *scoreDerivative, args, shape, buffers);
      s = *inlineModifierElementwise(b, op.getScoreMod(), args, shape, buffers);
    } else {
      log2e *= scale;
    }
    Value base = arith::MulFOp::create(b, loadLse(), splatF32({bm}, float(kLog2E)));
    exponent = arith::SubFOp::create(
        b, arith::MulFOp::create(b, s, splatF32(shape, log2e), contract), perQuery(base),
        contract);
  }
  Value p = math::Exp2Op::create(b, exponent);
  Value keep = masked ? keepTile(t, /*withUserMasks=*/true) : Value();
  if (keep)
    p = select(keep, p, zero);
  // P ∂f/∂s before the dP product, so the slope is not held across it.
  Value weight = p;
  if (slope) {
    weight = arith::MulFOp::create(b, p, slope);
    if (keep) // the slope of a masked pair may be inf or NaN
      weight = select(keep, weight, zero);
  }
  // dP − Δ: the product accumulates onto −Δ, so Δ is not held beside its result.
  Value delta = t.delta ? t.delta : loadF32(this->delta, {bm}, ValueRange{batch, t.head, t.m0});
  Value minusDelta = perQuery(arith::NegFOp::create(b, delta));
  Value dpMinusDelta = keyRows ? dot(t.v, trans(t.dO), minusDelta)
                               : dot(t.dO, trans(t.v), minusDelta);
  // dS' = P ∘ (dP − Δ) only where table gradients read it.
  Value dsPrime = tableReads.empty() ? Value() : arith::MulFOp::create(b, p, dpMinusDelta);
  Value ds = arith::MulFOp::create(b, weight, dpMinusDelta);
  return {p, dsPrime, ds, keep, args};
}

void GradProgram::accumulateTableGrads(const PairTiles &t, const PairGrads &g) {
  SmallVector<int64_t> shape = pairShape();
  ArrayRef<Value> args = g.modArgs; // a table is read by the score_mod: it has its args
  for (TableRead &read : tableReads) {
    Value share = arith::MulFOp::create(
        b, g.dsPrime, *inlineModifierElementwise(b, *read.slope, args, shape, buffers));
    // Pairs the masks drop, or past the ends, add nothing (their slope may be inf).
    Value keep = g.keep ? g.keep : keepTile(t, /*withUserMasks=*/false);
    SmallVector<Value> entries;
    for (auto &index : read.index)
      entries.push_back(inlineModifierElementwise(b, *index, args, shape, buffers).value());
    // Entries repeat across the tile (a relative-position bias reads each diagonal once
    // per row) and across programs: a scatter-add (in a fixed order on the CPU, atomic
    // on the GPU); an entry outside the table read 0 and has no gradient.
    tile::ScatterAddOp::create(b, share, read.grad, entries, keep);
  }
}

void GradProgram::addQueryGrad(const PairTiles &t, const PairGrads &g, Value dqSum) {
  Value ds = narrow(g.ds);
  // The share of head dims [c0, c0 + n) (K's columns `k`), added at its place.
  auto add = [&](Value k, int64_t c0, int64_t n) {
    Value part = keyRows ? dot(trans(k), ds, splatF32({n, bm}, 0.0f))
                         : dot(ds, k, splatF32({bm, n}, 0.0f));
    SmallVector<int64_t> shape = keyRows ? SmallVector<int64_t>{n, bm}
                                         : SmallVector<int64_t>{bm, n};
    int64_t queryAxis = keyRows ? 1 : 0;
    Value query = broadcast(range(t.m0, bm), 1 - queryAxis, n);
    Value column = broadcast(range(cIndex(c0), n), queryAxis, bm);
    // Queries past Nq fall outside the workspace and add nothing.
    SmallVector<Value> at{splatOf(shape, toI32(batch)), splatOf(shape, toI32(t.head)), query,
                          column};
    tile::ScatterAddOp::create(b, part, dqSum, at, Value());
  };
  if (t.kPieces.empty())
    return add(t.k, 0, d);
  for (auto [i, piece] : llvm::enumerate(t.kPieces))
    add(piece, 64 * int64_t(i), 64);
}

SmallVector<Value>
GradProgram::visitPair(const PairTiles &t, ValueRange acc,
                       function_ref<SmallVector<Value>(const PairGrads &, ValueRange)> body,
                       Value listedWhole) {
  if (listedWhole) {
    // Block lists beside the mask_mod are still evaluated on every listed tile.
    Value whole = op.getBlockIndices() ? arith::ConstantIntOp::create(b, b.getI1Type(), 0)
                                       : listedWhole;
    if (Value bounds = wholeTile(t.m0, t.n0, /*boundsOnly=*/true))
      whole = arith::AndIOp::create(b, whole, bounds);
    return ifElse(
        whole, [&] { return body(pairGrads(t, false), acc); },
        [&] { return body(pairGrads(t, true), acc); });
  }
  auto masked = [&]() -> SmallVector<Value> {
    if (!hasUserMasks())
      return body(pairGrads(t, true), acc);
    // Skip the products of a tile the user's masks leave empty.
    Value keep = keepTile(t, true);
    Value ones = arith::ExtUIOp::create(b, tileType(pairShape(), i32), keep);
    Value rows = reduce(tile::Combiner::max, ones, 1);
    Value any = tensor::ExtractOp::create(b, reduce(tile::Combiner::max, rows, 0), ValueRange{});
    return ifElse(
        cmpI(P::sgt, any, arith::ConstantIntOp::create(b, i32, 0)),
        [&] { return body(pairGrads(t, true), acc); },
        [&] { return SmallVector<Value>(acc); });
  };
  Value whole = wholeTile(t.m0, t.n0);
  if (!whole) // nothing to mask
    return body(pairGrads(t, false), acc);
  return ifElse(whole, [&] { return body(pairGrads(t, false), acc); }, masked);
}

LogicalResult tessera::buildSoftmaxGradTileProgram(ImplicitLocOpBuilder &b,
                                                   attn::AttentionGradOp op,
                                                   const IRMapping &buffers,
                                                   tile::ConfigAttr config, GradTiling tiling) {
  GradProgram g(b, op, buffers);
  g.bm = config.getBlockM();
  g.bn = config.getBlockN();
  if (tiling.queryTile < 0)
    return op.emitError("grad_query_tile must be 0 (the compiler's rule) or positive, got ")
           << tiling.queryTile;
  // Query tiles narrower than a product's rows (16 x num_warps) take [key, query] tiles
  // where the target would not (mma.sync): K and V are then left operands, read from
  // shared memory per product (kLeftOperandsPerUseAttr), not held across the loop.
  int64_t rows = 16 * config.getNumWarps();
  bool keyMajor = tiling.keyMajor || (tiling.queryTile && tiling.queryTile < rows);
  if (!keyMajor && tiling.queryTile % rows)
    return op.emitError("grad_query_tile (")
           << tiling.queryTile << ") must be a multiple of 16 x num_warps = " << rows
           << " where the dK / dV grid's queries are product rows (key-major-grad off: "
              "mma.sync)";
  if (op.getBlockIndices()) {
    int64_t bq = op.getBlockQAttr().getInt(), bk = op.getBlockKAttr().getInt();
    if ((bq != 1 && bq % g.bm) || bk % g.bn)
      return op.emitError("block_q (")
             << bq << ") must be 1 or a multiple of the config's block_m (" << g.bm
             << ") and block_k (" << bk << ") a multiple of its block_n (" << g.bn << ")";
  }
  Region derivative;
  if (op.hasScoreMod()) {
    if (failed(differentiateScoreMod(op.getScoreMod(), derivative)))
      return failure();
    g.scoreDerivative = &derivative;
  }
  // Table gradients: a derivative and the entries read, per read of each table.
  for (auto [table, grad] : llvm::zip(op.getGradTables(), op.getTableGrads())) {
    for (auto read : op.getScoreMod().front().getOps<tensor::ExtractOp>()) {
      if (read.getTensor() != table)
        continue;
      TableRead r;
      r.grad = g.buffer(grad);
      r.slope = std::make_unique<Region>();
      if (failed(differentiateScoreModByRead(op.getScoreMod(), *r.slope, read)))
        return failure();
      for (unsigned d = 0; d < read.getIndices().size(); ++d) {
        r.index.push_back(std::make_unique<Region>());
        readIndexRegion(op.getScoreMod(), *r.index.back(), read, d);
      }
      g.tableReads.push_back(std::move(r));
    }
  }
  Value q = g.buffer(op.getQuery()), k = g.buffer(op.getKey());
  g.d = cast<MemRefType>(q.getType()).getDimSize(3);
  g.dv = cast<MemRefType>(g.buffer(op.getValue()).getType()).getDimSize(3);
  int64_t bm = g.bm, bn = g.bn, d = g.d, dv = g.dv;
  // Queries per tile the dK / dV grid walks (see there).
  int64_t keyQueries = tiling.queryTile ? tiling.queryTile
                       : keyMajor && std::max(d, dv) > 64 && bm == 64 ? 32
                                                                     : bm;
  if (int64_t bq = op.getBlockIndices() ? op.getBlockQAttr().getInt() : 1;
      bq != 1 && bq % keyQueries)
    return op.emitError("block_q (")
           << bq << ") must be 1 or a multiple of grad_query_tile (" << keyQueries << ")";

  // On mma.sync targets (key-major-grad off) past head dim 64 the dQ grid walks 32-key
  // tiles: S, dP and dS a thread holds halve beside the dQ accumulator (64-key tiles
  // spilled 8-16 B at D = 128 on sm_80, 32-key tiles none). Block lists' block_k is a
  // multiple of block_n, so of 32 too.
  int64_t dqKeys = !tiling.keyMajor && std::max(d, dv) > 64 && bn == 64 ? 32 : bn;

  // Host side: sizes and Δ's buffer.
  Value nBatch = g.dim(q, 0), nHeads = g.dim(q, 1), nkvHeads = g.dim(k, 1);
  g.nq = g.dim(q, 2);
  g.nk = g.dim(k, 2);
  g.offset = arith::SubIOp::create(b, g.nk, g.nq);
  Value group = arith::DivSIOp::create(b, nHeads, nkvHeads);
  Value qTiles = g.ceilDiv(g.nq, bm), kTiles = g.ceilDiv(g.nk, bn);
  auto dyn = ShapedType::kDynamic;
  g.delta = memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn}, g.f32),
                                    ValueRange{nBatch, nHeads, g.nq});
  Value c0 = g.cIndex(0);
  // Table gradients start from 0: zero tiles of bm entries along a table's last
  // dimension, one program per tile and entry of the leading dimensions (x: tiles,
  // y: the dimension before the last, z: the others).
  for (Value grad : op.getTableGrads()) {
    Value buf = g.buffer(grad);
    int64_t rank = cast<MemRefType>(buf.getType()).getRank();
    SmallVector<Value> sizes{g.ceilDiv(g.dim(buf, rank - 1), bm)};
    if (rank > 1)
      sizes.push_back(g.dim(buf, rank - 2));
    if (rank > 2) {
      Value rest = g.dim(buf, 0);
      for (int64_t d = 1; d < rank - 2; ++d)
        rest = arith::MulIOp::create(b, rest, g.dim(buf, d));
      sizes.push_back(rest);
    }
    g.grid(sizes, config, [&](ArrayRef<Value> id) {
      SmallVector<Value> at(rank);
      at[rank - 1] = arith::MulIOp::create(b, id[0], g.cIndex(bm));
      if (rank > 1)
        at[rank - 2] = id[1];
      Value rest = rank > 2 ? id[2] : Value();
      for (int64_t d = rank - 3; d >= 0; --d) {
        Value size = g.dim(buf, d);
        at[d] = d ? arith::RemSIOp::create(b, rest, size).getResult() : rest;
        rest = arith::DivSIOp::create(b, rest, size);
      }
      tile::StoreOp::create(b, g.splatF32({bm}, 0.0f), buf, at);
    });
  }

  // dQ summed in f32 by the dK / dV grid: [B, H, Nq, D], zeroed by Δ's grid.
  Value dqSum;
  if (tiling.dqAtomic)
    dqSum = memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn, d}, g.f32),
                                    ValueRange{nBatch, nHeads, g.nq});

  // 1. Δ = rowsum(dO ∘ O).
  g.grid({qTiles, nHeads, nBatch}, config, [&](ArrayRef<Value> id) {
    Value m0 = arith::MulIOp::create(b, id[0], g.cIndex(bm));
    SmallVector<Value> at{id[2], id[1], m0, c0};
    Value o = g.load(op.getOutput(), {bm, dv}, at);
    Value dO = g.load(op.getGradOutput(), {bm, dv}, at);
    Value delta = g.reduce(tile::Combiner::sum, arith::MulFOp::create(b, o, dO), 1);
    tile::StoreOp::create(b, delta, g.delta, ValueRange{id[2], id[1], m0});
    if (dqSum)
      tile::StoreOp::create(b, g.splatF32({bm, d}, 0.0f), dqSum, at);
  });

  // The operand tiles of the pair (m0, n0) for query head `head`; K and V come from the
  // caller (grid 2 keeps its own, grid 3 loads them per key tile).
  auto queryTiles = [&](PairTiles &t, bool vectors) {
    SmallVector<Value> at{g.batch, t.head, t.m0, c0};
    t.q = g.operand(op.getQuery(), {g.bm, d}, at);
    t.dO = g.operand(op.getGradOutput(), {g.bm, dv}, at);
    g.operandType = t.q.getType();
    if (!vectors)
      return;
    t.lse = g.load(op.getLse(), {g.bm}, ValueRange{g.batch, t.head, t.m0});
    t.delta = g.loadF32(g.delta, {g.bm}, ValueRange{g.batch, t.head, t.m0});
  };
  auto keyTiles = [&](PairTiles &t, Value kvHead) {
    SmallVector<Value> at{g.batch, kvHead, t.n0, c0};
    t.k = g.operand(op.getKey(), {g.bn, d}, at);
    t.v = g.operand(op.getValue(), {g.bn, dv}, at);
    g.operandType = t.k.getType();
    // dQᵀ = Kᵀ dSᵀ past D = 64: products of 64 rows (wgmma's, beside the dK / dV grid's
    // 64-key ones), each reading its piece of K from a tile of its own.
    if (g.dqAtomic && g.keyRows && d > 64 && d % 64 == 0)
      for (int64_t c = 0; c < d; c += 64)
        t.kPieces.push_back(
            g.operand(op.getKey(), {g.bn, 64}, ValueRange{g.batch, kvHead, t.n0, g.cIndex(c)}));
  };
  auto scaled = [&](Value acc, ArrayRef<int64_t> shape) {
    return arith::MulFOp::create(b, acc, g.splatF32(shape, float(op.getEffectiveScale())))
        .getResult();
  };

  // A mask_mod is classified once per tile pair, into lists for both grids below: per
  // key tile the query tiles that see any of it, per query tile its key tiles.
  std::optional<GradTileClasses> classes;
  GradTileList queryLists, keyLists;
  auto boundsKeep = [&](Value m0, Value n0, int64_t rows, int64_t keys) {
    auto saved = std::make_tuple(g.bm, g.bn, g.keyRows);
    std::tie(g.bm, g.bn, g.keyRows) = std::make_tuple(rows, keys, false);
    PairTiles tile;
    tile.m0 = m0;
    tile.n0 = n0;
    Value keep = g.keepTile(tile, /*withUserMasks=*/false);
    std::tie(g.bm, g.bn, g.keyRows) = saved;
    return keep;
  };
  auto keyRange = [&](Value m0, int64_t rows, int64_t keys) {
    return g.keyTileRange(m0, rows, keys);
  };
  auto queryRange = [&](Value n0, int64_t rows, int64_t keys) {
    return g.queryTileRange(n0, rows, keys);
  };
  if (op.hasMaskMod()) {
    if (bm * bn >= (1 << 15))
      return op.emitError("a mask_mod's backward classifies block_m x block_n tiles of at "
                          "most 2^15 - 1 pairs, got ")
             << bm << " x " << bn;
    GradClassification classify{g,  op,     buffers, config,    nBatch,    nHeads,
                                g.nq, g.nk, boundsKeep, keyRange, queryRange};
    classes = classify.classify(std::gcd(bm, keyQueries),
                                tiling.dqAtomic ? bn : std::gcd(bn, dqKeys));
    queryLists = classify.listQueryTiles(*classes, keyQueries, bn);
    if (!tiling.dqAtomic) // only the dQ grid walks them
      keyLists = classify.listKeyTiles(*classes, bm, dqKeys);
  }

  // 2. dK, dV per key tile, over the query tiles that see any of its keys.
  g.keyRows = keyMajor;
  g.dqAtomic = tiling.dqAtomic;
  // Queries per walked tile: the grad-query-tile option, else past head dim 64 the
  // [key, query] tiles walk 32 queries at a time (wgmma N = K = 32): Sᵀ, dPᵀ, Pᵀ and the
  // per-query lse / Δ a thread holds halve beside the dK / dV accumulators, which a
  // 64-query walk spills at D = 128. Tiles under 64 queries ask narrow products; the
  // grid's config names its product rows (keys) block_m and its query tiles block_n.
  g.bm = keyQueries;
  bool narrowQueries = keyMajor && g.bm < 64;
  auto configOf = [&](int64_t rows, int64_t cols) {
    return tile::ConfigAttr::get(b.getContext(), rows, cols, config.getNumWarps(),
                                 config.getNumStages(), config.getSplit());
  };
  tile::ConfigAttr keyConfig = g.bm == bm ? config
                               : keyMajor ? configOf(bn, g.bm)
                                          : configOf(g.bm, bn);
  g.grid({kTiles, nkvHeads, nBatch}, keyConfig, [&](ArrayRef<Value> id) {
    Operation *grid = b.getInsertionBlock()->getParentOp();
    if (narrowQueries)
      grid->setAttr(kNarrowProductsAttr, b.getUnitAttr());
    grid->setAttr(kLeftOperandsPerUseAttr, b.getUnitAttr());
    g.batch = id[2];
    Value kvHead = id[1];
    PairTiles t;
    t.n0 = arith::MulIOp::create(b, id[0], g.cIndex(bn));
    keyTiles(t, kvHead);
    auto [lo, hi] = g.queryTileRange(t.n0, g.bm, bn);
    SmallVector<Value> init{g.splatF32({bn, d}, 0.0f), g.splatF32({bn, dv}, 0.0f)};
    // Query tile `qt` (listed whole or not: `listedWhole`, null unlisted) onto `a`.
    auto visitQueryTile = [&](Value qt, Value listedWhole, ValueRange a) {
      t.m0 = arith::MulIOp::create(b, qt, g.cIndex(g.bm));
      queryTiles(t, /*vectors=*/false);
      return g.visitPair(
          t, a,
          [&](const PairGrads &pg, ValueRange cur) {
            // Pᵀ and dSᵀ: as computed in [key, query] tiles, else transposed.
            auto keyRowsOf = [&](Value x) { return g.keyRows ? x : g.trans(x); };
            Value dk = g.dot(keyRowsOf(g.narrow(pg.ds)), t.q, cur[0]);
            Value dvNew = g.dot(keyRowsOf(g.narrow(pg.p)), t.dO, cur[1]);
            if (dqSum) {
              g.addQueryGrad(t, pg, dqSum);
              g.accumulateTableGrads(t, pg);
            }
            return SmallVector<Value>{dk, dvNew};
          },
          listedWhole);
    };
    ValueRange acc = g.forLoop(c0, group, init, [&](Value member, ValueRange perHead) {
      t.head = arith::AddIOp::create(b, arith::MulIOp::create(b, kvHead, group), member);
      if (classes) // the transposed lists: the query tiles that keep any of this key tile
        return walkGradTileList(g, *classes, queryLists, g.batch, t.head, id[0], perHead,
                                visitQueryTile);
      return SmallVector<Value>(g.forLoop(lo, hi, perHead, [&](Value qt, ValueRange a) {
        return visitQueryTile(qt, Value(), a);
      }));
    });
    SmallVector<Value> at{g.batch, kvHead, t.n0, c0};
    g.storeAs(scaled(acc[0], {bn, d}), g.buffer(op.getGradKey()), at);
    g.storeAs(acc[1], g.buffer(op.getGradValue()), at);
  });

  g.keyRows = false;
  g.dqAtomic = false;
  g.bm = bm;
  if (dqSum) {
    // 3'. dQ = τ dQsum in dQ's type.
    g.grid({qTiles, nHeads, nBatch}, config, [&](ArrayRef<Value> id) {
      Value m0 = arith::MulIOp::create(b, id[0], g.cIndex(bm));
      SmallVector<Value> at{id[2], id[1], m0, c0};
      g.storeAs(scaled(g.loadF32(dqSum, {bm, d}, at), {bm, d}), g.buffer(op.getGradQuery()),
                at);
    });
    return success();
  }
  g.bn = dqKeys;
  // 3. dQ per query tile, over the key tiles its rows see (the forward's ranges).
  tile::ConfigAttr dqConfig = dqKeys == bn ? config : configOf(bm, dqKeys);
  g.grid({qTiles, nHeads, nBatch}, dqConfig, [&](ArrayRef<Value> id) {
    Operation *grid = b.getInsertionBlock()->getParentOp();
    grid->setAttr(kLeftOperandsPerUseAttr, b.getUnitAttr());
    if (dqKeys < 64)
      grid->setAttr(kNarrowProductsAttr, b.getUnitAttr());
    g.batch = id[2];
    PairTiles t;
    t.head = id[1];
    t.m0 = arith::MulIOp::create(b, id[0], g.cIndex(bm));
    queryTiles(t, /*vectors=*/true);
    Value kvHead = arith::DivSIOp::create(b, t.head, group);
    auto [lo, hi] = g.keyTileRange(t.m0, bm, dqKeys);
    // Key tile `kt` (listed whole or not: `listedWhole`, null unlisted) onto `a`.
    auto visitKeyTile = [&](Value kt, Value listedWhole, ValueRange a) {
      t.n0 = arith::MulIOp::create(b, kt, g.cIndex(dqKeys));
      keyTiles(t, kvHead);
      return g.visitPair(
          t, a,
          [&](const PairGrads &pg, ValueRange cur) {
            g.accumulateTableGrads(t, pg);
            return SmallVector<Value>{g.dot(g.narrow(pg.ds), t.k, cur[0])};
          },
          listedWhole);
    };
    SmallVector<Value> init{g.splatF32({bm, d}, 0.0f)};
    Value dq = classes
                   ? walkGradTileList(g, *classes, keyLists, g.batch, t.head, id[0], init,
                                      visitKeyTile)[0]
                   : g.forLoop(lo, hi, init, [&](Value kt, ValueRange a) {
                       return visitKeyTile(kt, Value(), a);
                     })[0];
    g.storeAs(scaled(dq, {bm, d}), g.buffer(op.getGradQuery()),
              ValueRange{g.batch, t.head, t.m0, c0});
  });
  return success();
}
