//===- SelectionTilePrograms.cpp - block compression and top-k selection --===//
//
// attn.compress pools each block of rows into one (one program per pooled row, the
// block read in tiles). attn.block_topk (MoBA, NSA) runs as two grids:
//  1. scores: per (batch, scoring head, tile of query blocks) the gate score of every
//     key block, streamed over tiles of block_n key blocks into an f32 scratch
//     [B, H or Hk, ceil(Nq / block_q), NB]; `softmax` scores take a first sweep for each
//     row's max and sum (online, as attention does); query blocks of several rows sum
//     their rows with a 0/1 aggregation product; `group_heads` sums the group's heads.
//  2. select: per (batch, head, tile of query blocks) a running top-k list [rows, k] is
//     merged with each scratch tile (k rounds of arg-max over list and tile), the
//     current block pinned with +inf; the chosen blocks are then sorted by k rounds of
//     arg-min. Candidates and ties follow attn.block_topk's definition.
//
//===----------------------------------------------------------------------===//
#include "passes/TilePrograms.h"

#include "passes/TileBuilder.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace tessera;

static constexpr float kInf = std::numeric_limits<float>::infinity();
static constexpr int32_t kNoBlock = std::numeric_limits<int32_t>::max();

LogicalResult tessera::buildCompressTileProgram(ImplicitLocOpBuilder &b,
                                                attn::CompressOp op,
                                                const IRMapping &buffers,
                                                tile::ConfigAttr config) {
  Value x = buffers.lookup(op.getInput()), out = buffers.lookup(op.getOutput());
  int64_t d = cast<MemRefType>(x.getType()).getDimSize(3);
  if (ShapedType::isDynamic(d))
    return op.emitError("needs a static head dim to be tiled");
  int64_t block = op.getBlock(), stride = op.getStride();
  // Rows are read in chunks that tile the block exactly: the largest power of two up
  // to block_m dividing it.
  int64_t chunk = 1;
  while (chunk * 2 <= config.getBlockM() && block % (chunk * 2) == 0)
    chunk *= 2;
  TileBuilder t(b);
  t.grid({t.dim(out, 2), t.dim(out, 1), t.dim(out, 0)}, config, [&](ArrayRef<Value> id) {
    Value i = id[0], h = id[1], bb = id[2], c0 = t.cIndex(0);
    Value start = arith::MulIOp::create(b, i, t.cIndex(stride));
    Value sum = t.forLoop(c0, t.cIndex(block / chunk), {t.splatF32({d}, 0)},
                          [&](Value c, ValueRange carried) -> SmallVector<Value> {
                            Value row = arith::AddIOp::create(
                                b, start, arith::MulIOp::create(b, c, t.cIndex(chunk)));
                            Value rows = t.loadF32(x, {chunk, d}, {bb, h, row, c0});
                            return {arith::AddFOp::create(
                                b, carried[0], t.reduce(tile::Combiner::sum, rows, 0))};
                          })[0];
    t.storeAs(arith::MulFOp::create(b, sum, t.splatF32({d}, 1.0f / float(block))), out,
              {bb, h, i, c0});
  });
  return success();
}

namespace {
/// What both grids of a block_topk lowering share.
struct TopKProgram : TileBuilder {
  attn::BlockTopKOp op;
  int64_t bq, bk, k, bn;
  Value numKeyBlocks; // NB, index

  TopKProgram(ImplicitLocOpBuilder &b, attn::BlockTopKOp op, int64_t bn)
      : TileBuilder(b), op(op), bq(op.getBlockQ()), bk(op.getBlockK()), k(op.getK()),
        bn(bn) {}

  /// Whether key blocks `cols` ([bn] i32) are candidates for query blocks whose first
  /// rows are `firstRows` ([rows] i32): [rows, bn] i1.
  Value candidates(Value firstRows, Value cols) {
    int64_t rows = cast<RankedTensorType>(firstRows.getType()).getDimSize(0);
    Value exists = cmpI(arith::CmpIPredicate::slt, cols, splatOf({bn}, toI32(numKeyBlocks)));
    Value keep = broadcast(exists, 0, rows);
    if (op.getCausal()) {
      // Key block j lies wholly at or before the block's first query: (j + 1) bk - 1 <= t.
      Value lastKey = arith::AddIOp::create(
          b, arith::MulIOp::create(b, cols, splatI32({bn}, int32_t(bk))),
          splatI32({bn}, int32_t(bk - 1)));
      keep = arith::AndIOp::create(
          b, keep,
          cmpI(arith::CmpIPredicate::sle, broadcast(lastKey, 0, rows),
               broadcast(firstRows, 1, bn)));
    }
    return keep;
  }
  Value negInf(ArrayRef<int64_t> shape) { return splatF32(shape, -kInf); }
};
} // namespace

