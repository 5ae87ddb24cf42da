//===- SoftmaxTileProgram.cpp - online-softmax tile program ---------------===//
//
// One program per (query tile, head, batch). The key-tile loop is split by tile class:
// tiles wholly outside causal / window bounds are never visited, tiles wholly inside
// run without any mask arithmetic, and only the boundary tiles (the window's first,
// the diagonal, the ragged end) evaluate the mask. A `mask_mod` or block list makes
// every visited tile a boundary tile, since nothing is known about it statically.
//
//===----------------------------------------------------------------------===//
#include "passes/TilePrograms.h"

#include "passes/ModifierBounds.h"
#include "passes/ModifierInlining.h"
#include "passes/TileBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <functional>
#include <limits>

static constexpr double kLog2E = 1.4426950408889634;
static constexpr double kLn2 = 0.6931471805599453;
static constexpr float kMaxLag = 8.0f;
static constexpr int32_t kNoBlock = std::numeric_limits<int32_t>::max();

using namespace mlir;
using namespace tessera;

namespace {
/// Scalars and tiles the loop body needs, computed once per program.
struct Program : TileBuilder {
  attn::AttentionOp op;
  const IRMapping &buffers;
  int64_t bm = 0, bn = 0, d = 0, dv = 0;
  Type elemType;                           // of q/k/v/o
  Value batch, head, kvHead, m0, qTileIdx; // program coordinates (index)
  Value nk;                                // key length (index)
  Value offset;                            // Nk - Nq as i32 (bottom-right causal alignment)
  Value qTile;                             // BM x D, elemType
  Value rows;                              // BM, i32: query indices of this tile
  Value rowKeep; // BM, i1, or null: rows that listed the key block being visited

  Program(ImplicitLocOpBuilder &b, attn::AttentionOp op, const IRMapping &buffers)
      : TileBuilder(b), op(op), buffers(buffers) {}
  Value rowBroadcast(Value v, int64_t n) { return broadcast(v, 1, n); } // BM -> BM x n

  /// The key and value tiles starting at key index `n0`.
  std::pair<Value, Value> loadKeyValue(Value n0);
  /// The key tile (k, v) starting at key index `n0` applied to the carried (max, sum, acc).
  SmallVector<Value> step(Value n0, Value k, Value v, ValueRange state, bool masked);
  /// The i1 tile of (query, key) pairs the mask keeps, bounds included.
  Value keepTile(Value qIdx, Value kIdx);
  Value maskTile(Value scores, Value qIdx, Value kIdx);
  /// Index tiles (query, key) of the BM x BN block whose keys start at `n0`.
  std::pair<Value, Value> indexTiles(Value n0);
};
} // namespace

std::pair<Value, Value> Program::indexTiles(Value n0) {
  Value qIdx = rowBroadcast(rows, bn);
  Value cols = tile::RangeOp::create(b, tileType({bn}, i32), n0);
  Value kIdx = tile::BroadcastOp::create(b, tileType({bm, bn}, i32), cols, 0);
  return {qIdx, kIdx};
}

Value Program::keepTile(Value qIdx, Value kIdx) {
  SmallVector<int64_t> shape{bm, bn};
  // Keys past the end are padding: always masked.
  Value keep = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kIdx,
                                     splatOf(shape, toI32(nk)));
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

Value Program::maskTile(Value scores, Value qIdx, Value kIdx) {
  Value negInf = splatF32({bm, bn}, -std::numeric_limits<float>::infinity());
  return arith::SelectOp::create(b, keepTile(qIdx, kIdx), scores, negInf);
}

std::pair<Value, Value> Program::loadKeyValue(Value n0) {
  Value k = tile::LoadOp::create(b, tileType({bn, d}, elemType), buffers.lookup(op.getKey()),
                                 ValueRange{batch, kvHead, n0, cIndex(0)}, nullptr);
  Value v = tile::LoadOp::create(b, tileType({bn, dv}, elemType),
                                 buffers.lookup(op.getValue()),
                                 ValueRange{batch, kvHead, n0, cIndex(0)}, nullptr);
  return {k, v};
}