/// Grid 1: the gate score of every (query block, key block) into `scores`.
static void buildScoreGrid(TopKProgram &p, Value q, Value kb, Value scores,
                           tile::ConfigAttr config) {
  ImplicitLocOpBuilder &b = p.b;
  attn::BlockTopKOp op = p.op;
  int64_t d = cast<MemRefType>(q.getType()).getDimSize(3), bq = p.bq, bn = p.bn;
  // Rows per program: whole query blocks, at least block_m rows when blocks are small.
  int64_t perProgram = std::max<int64_t>(1, config.getBlockM() / bq), rows = perProgram * bq;
  bool softmax = op.getScore() == attn::BlockScore::softmax;
  float scale = op.getScaleAttr() ? op.getScaleAttr().getValueAsDouble()
                                  : float(1.0 / std::sqrt(double(d)));
  Value nBatch = p.dim(q, 0), nHeads = p.dim(q, 1), nq = p.dim(q, 2);
  Value group = arith::DivSIOp::create(b, nHeads, p.dim(kb, 1));
  Value scoringHeads = p.dim(scores, 1), queryBlocks = p.dim(scores, 2);
  p.grid({p.ceilDiv(queryBlocks, perProgram), scoringHeads, nBatch}, config,
         [&](ArrayRef<Value> id) {
    Value c0 = p.cIndex(0), bb = id[2], hs = id[1];
    Value qb0 = arith::MulIOp::create(b, id[0], p.cIndex(perProgram));
    Value r0 = arith::MulIOp::create(b, qb0, p.cIndex(bq));
    Value rowIds = p.range(r0, rows);
    Value validRow = p.cmpI(arith::CmpIPredicate::slt, rowIds, p.splatOf({rows}, p.toI32(nq)));
    Value bqTile = p.splatI32({rows}, int32_t(bq));
    Value firstRows =
        arith::MulIOp::create(b, arith::DivSIOp::create(b, rowIds, bqTile), bqTile);
    // Query rows -> query blocks: A[i, t] = 1 when local row t is in block i.
    Value aggregate;
    if (bq > 1) {
      Value blockOfRow = arith::DivSIOp::create(b, p.range(c0, rows), bqTile);
      Value hit = p.cmpI(arith::CmpIPredicate::eq, p.broadcast(blockOfRow, 0, perProgram),
                         p.broadcast(p.range(c0, perProgram), 1, rows));
      aggregate = p.select(hit, p.splatF32({perProgram, rows}, 1),
                           p.splatF32({perProgram, rows}, 0));
    }
    Value keyTiles = p.ceilDiv(p.numKeyBlocks, bn), bnIdx = p.cIndex(bn);
    Value heads = op.getGroupHeads() ? group : p.cIndex(1);
    p.forLoop(c0, heads, {}, [&](Value g, ValueRange) -> SmallVector<Value> {
      Value head = op.getGroupHeads()
                       ? Value(arith::AddIOp::create(b, arith::MulIOp::create(b, hs, group), g))
                       : hs;
      Value kvHead = arith::DivSIOp::create(b, head, group);
      Value qt = p.loadOperand(q, {rows, d}, {bb, head, r0, c0});
      // q . kb for key blocks j0 .. j0 + bn - 1, with the softmax scale and mask applied
      // when the score is `softmax`.
      auto logits = [&](Value j0) {
        Value kbt = p.trans(p.loadOperand(kb, {bn, d}, {bb, kvHead, j0, c0}));
        Value s = p.dot(qt, kbt, p.splatF32({rows, bn}, 0));
        if (!softmax)
          return s;
        s = arith::MulFOp::create(b, s, p.splatF32({rows, bn}, scale));
        return p.select(p.candidates(firstRows, p.range(j0, bn)), s, p.negInf({rows, bn}));
      };
      Value base, total;
      if (softmax) {
        ValueRange stats = p.forLoop(
            c0, keyTiles, {p.negInf({rows}), p.splatF32({rows}, 0)},
            [&](Value j, ValueRange mL) -> SmallVector<Value> {
              Value s = logits(arith::MulIOp::create(b, j, bnIdx));
              Value m = arith::MaxNumFOp::create(b, mL[0], p.reduce(tile::Combiner::max, s, 1));
              Value mSafe = p.select(
                  arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, m, p.negInf({rows})),
                  p.splatF32({rows}, 0), m);
              Value alpha = math::ExpOp::create(b, arith::SubFOp::create(b, mL[0], mSafe));
              Value e = math::ExpOp::create(
                  b, arith::SubFOp::create(b, s, p.broadcast(mSafe, 1, bn)));
              Value l = arith::AddFOp::create(b, arith::MulFOp::create(b, alpha, mL[1]),
                                              p.reduce(tile::Combiner::sum, e, 1));
              return {m, l};
            });
        Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, stats[1],
                                            p.splatF32({rows}, 0));
        base = p.select(empty, p.splatF32({rows}, 0), stats[0]);
        // 1 / l, and 0 for rows with no candidate or past the end.
        total = p.select(arith::AndIOp::create(b, validRow, p.logicalNot(empty)),
                         arith::DivFOp::create(b, p.splatF32({rows}, 1), stats[1]),
                         p.splatF32({rows}, 0));
      }
      p.forLoop(c0, keyTiles, {}, [&](Value j, ValueRange) -> SmallVector<Value> {
        Value j0 = arith::MulIOp::create(b, j, bnIdx);
        Value s = logits(j0);
        if (softmax)
          s = arith::MulFOp::create(
              b,
              math::ExpOp::create(b, arith::SubFOp::create(b, s, p.broadcast(base, 1, bn))),
              p.broadcast(total, 1, bn));
        if (aggregate)
          s = p.dot(aggregate, s, p.splatF32({perProgram, bn}, 0));
        SmallVector<Value> at{bb, hs, qb0, j0};
        if (op.getGroupHeads()) {
          Value first = p.cmpI(arith::CmpIPredicate::eq, g, c0);
          Value previous = tile::LoadOp::create(b, p.tileType({perProgram, bn}, p.f32),
                                                scores, at, nullptr);
          s = p.select(first, s, arith::AddFOp::create(b, previous, s));
        }
        tile::StoreOp::create(b, s, scores, at);
        return {};
      });
      return {};
    });
  });
}

/// Grid 2: the k best candidate blocks per query block, in increasing order.
static void buildSelectGrid(TopKProgram &p, Value scores, Value indices,
                            tile::ConfigAttr config) {
  ImplicitLocOpBuilder &b = p.b;
  attn::BlockTopKOp op = p.op;
  int64_t rows = config.getBlockM(), k = p.k, bn = p.bn, bq = p.bq;
  Value nBatch = p.dim(indices, 0), nHeads = p.dim(indices, 1);
  Value queryBlocks = p.dim(indices, 2);
  Value group = arith::DivSIOp::create(b, nHeads, p.dim(scores, 1));
  p.grid({p.ceilDiv(queryBlocks, rows), nHeads, nBatch}, config, [&](ArrayRef<Value> id) {
    Value c0 = p.cIndex(0), bb = id[2], h = id[1];
    Value hs = op.getGroupHeads() ? Value(arith::DivSIOp::create(b, h, group)) : h;
    Value qb0 = arith::MulIOp::create(b, id[0], p.cIndex(rows));
    Value firstRows = arith::MulIOp::create(b, p.range(qb0, rows), p.splatI32({rows}, bq));
    Value current = arith::DivSIOp::create(b, firstRows, p.splatI32({rows}, p.bk));
    Value slot = p.broadcast(p.range(c0, k), 0, rows); // [rows, k]
    auto atSlot = [&](Value t) {
      return p.cmpI(arith::CmpIPredicate::eq, slot, p.splatOf({rows, k}, p.toI32(t)));
    };
    auto eqBroadcast = [&](Value tileV, Value rowV) {
      int64_t w = cast<RankedTensorType>(tileV.getType()).getDimSize(1);
      bool isF = isa<FloatType>(cast<RankedTensorType>(rowV.getType()).getElementType());
      Value wide = p.broadcast(rowV, 1, w);
      return isF ? Value(arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, tileV, wide))
                 : p.cmpI(arith::CmpIPredicate::eq, tileV, wide);
    };
    // The best of (values, ids) per row, ties to the lowest id.
    auto argMax = [&](Value values, Value ids) -> std::pair<Value, Value> {
      int64_t w = cast<RankedTensorType>(values.getType()).getDimSize(1);
      Value best = p.reduce(tile::Combiner::max, values, 1);
      Value id = p.reduce(tile::Combiner::min,
                          p.select(eqBroadcast(values, best), ids, p.splatI32({rows, w}, kNoBlock)),
                          1);
      return {best, id};
    };
    // The list starts empty, or with the current block pinned at +inf.
    Value values = p.negInf({rows, k}), ids = p.splatI32({rows, k}, kNoBlock);
    if (op.getIncludeCurrent()) {
      Value first = atSlot(c0);
      values = p.select(first, p.splatF32({rows, k}, kInf), values);
      ids = p.select(first, p.broadcast(current, 1, k), ids);
    }
    Value keyTiles = p.ceilDiv(p.numKeyBlocks, bn);
    ValueRange list = p.forLoop(
        c0, keyTiles, {values, ids}, [&](Value j, ValueRange carried) -> SmallVector<Value> {
          Value j0 = arith::MulIOp::create(b, j, p.cIndex(bn));
          Value cols = p.range(j0, bn);
          auto padding = b.getF32FloatAttr(-kInf);
          Value s = tile::LoadOp::create(b, p.tileType({rows, bn}, p.f32), scores,
                                         ValueRange{bb, hs, qb0, j0}, padding);
          Value keep = p.candidates(firstRows, cols);
          if (op.getIncludeCurrent())
            keep = arith::AndIOp::create(
                b, keep,
                p.cmpI(arith::CmpIPredicate::ne, p.broadcast(cols, 0, rows),
                       p.broadcast(current, 1, bn)));
          s = p.select(keep, s, p.negInf({rows, bn}));
          Value colIds = p.broadcast(cols, 0, rows);
          // k rounds: take the better head of list and tile, knock it out of its source.
          ValueRange merged = p.forLoop(
              c0, p.cIndex(k), {p.negInf({rows, k}), p.splatI32({rows, k}, kNoBlock),
                                carried[0], s},
              [&](Value t, ValueRange st) -> SmallVector<Value> {
                auto [listBest, listId] = argMax(st[2], carried[1]);
                auto [tileBest, tileId] = argMax(st[3], colIds);
                Value fromList =
                    arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, listBest, tileBest);
                Value best = p.select(fromList, listBest, tileBest);
                Value id = p.select(fromList, listId, tileId);
                Value here = atSlot(t);
                Value newValues = p.select(here, p.broadcast(best, 1, k), st[0]);
                Value newIds = p.select(here, p.broadcast(id, 1, k), st[1]);
                Value takeList = arith::AndIOp::create(b, eqBroadcast(carried[1], listId),
                                                       p.broadcast(fromList, 1, k));
                Value takeTile = arith::AndIOp::create(b, eqBroadcast(colIds, tileId),
                                                       p.broadcast(p.logicalNot(fromList), 1, bn));
                return {newValues, newIds, p.select(takeList, p.negInf({rows, k}), st[2]),
                        p.select(takeTile, p.negInf({rows, bn}), st[3])};
              });
          return {merged[0], merged[1]};
        });
    // Chosen ids in increasing order; empty slots (-inf) become -1 at the end.
    Value chosen = p.select(
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, list[0], p.negInf({rows, k})),
        list[1], p.splatI32({rows, k}, kNoBlock));
    Value sorted = p.forLoop(
        c0, p.cIndex(k), {p.splatI32({rows, k}, -1), chosen},
        [&](Value t, ValueRange st) -> SmallVector<Value> {
          Value lowest = p.reduce(tile::Combiner::min, st[1], 1);
          Value none = p.cmpI(arith::CmpIPredicate::eq, lowest, p.splatI32({rows}, kNoBlock));
          Value id = p.select(none, p.splatI32({rows}, -1), lowest);
          return {p.select(atSlot(t), p.broadcast(id, 1, k), st[0]),
                  p.select(eqBroadcast(st[1], lowest), p.splatI32({rows, k}, kNoBlock), st[1])};
        })[0];
    tile::StoreOp::create(b, sorted, indices, ValueRange{bb, h, qb0, c0});
  });
}

LogicalResult tessera::buildBlockTopKTileProgram(ImplicitLocOpBuilder &b,
                                                 attn::BlockTopKOp op,
                                                 const IRMapping &buffers,
                                                 tile::ConfigAttr config) {
  Value q = buffers.lookup(op.getQuery()), kb = buffers.lookup(op.getBlockKeys());
  Value indices = buffers.lookup(op.getIndices());
  if (cast<MemRefType>(q.getType()).isDynamicDim(3))
    return op.emitError("needs a static head dim to be tiled");
  TopKProgram p(b, op, config.getBlockN());
  p.numKeyBlocks = p.dim(kb, 2);
  // The scratch of gate scores, one row per query block, one column per key block.
  Value scoringHeads = op.getGroupHeads() ? p.dim(kb, 1) : p.dim(q, 1);
  Value scores = memref::AllocOp::create(
      b, MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic, ShapedType::kDynamic,
                          ShapedType::kDynamic},
                         p.f32),
      ValueRange{p.dim(q, 0), scoringHeads, p.dim(indices, 2), p.numKeyBlocks});
  buildScoreGrid(p, q, kb, scores, config);
  buildSelectGrid(p, scores, indices, config);
  return success();
}