SmallVector<Value> Program::step(Value n0, Value k, Value v, ValueRange state, bool masked) {
  Value m = state[0], l = state[1], acc = state[2];
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
  if (masked)
    s = maskTile(s, qIdx, kIdx);

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

LogicalResult tessera::buildSoftmaxTileProgram(ImplicitLocOpBuilder &b, attn::AttentionOp op,
                                               const IRMapping &buffers,
                                               tile::ConfigAttr config) {
  if (op.getBlockIndices()) {
    int64_t bq = op.getBlockQAttr().getInt(), bk = op.getBlockKAttr().getInt();
    if ((bq != 1 && bq % config.getBlockM()) || bk % config.getBlockN())
      return op.emitError("block_q (")
             << bq << ") must be 1 or a multiple of the config's block_m ("
             << config.getBlockM() << ") and block_k (" << bk
             << ") a multiple of its block_n (" << config.getBlockN()
             << "); tiles are powers of two, so blocks of other sizes (e.g. 50 tokens) are "
                "written as a mask_mod reading a block table, keep[h, q_idx // 50, kv_idx // 50]";
  }
  if (op.hasMaskMod() && !op.getBlockIndices() &&
      config.getBlockM() * config.getBlockN() > (1 << 14))
    return op.emitError("mask_mod tile classification counts at most 2^14 pairs per tile; "
                        "block_m x block_n is ")
           << config.getBlockM() * config.getBlockN();
  Value q = buffers.lookup(op.getQuery()), k = buffers.lookup(op.getKey());
  auto qType = cast<MemRefType>(q.getType());
  auto vType = cast<MemRefType>(buffers.lookup(op.getValue()).getType());
  Program p(b, op, buffers);
  p.bm = config.getBlockM();
  p.bn = config.getBlockN();
  p.d = qType.getDimSize(3);
  p.dv = vType.getDimSize(3);
  p.elemType = qType.getElementType();

  // Host side: sizes.
  Value nBatch = memref::DimOp::create(b, q, 0);
  Value nHeads = memref::DimOp::create(b, q, 1);
  Value nq = memref::DimOp::create(b, q, 2);
  Value nkvHeads = memref::DimOp::create(b, k, 1);
  Value nk = memref::DimOp::create(b, k, 2);
  Value bmIdx = p.cIndex(p.bm), bnIdx = p.cIndex(p.bn);
  Value qTiles = arith::CeilDivSIOp::create(b, nq, bmIdx);
  Value group = arith::DivSIOp::create(b, nHeads, nkvHeads);
  Value offsetIdx = arith::SubIOp::create(b, nk, nq);
  p.nk = nk;

  // One program per (query tile, head, batch). Fills in p's coordinates and returns the
  // key tiles it visits, [lo, hi), and the subrange [fullLo, fullHi) that causal / window
  // bounds alone keep whole.
  struct KeyTiles {
    Value lo, hi, fullLo, fullHi;
  };
  auto beginProgram = [&](Value gridHeads, Value gridBatch) -> KeyTiles {
    auto grid = tile::GridOp::create(b, ValueRange{qTiles, gridHeads, gridBatch}, config);
    b.setInsertionPointToStart(&grid.getBody().emplaceBlock());
    Value qTileIdx = tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(0));
    // Under causal / window bounds later query tiles see more keys: launch them first
    // (blocks start in index order) so the grid does not end on its longest programs.
    if (op.getCausal() || op.getWindowAttr())
      qTileIdx = arith::SubIOp::create(
          b, arith::SubIOp::create(b, qTiles, p.cIndex(1)), qTileIdx);
    p.head = tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(1));
    p.batch = tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(2));
    p.qTileIdx = qTileIdx;
    p.kvHead = arith::DivSIOp::create(b, p.head, group);
    p.m0 = arith::MulIOp::create(b, qTileIdx, bmIdx);
    p.offset = p.toI32(offsetIdx);
    p.rows = tile::RangeOp::create(b, p.tileType({p.bm}, p.i32), p.m0);

    Value zero = p.cIndex(0);
    Value diagFirstRow = arith::AddIOp::create(b, p.m0, offsetIdx); // last key row m0 sees
    Value keyEnd = nk, fullEnd = nk;                                // exclusive
    if (op.getCausal()) {
      Value lastRowDiag = arith::AddIOp::create(b, diagFirstRow, p.cIndex(p.bm - 1));
      keyEnd = arith::MinSIOp::create(
          b, nk,
          arith::MaxSIOp::create(b, zero, arith::AddIOp::create(b, lastRowDiag, p.cIndex(1))));
      fullEnd =
          arith::MinSIOp::create(b, nk, arith::AddIOp::create(b, diagFirstRow, p.cIndex(1)));
    } else if (auto w = op.getWindowAttr()) {
      // A window without causality: row i keeps keys < i + offset + w too.
      Value lastRowDiag = arith::AddIOp::create(b, diagFirstRow, p.cIndex(p.bm - 1));
      keyEnd = arith::MinSIOp::create(
          b, nk,
          arith::MaxSIOp::create(b, zero,
                                 arith::AddIOp::create(b, lastRowDiag, p.cIndex(w.getInt()))));
      fullEnd = arith::MinSIOp::create(
          b, nk,
          arith::MaxSIOp::create(b, zero,
                                 arith::AddIOp::create(b, diagFirstRow, p.cIndex(w.getInt()))));
    }
    Value keyBegin = zero, fullBegin = zero;
    if (auto w = op.getWindowAttr()) {
      // Row i keeps keys > i + offset - w.
      Value firstKept = arith::AddIOp::create(b, diagFirstRow, p.cIndex(1 - w.getInt()));
      keyBegin = arith::MaxSIOp::create(b, zero, firstKept);
      Value lastRowFirst = arith::AddIOp::create(b, firstKept, p.cIndex(p.bm - 1));
      fullBegin = arith::MaxSIOp::create(b, zero, lastRowFirst);
    }
    KeyTiles t;
    t.lo = arith::FloorDivSIOp::create(b, keyBegin, bnIdx);
    t.hi = arith::MaxSIOp::create(b, t.lo, arith::CeilDivSIOp::create(b, keyEnd, bnIdx));
    t.fullLo = arith::MinSIOp::create(
        b, t.hi,
        arith::MaxSIOp::create(b, t.lo, arith::CeilDivSIOp::create(b, fullBegin, bnIdx)));
    t.fullHi = arith::MaxSIOp::create(
        b, t.fullLo,
        arith::MinSIOp::create(b, t.hi, arith::FloorDivSIOp::create(b, fullEnd, bnIdx)));
    return t;
  };

  OpBuilder::InsertionGuard guard(b);
  // Block classification, as FlexAttention's BlockMask: a first grid evaluates mask_mod
  // on every tile the bounds leave and lists, per query tile, the tiles it keeps
  // anything of (entry 2 t + 1 when it keeps all, 2 t when only part), one program per
  // chunk of 32 key tiles (its list from the chunk's first place, and its count); a
  // second grid joins each query tile's chunks into one list and its count; the
  // attention grid walks that list only, evaluating mask_mod on partial tiles alone.
  // A mask_mod that reads neither batch nor head is classified once for all of them.
  Value tileLists, tileCounts;
  bool maskPerBatch = false, maskPerHead = false;
  if (op.hasMaskMod() && !op.getBlockIndices()) {
    Block &mask = op.getMaskMod().front();
    maskPerBatch = !mask.getArgument(0).use_empty();
    maskPerHead = !mask.getArgument(1).use_empty();
    Value c1 = p.cIndex(1);
    Value listBatches = maskPerBatch ? nBatch : c1, listHeads = maskPerHead ? nHeads : c1;
    constexpr int64_t kChunkTiles = 32;
    Value chunkSize = p.cIndex(kChunkTiles);
    Value kTiles = arith::CeilDivSIOp::create(b, nk, bnIdx);
    Value kChunks = arith::CeilDivSIOp::create(b, kTiles, chunkSize);
    auto dyn = ShapedType::kDynamic;
    auto lists = [&](SmallVector<Value> sizes) {
      SmallVector<int64_t> shape(sizes.size(), dyn);
      return memref::AllocOp::create(b, MemRefType::get(shape, p.i32), sizes).getResult();
    };
    // A chunk's list fits between its first place and the row's end; the joining grid
    // moves whole chunks of places, those past the end read as 0 and are not written.
    tileLists = lists({listBatches, listHeads, qTiles, kTiles});
    tileCounts = lists({listBatches, listHeads, qTiles});
    Value chunkCounts = lists({listBatches, listHeads, qTiles, kChunks});
    OpBuilder::InsertionGuard classify(b);
    // Programs over (query tile, head x chunk, batch).
    KeyTiles tiles = beginProgram(arith::MulIOp::create(b, listHeads, kChunks), listBatches);
    Value chunk = arith::RemSIOp::create(b, p.head, kChunks);
    p.head = arith::DivSIOp::create(b, p.head, kChunks);
    Value chunkFirst = arith::MulIOp::create(b, chunk, chunkSize);
    Value chunkLo = arith::MaxSIOp::create(b, tiles.lo, chunkFirst);
    Value chunkHi = arith::MaxSIOp::create(
        b, chunkLo,
        arith::MinSIOp::create(b, tiles.hi, arith::AddIOp::create(b, chunkFirst, chunkSize)));
    auto i32c = [&](int64_t v) { return arith::ConstantIntOp::create(b, p.i32, v); };
    auto lastOf = [&](Value first, int64_t size, Value end) { // inclusive, clipped
      return p.toI32(arith::SubIOp::create(
          b, arith::MinSIOp::create(b, arith::AddIOp::create(b, first, p.cIndex(size)), end),
          p.cIndex(1)));
    };
    Value lastRow = lastOf(p.m0, p.bm, nq);
    Value count = p.forLoop(chunkLo, chunkHi, ValueRange{i32c(0)}, [&](Value t,
                                                                        ValueRange acc) {
      Value n0 = arith::MulIOp::create(b, t, bnIdx);
      // Written at the next free place whatever the class: an empty tile's entry is
      // overwritten by the next kept one (or lies past the count).
      auto record = [&](Value isFull, Value any) {
        Value entry = arith::AddIOp::create(b, arith::MulIOp::create(b, p.toI32(t), i32c(2)),
                                            arith::ExtUIOp::create(b, p.i32, isFull));
        Value place = arith::AddIOp::create(
            b, chunkFirst, arith::IndexCastOp::create(b, b.getIndexType(), acc[0]));
        memref::StoreOp::create(b, entry, tileLists,
                                ValueRange{p.batch, p.head, p.qTileIdx, place});
        return SmallVector<Value>{
            arith::AddIOp::create(b, acc[0], arith::ExtUIOp::create(b, p.i32, any))};
      };
      // The mask's verdict on the whole tile (rows and keys past the ends left out) by
      // interval arithmetic; element-wise only when that decides nothing.
      BoxVerdict verdict = boundMaskOverBox(
          b, op.getMaskMod(),
          {{p.toI32(p.batch), p.toI32(p.batch)}, {p.toI32(p.head), p.toI32(p.head)},
           {p.toI32(p.m0), lastRow}, {p.toI32(n0), lastOf(n0, p.bn, nk)}});
      Value wholeByBounds = arith::AndIOp::create(
          b, p.cmpI(arith::CmpIPredicate::sge, t, tiles.fullLo),
          p.cmpI(arith::CmpIPredicate::slt, t, tiles.fullHi));
      Value keepsAll = arith::AndIOp::create(b, verdict.keepsAll, wholeByBounds);
      auto elementwise = [&]() -> SmallVector<Value> {
        auto [qIdx, kIdx] = p.indexTiles(n0);
        SmallVector<int64_t> shape{p.bm, p.bn};
        Value keep = p.keepTile(qIdx, kIdx);
        // Rows past the end of the queries do not count either way.
        Value rowValid =
            p.cmpI(arith::CmpIPredicate::slt, qIdx, p.splatOf(shape, p.toI32(nq)));
        // Two counts in one sum (one block-wide reduction): kept pairs in the low 16 bits,
        // kept-or-ignored ones above (a tile has at most 2^14 pairs, checked above).
        auto ints = [&](Value bits) {
          return arith::ExtUIOp::create(b, p.tileType(shape, p.i32), bits).getResult();
        };
        Value packed = arith::AddIOp::create(
            b, ints(arith::AndIOp::create(b, keep, rowValid)),
            arith::ShLIOp::create(
                b, ints(arith::OrIOp::create(b, keep, p.logicalNot(rowValid))),
                p.splatI32(shape, 16)));
        Value total = tensor::ExtractOp::create(
            b, p.reduce(tile::Combiner::sum, p.reduce(tile::Combiner::sum, packed, 1), 0),
            ValueRange{});
        Value kept = arith::AndIOp::create(b, total, i32c(0xFFFF));
        Value isFull = p.cmpI(arith::CmpIPredicate::eq,
                              arith::ShRUIOp::create(b, total, i32c(16)), i32c(p.bm * p.bn));
        return record(isFull, p.cmpI(arith::CmpIPredicate::sgt, kept, i32c(0)));
      };
      Value yes = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
      return p.ifElse(
          verdict.keepsNone, [&]() -> SmallVector<Value> { return {acc[0]}; },
          [&]() { return p.ifElse(keepsAll, [&] { return record(yes, yes); }, elementwise); });
    })[0];
    memref::StoreOp::create(b, count, chunkCounts,
                            ValueRange{p.batch, p.head, p.qTileIdx, chunk});
    // Each chunk's list moved up behind the ones before it: a chunk's list starts no
    // earlier than where it is written, so no list is overwritten before it is read.
    b.setInsertionPointAfter(b.getBlock()->getParentOp());
    tiles = beginProgram(listHeads, listBatches);
    Value firstChunk = arith::FloorDivSIOp::create(b, tiles.lo, chunkSize);
    Value endChunk = arith::MaxSIOp::create(
        b, firstChunk, arith::CeilDivSIOp::create(b, tiles.hi, chunkSize));
    Value total = p.forLoop(firstChunk, endChunk, ValueRange{i32c(0)}, [&](Value c,
                                                                           ValueRange acc) {
      Value listed = tile::LoadOp::create(
          b, p.tileType({kChunkTiles}, p.i32), tileLists,
          ValueRange{p.batch, p.head, p.qTileIdx, arith::MulIOp::create(b, c, chunkSize)},
          nullptr);
      tile::StoreOp::create(b, listed, tileLists,
                            ValueRange{p.batch, p.head, p.qTileIdx,
                                       arith::IndexCastOp::create(b, b.getIndexType(), acc[0])});
      Value n = memref::LoadOp::create(b, chunkCounts, ValueRange{p.batch, p.head, p.qTileIdx, c});
      return SmallVector<Value>{arith::AddIOp::create(b, acc[0], n)};
    })[0];
    memref::StoreOp::create(b, total, tileCounts, ValueRange{p.batch, p.head, p.qTileIdx});
  }

  KeyTiles tiles = beginProgram(nHeads, nBatch);
  p.qTile = tile::LoadOp::create(b, p.tileType({p.bm, p.d}, p.elemType), q,
                                 ValueRange{p.batch, p.head, p.m0, p.cIndex(0)}, nullptr);
  SmallVector<Value> state{
      p.splatF32({p.bm}, -std::numeric_limits<float>::infinity()),
      p.splatF32({p.bm}, 0.0f), p.splatF32({p.bm, p.dv}, 0.0f)};
  auto loop = [&](Value from, Value to, std::function<SmallVector<Value>(Value, ValueRange)> body) {
    auto forOp = scf::ForOp::create(
        b, from, to, p.cIndex(1), state,
        [&](OpBuilder &nested, Location loc, Value t, ValueRange carried) {
          OpBuilder::InsertionGuard g(b);
          b.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
          scf::YieldOp::create(b, body(t, carried));
        });
    state.assign(forOp.getResults().begin(), forOp.getResults().end());
  };
  auto stepAt = [&](bool masked) {
    return [&, masked](Value t, ValueRange carried) {
      Value n0 = arith::MulIOp::create(b, t, bnIdx);
      auto [k, v] = p.loadKeyValue(n0);
      return p.step(n0, k, v, carried, masked);
    };
  };
  // Key tiles chosen from a list, one per j in [0, total): `choose(j, entry)` gives the
  // tile's first key (from `entry = fetch(j)`, read from the list at a clamped place, so
  // any j is safe), whether to apply it (null: always) and whether the bounds keep it
  // whole. The tile's loads come first, so a GPU prefetches them; with one stage nothing
  // loads ahead, so the entry of tile j + 1 is read during tile j (carried) and its
  // latency leaves the path to the copies. The loop sits under total > 0: a GPU issues
  // the first iteration's loads before its loop, and an empty list has no place to read.
  struct ChosenTile {
    Value n0, visit, whole;
  };
  bool fetchAhead = config.getNumStages() < 2;
  auto walkTiles = [&](Value total, function_ref<Value(Value)> fetch,
                       function_ref<ChosenTile(Value, Value)> choose) {
    Value c0 = p.cIndex(0), c1 = p.cIndex(1);
    auto body = [&](Value j, ValueRange carried) -> SmallVector<Value> {
      Value entry = fetchAhead ? carried.front() : fetch(j);
      ValueRange tileState = fetchAhead ? carried.drop_front() : carried;
      SmallVector<Value> out;
      if (fetchAhead)
        out.push_back(fetch(arith::AddIOp::create(b, j, c1)));
      ChosenTile c = choose(j, entry);
      auto [k, v] = p.loadKeyValue(c.n0);
      auto apply = [&] {
        return p.ifElse(
            c.whole, [&] { return p.step(c.n0, k, v, tileState, false); },
            [&] { return p.step(c.n0, k, v, tileState, true); });
      };
      SmallVector<Value> next =
          c.visit ? p.ifElse(c.visit, apply, [&] { return SmallVector<Value>(tileState); })
                  : apply();
      llvm::append_range(out, next);
      return out;
    };
    SmallVector<Value> unchanged(state);
    state = p.ifElse(
        p.cmpI(arith::CmpIPredicate::sgt, total, c0),
        [&] {
          if (fetchAhead)
            state.insert(state.begin(), fetch(c0));
          loop(c0, total, body);
          if (fetchAhead)
            state.erase(state.begin());
          return state;
        },
        [&] { return unchanged; });
  };
  if (Value blockList = op.getBlockIndices() ? buffers.lookup(op.getBlockIndices()) : Value()) {
    // Only the listed key blocks are visited (O(N / block_k) per query block), each one's
    // key tiles clipped to the causal / window range and masked (bounds, masks, mask_mod).
    int64_t bq = op.getBlockQAttr().getInt(), bk = op.getBlockKAttr().getInt();
    Value c0 = p.cIndex(0), c1 = p.cIndex(1);
    Value listHeads = memref::DimOp::create(b, blockList, 1);
    Value sharedList = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, listHeads, c1);
    Value listHead = arith::SelectOp::create(b, sharedList, c0, p.head);
    Value qBlock = arith::DivSIOp::create(b, p.m0, p.cIndex(bq));
    Value tilesPerBlock = p.cIndex(bk / p.bn);
    Value entries = memref::DimOp::create(b, blockList, 3);
    // The key tiles of block `raw` (i32), clipped to the causal / window range.
    auto visitBlock = [&](Value raw, ValueRange carried) {
      Value first = arith::MulIOp::create(
          b, arith::IndexCastOp::create(b, b.getIndexType(), raw), tilesPerBlock);
      Value from = arith::MaxSIOp::create(b, first, tiles.lo);
      Value to = arith::MinSIOp::create(
          b, arith::AddIOp::create(b, first, tilesPerBlock), tiles.hi);
      return SmallVector<Value>(p.forLoop(from, to, carried, stepAt(true)));
    };
    if (bq == 1) {
      // Every row has its own list (per-token selection, MoBA / NSA): visit the union
      // of the tile's lists in increasing block order, each block masked to the rows
      // that listed it. The next block is the least listed one above the last visited.
      auto entryColumn = [&](Value e) { // [bm] i32, -1 past the last query
        Value col = tile::LoadOp::create(b, p.tileType({p.bm, 1}, p.i32), blockList,
                                         ValueRange{p.batch, listHead, p.m0, e},
                                         b.getI32IntegerAttr(-1));
        return p.reduce(tile::Combiner::sum, col, 1);
      };
      Value none = arith::ConstantIntOp::create(b, p.i32, kNoBlock);
      auto nextAbove = [&](Value last) {
        return p.forLoop(c0, entries, ValueRange{none}, [&](Value e, ValueRange acc) {
          Value col = entryColumn(e);
          Value above = p.cmpI(arith::CmpIPredicate::sgt, col, p.splatOf({p.bm}, last));
          Value least = p.reduce(tile::Combiner::min,
                                 p.select(above, col, p.splatI32({p.bm}, kNoBlock)), 0);
          Value scalar = tensor::ExtractOp::create(b, least, ValueRange{});
          return SmallVector<Value>{arith::MinSIOp::create(b, acc[0], scalar)};
        })[0];
      };
      SmallVector<Value> init{nextAbove(arith::ConstantIntOp::create(b, p.i32, -1))};
      init.append(state.begin(), state.end());
      auto loop = scf::WhileOp::create(
          b, TypeRange(ValueRange(init)), init,
          [&](OpBuilder &nb, Location, ValueRange args) {
            OpBuilder::InsertionGuard g(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            scf::ConditionOp::create(b, p.cmpI(arith::CmpIPredicate::ne, args[0], none),
                                     args);
          },
          [&](OpBuilder &nb, Location, ValueRange args) {
            OpBuilder::InsertionGuard g(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            Value block = args[0];
            Value member = p.forLoop(
                c0, entries, ValueRange{p.splatOf({p.bm}, arith::ConstantIntOp::create(
                                                             b, b.getI1Type(), 0))},
                [&](Value e, ValueRange acc) {
                  Value hit = p.cmpI(arith::CmpIPredicate::eq, entryColumn(e),
                                     p.splatOf({p.bm}, block));
                  return SmallVector<Value>{arith::OrIOp::create(b, acc[0], hit)};
                })[0];
            p.rowKeep = member;
            SmallVector<Value> next{nextAbove(block)};
            llvm::append_range(next, visitBlock(block, args.drop_front()));
            p.rowKeep = Value();
            scf::YieldOp::create(b, next);
          });
      state.assign(loop.getResults().begin() + 1, loop.getResults().end());
    } else {
      // Whole query blocks share a list: one flat loop over (entry, tile of its block),
      // so that the next tile's copies can start while this one computes. Its loads read
      // a clamped entry and an in-range tile, whatever it holds; a tile that is not to be
      // visited (-1, a repeat, outside causal / window bounds) is loaded but not applied.
      Value lastEntry = arith::SubIOp::create(b, entries, c1);
      auto entryAt = [&](Value e) {
        return memref::LoadOp::create(b, blockList, ValueRange{p.batch, listHead, qBlock, e})
            .getResult();
      };
      using P = arith::CmpIPredicate;
      auto cmp = [&](P pred, Value x, Value y) { return p.cmpI(pred, x, y); };
      auto both = [&](Value x, Value y) { return arith::AndIOp::create(b, x, y).getResult(); };
      Value falseBit = arith::ConstantIntOp::create(b, b.getI1Type(), 0);
      Value trueBit = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
      Value noBlock = arith::ConstantIntOp::create(b, p.i32, -1);
      // One pass over the list: whether its blocks ascend (-1 anywhere) — as top-k
      // selections and BlockMasks give them, then no repeats are possible and the
      // per-tile search for an earlier equal entry is skipped — and where its last listed
      // entry is, so trailing -1 padding costs no iterations.
      ValueRange scan = p.forLoop(
          c0, entries, ValueRange{noBlock, trueBit, c0}, [&](Value e, ValueRange acc) {
            Value x = entryAt(e);
            Value listed = cmp(P::sgt, x, noBlock);
            Value inOrder = arith::OrIOp::create(b, arith::XOrIOp::create(b, listed, trueBit),
                                                 cmp(P::sgt, x, acc[0]));
            return SmallVector<Value>{p.select(listed, x, acc[0]), both(acc[1], inOrder),
                                      p.select(listed, arith::AddIOp::create(b, e, c1), acc[2])};
          });
      Value ascending = scan[1];
      Value total = arith::MulIOp::create(b, scan[2], tilesPerBlock);
      auto entryIndex = [&](Value j) {
        return arith::MinSIOp::create(b, arith::DivSIOp::create(b, j, tilesPerBlock),
                                      lastEntry)
            .getResult();
      };
      auto fetch = [&](Value j) { return entryAt(entryIndex(j)); };
      walkTiles(total, fetch, [&](Value j, Value raw) {
        Value e = entryIndex(j);
        Value t = arith::AddIOp::create(
            b,
            arith::MulIOp::create(b, arith::IndexCastOp::create(b, b.getIndexType(), raw),
                                  tilesPerBlock),
            arith::RemSIOp::create(b, j, tilesPerBlock));
        Value inRange = both(cmp(P::sgt, raw, noBlock),
                             both(cmp(P::sge, t, tiles.lo), cmp(P::slt, t, tiles.hi)));
        // A block listed twice is still visited once: skip repeats of earlier entries.
        auto seenBefore = [&] {
          return SmallVector<Value>(
              p.forLoop(c0, e, ValueRange{falseBit}, [&](Value f, ValueRange acc) {
                return SmallVector<Value>{
                    arith::OrIOp::create(b, acc[0], cmp(P::eq, entryAt(f), raw))};
              }));
        };
        Value seen = p.ifElse(ascending, [&] { return SmallVector<Value>{falseBit}; },
                            seenBefore)[0];
        // Tiles that causal / window bounds keep whole need no mask, unless mask_mod.
        Value whole = op.hasMaskMod()
                          ? falseBit
                          : both(cmp(P::sge, t, tiles.fullLo), cmp(P::slt, t, tiles.fullHi));
        return ChosenTile{arith::MulIOp::create(b, p.select(inRange, t, tiles.lo), bnIdx),
                          both(inRange, arith::XOrIOp::create(b, seen, trueBit)), whole};
      });
    }
  } else if (!tileLists) {
    loop(tiles.lo, tiles.fullLo, stepAt(true));
    loop(tiles.fullLo, tiles.fullHi, stepAt(false));
    loop(tiles.fullHi, tiles.hi, stepAt(true));
  } else {
    // The classified tiles, as listed: entry 2 t + 1 for a whole tile, 2 t for a partial
    // one; the place after the last entry is unwritten, so the tile read is clamped too.
    Value c0 = p.cIndex(0), c1 = p.cIndex(1), c2 = p.cIndex(2);
    SmallVector<Value> at{maskPerBatch ? p.batch : c0, maskPerHead ? p.head : c0, p.qTileIdx};
    Value count = arith::IndexCastOp::create(
        b, b.getIndexType(), memref::LoadOp::create(b, tileCounts, at));
    Value lastEntry = arith::MaxSIOp::create(b, arith::SubIOp::create(b, count, c1), c0);
    Value lastTile = arith::MaxSIOp::create(
        b, arith::SubIOp::create(b, arith::CeilDivSIOp::create(b, nk, bnIdx), c1), c0);
    auto fetch = [&](Value j) {
      SmallVector<Value> idx(at);
      idx.push_back(arith::MinSIOp::create(b, j, lastEntry));
      return memref::LoadOp::create(b, tileLists, idx).getResult();
    };
    walkTiles(count, fetch, [&](Value j, Value listed) {
      Value entry = arith::IndexCastOp::create(b, b.getIndexType(), listed);
      Value t = arith::MinSIOp::create(
          b, arith::MaxSIOp::create(b, arith::DivSIOp::create(b, entry, c2), c0), lastTile);
      return ChosenTile{arith::MulIOp::create(b, t, bnIdx), Value(),
                        p.cmpI(arith::CmpIPredicate::eq, arith::RemSIOp::create(b, entry, c2),
                               c1)};
    });
  }

  // Epilogue: O = acc / l (0 for a row that saw no key), L from m and l.
  Value m = state[0], l = state[1], acc = state[2];
  Value isEmpty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, l,
                                        p.splatF32({p.bm}, 0.0f));
  Value lSafe = arith::SelectOp::create(b, isEmpty, p.splatF32({p.bm}, 1.0f), l);
  // One division per row, then a multiply per element: a GPU divides in ~8 instructions.
  Value inverse = arith::DivFOp::create(b, p.splatF32({p.bm}, 1.0f), lSafe);
  Value out = arith::MulFOp::create(b, acc, p.rowBroadcast(inverse, p.dv));
  if (p.elemType != p.f32)
    out = arith::TruncFOp::create(b, p.tileType({p.bm, p.dv}, p.elemType), out);
  // Back from base 2: L = (m + log2 l) ln 2.
  Value lse = arith::MulFOp::create(
      b, arith::AddFOp::create(b, m, math::Log2Op::create(b, l)),
      p.splatF32({p.bm}, float(kLn2)));
  tile::StoreOp::create(b, out, buffers.lookup(op.getOutput()),
                        ValueRange{p.batch, p.head, p.m0, p.cIndex(0)});
  tile::StoreOp::create(b, lse, buffers.lookup(op.getLse()),
                        ValueRange{p.batch, p.head, p.m0});
  return success();
}
