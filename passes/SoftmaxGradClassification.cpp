//===- SoftmaxGradClassification.cpp - which tile pairs the backward visits ===//
//
// The backward walks (query tile, key tile) pairs in both directions: dQ per query tile
// over its key tiles, dK / dV per key tile over the query tiles that see it. A mask_mod
// is classified once per pair by a grid of its own, into a table of classes both lists
// are read from; so each direction visits the kept tiles only (full ones without mask
// arithmetic), and the transposed lists cost no second evaluation of the mask.
//
// The classification is the backward's own, not the forward's lists: its query tiles
// differ (the dK / dV grid walks 16 to 64 queries, the forward block_m), and the class
// rows here divide both the dQ and the dK / dV tiles, so one evaluation serves both.
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxGradClassification.h"

#include "passes/ModifierBounds.h"
#include "passes/ModifierInlining.h"
#include "passes/TileLoopAttrs.h"

#include <limits>

using namespace mlir;
using namespace tessera;
using P = arith::CmpIPredicate;

namespace {
/// Key tiles one classification program covers (programs over query tile x chunk).
constexpr int64_t kChunkTiles = 32;
enum : int32_t { kEmpty = 0, kPartial = 1, kWhole = 2 };
} // namespace

GradTileClasses GradClassification::classify(int64_t rows, int64_t keys) {
  ImplicitLocOpBuilder &b = tb.b;
  GradTileClasses out;
  int64_t bm = config.getBlockM(), bn = config.getBlockN();
  int64_t rowSubs = bm / rows, keySubs = bn / keys, subs = rowSubs * keySubs;
  out.rows = rows;
  out.keys = keys;
  Block &mask = op.getMaskMod().front();
  out.perBatch = !mask.getArgument(0).use_empty();
  out.perHead = !mask.getArgument(1).use_empty();
  Value c1 = tb.cIndex(1);
  Value batches = out.perBatch ? nBatch : c1, heads = out.perHead ? nHeads : c1;
  Value qTiles = tb.ceilDiv(nq, bm), kTiles = tb.ceilDiv(nk, bn);
  Value chunks = tb.ceilDiv(kTiles, kChunkTiles);
  auto dyn = ShapedType::kDynamic;
  out.classes = memref::AllocOp::create(
      b, MemRefType::get({dyn, dyn, dyn, dyn}, tb.i32),
      ValueRange{batches, heads, arith::MulIOp::create(b, qTiles, tb.cIndex(rowSubs)),
                 arith::MulIOp::create(b, kTiles, tb.cIndex(keySubs))});
  auto i32c = [&](int64_t v) { return arith::ConstantIntOp::create(b, tb.i32, v).getResult(); };
  tb.grid({qTiles, arith::MulIOp::create(b, heads, chunks), batches}, config,
          [&](ArrayRef<Value> id) {
    Value chunk = arith::RemSIOp::create(b, id[1], chunks);
    Value head = arith::DivSIOp::create(b, id[1], chunks), batch = id[2];
    Value m0 = arith::MulIOp::create(b, id[0], tb.cIndex(bm));
    auto [lo, hi] = keyTileRange(m0, bm, bn);
    Value first = arith::MulIOp::create(b, chunk, tb.cIndex(kChunkTiles));
    Value end = arith::MinSIOp::create(
        b, kTiles, arith::AddIOp::create(b, first, tb.cIndex(kChunkTiles)));
    auto lastOf = [&](Value from, int64_t size, Value n) { // inclusive, clipped (i32)
      return tb.toI32(arith::SubIOp::create(
          b, arith::MinSIOp::create(b, arith::AddIOp::create(b, from, tb.cIndex(size)), n),
          c1));
    };
    Value batch32 = tb.toI32(batch), head32 = tb.toI32(head);
    SmallVector<int64_t> shape{bm, bn};
    auto same = [&](int32_t cls) { return SmallVector<Value>(subs, i32c(cls)); };
    // Every class of the tile's rows, counted element-wise: a pair counts as kept if the
    // mask and the bounds keep it, and as "whole" if the mask keeps it or it lies past
    // an end (the walks mask the ends and bounds of a whole tile by themselves).
    auto elementwise = [&](Value n0) {
      Value qIdx = tb.broadcast(tb.range(m0, bm), 1, bn);
      Value kIdx = tb.broadcast(tb.range(n0, bn), 0, bm);
      SmallVector<Value> args{tb.splatOf(shape, batch32), tb.splatOf(shape, head32), qIdx,
                              kIdx};
      Value keep = *inlineModifierElementwise(b, op.getMaskMod(), args, shape, buffers);
      Value valid = arith::AndIOp::create(
          b, tb.cmpI(P::slt, qIdx, tb.splatOf(shape, tb.toI32(nq))),
          tb.cmpI(P::slt, kIdx, tb.splatOf(shape, tb.toI32(nk))));
      Value kept = arith::AndIOp::create(b, keep, valid);
      if (Value bounds = boundsKeep(m0, n0, bm, bn))
        kept = arith::AndIOp::create(b, kept, bounds);
      Value whole = arith::OrIOp::create(b, keep, tb.logicalNot(valid));
      auto ints = [&](Value bits) {
        return arith::ExtUIOp::create(b, tb.tileType(shape, tb.i32), bits).getResult();
      };
      // Kept pairs in the low 16 bits, whole ones above (the caller checks bm x bn < 2^15).
      Value packed = arith::AddIOp::create(
          b, ints(kept), arith::ShLIOp::create(b, ints(whole), tb.splatI32(shape, 16)));
      // Sums over class row r and key column c (row-major), the tile's rows and keys
      // selected by a range test where a class is a part of them.
      auto within = [&](Value positions, int64_t n, int64_t part, int64_t size) {
        return arith::AndIOp::create(
            b, tb.cmpI(P::sge, positions, tb.splatI32({n}, int32_t(part * size))),
            tb.cmpI(P::slt, positions, tb.splatI32({n}, int32_t((part + 1) * size))));
      };
      Value rowInTile = tb.range(tb.cIndex(0), bm), keyInTile = tb.range(tb.cIndex(0), bn);
      SmallVector<Value> classes(subs);
      for (int64_t c = 0; c < keySubs; ++c) {
        Value keysPart = packed;
        if (keySubs > 1)
          keysPart = tb.select(tb.broadcast(within(keyInTile, bn, c, keys), 0, bm), packed,
                               tb.splatI32(shape, 0));
        Value perRow = tb.reduce(tile::Combiner::sum, keysPart, 1);
        for (int64_t r = 0; r < rowSubs; ++r) {
          Value part = perRow;
          if (rowSubs > 1)
            part = tb.select(within(rowInTile, bm, r, rows), perRow, tb.splatI32({bm}, 0));
          Value total = tensor::ExtractOp::create(b, tb.reduce(tile::Combiner::sum, part, 0),
                                                  ValueRange{});
          Value any = tb.cmpI(P::sgt, arith::AndIOp::create(b, total, i32c(0xFFFF)), i32c(0));
          Value all = tb.cmpI(P::eq, arith::ShRUIOp::create(b, total, i32c(16)),
                              i32c(rows * keys));
          classes[r * keySubs + c] =
              tb.select(any, tb.select(all, i32c(kWhole), i32c(kPartial)), i32c(kEmpty));
        }
      }
      return classes;
    };
    // A read of a 1-D integer table (document ids) over an index range of at most
    // max(block_m, block_n) entries: the least and greatest entry, from one vector
    // gather, so a document mask decides its tiles from two vectors instead of every
    // pair (a longer range reads as unknown: the widest interval).
    int64_t span = std::max(bm, bn);
    auto tableRange = [&](Operation *read,
                          ArrayRef<std::pair<Value, Value>> indices) -> std::pair<Value, Value> {
      Value table = buffers.lookupOrNull(read->getOperand(0));
      if (indices.size() != 1 || !table || !read->getResult(0).getType().isInteger(32))
        return {};
      auto asIndex = [&](Value v) {
        return v.getType().isIndex()
                   ? v
                   : arith::IndexCastOp::create(b, b.getIndexType(), v).getResult();
      };
      Value lo = asIndex(indices[0].first), hi = asIndex(indices[0].second);
      Value positions = tb.range(lo, span);
      Value values = tile::GatherOp::create(b, tb.tileType({span}, tb.i32), table,
                                            ValueRange{positions}, nullptr);
      Value inside = tb.cmpI(P::sle, positions, tb.splatOf({span}, tb.toI32(hi)));
      auto extreme = [&](tile::Combiner combiner, int32_t outside) {
        Value masked = tb.select(inside, values, tb.splatI32({span}, outside));
        return tensor::ExtractOp::create(b, tb.reduce(combiner, masked, 0), ValueRange{})
            .getResult();
      };
      Value fits = tb.cmpI(P::slt, arith::SubIOp::create(b, hi, lo), tb.cIndex(span));
      int32_t least = std::numeric_limits<int32_t>::min(),
              most = std::numeric_limits<int32_t>::max();
      return {tb.select(fits, extreme(tile::Combiner::min, most), i32c(least)),
              tb.select(fits, extreme(tile::Combiner::max, least), i32c(most))};
    };
    tb.forLoop(first, end, ValueRange{}, [&](Value t, ValueRange) {
      Value n0 = arith::MulIOp::create(b, t, tb.cIndex(bn));
      Value inRange =
          arith::AndIOp::create(b, tb.cmpI(P::sge, t, lo), tb.cmpI(P::slt, t, hi));
      SmallVector<Value> classes = tb.ifElse(
          inRange,
          [&] {
            // The mask's verdict on the whole tile by interval arithmetic (prefix-LM,
            // block-diagonal masks); element-wise only when that decides nothing.
            BoxVerdict verdict = boundMaskOverBox(
                b, op.getMaskMod(),
                {{batch32, batch32}, {head32, head32}, {tb.toI32(m0), lastOf(m0, bm, nq)},
                 {tb.toI32(n0), lastOf(n0, bn, nk)}},
                tableRange);
            return tb.ifElse(
                verdict.keepsNone, [&] { return same(kEmpty); },
                [&] {
                  return tb.ifElse(
                      verdict.keepsAll, [&] { return same(kWhole); },
                      [&] { return elementwise(n0); });
                });
          },
          [&] { return same(kEmpty); });
      for (int64_t r = 0; r < rowSubs; ++r)
        for (int64_t c = 0; c < keySubs; ++c) {
          Value row = arith::AddIOp::create(
              b, arith::MulIOp::create(b, id[0], tb.cIndex(rowSubs)), tb.cIndex(r));
          Value col = arith::AddIOp::create(b, arith::MulIOp::create(b, t, tb.cIndex(keySubs)),
                                            tb.cIndex(c));
          memref::StoreOp::create(b, classes[r * keySubs + c], out.classes,
                                  ValueRange{batch, head, row, col});
        }
      return SmallVector<Value>{};
    });
  });
  return out;
}

namespace {
/// Emits the grid listing, per query tile of `queries` rows (or per key tile of `keys`
/// keys: `perKeyTile`), the tiles of the other dimension in its causal / window range
/// any of whose classes keeps anything.
GradTileList listTiles(GradClassification &c, const GradTileClasses &classes, int64_t queries,
                       int64_t keys, bool perKeyTile) {
  TileBuilder &tb = c.tb;
  ImplicitLocOpBuilder &b = tb.b;
  int64_t rowSubs = queries / classes.rows, keySubs = keys / classes.keys;
  Value qTiles = tb.ceilDiv(c.nq, queries), kTiles = tb.ceilDiv(c.nk, keys);
  Value outer = perKeyTile ? kTiles : qTiles, inner = perKeyTile ? qTiles : kTiles;
  auto times = [&](Value x, int64_t n) {
    return arith::MulIOp::create(b, x, tb.cIndex(n)).getResult();
  };
  Value c1 = tb.cIndex(1);
  Value batches = classes.perBatch ? c.nBatch : c1, heads = classes.perHead ? c.nHeads : c1;
  auto dyn = ShapedType::kDynamic;
  GradTileList list;
  list.entries = memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn, dyn}, tb.i32),
                                         ValueRange{batches, heads, outer, inner});
  list.counts = memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn}, tb.i32),
                                        ValueRange{batches, heads, outer});
  Value classRows = tb.dim(classes.classes, 2), classCols = tb.dim(classes.classes, 3);
  auto i32c = [&](int64_t v) { return arith::ConstantIntOp::create(b, tb.i32, v).getResult(); };
  tb.grid({outer, heads, batches}, c.config, [&](ArrayRef<Value> id) {
    Value tile = id[0], head = id[1], batch = id[2];
    auto [lo, hi] = perKeyTile ? c.queryTileRange(times(tile, keys), queries, keys)
                               : c.keyTileRange(times(tile, queries), queries, keys);
    Value yes = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
    Value no = arith::ConstantIntOp::create(b, b.getI1Type(), 0);
    Value count = tb.forLoop(lo, hi, ValueRange{i32c(0)}, [&](Value other, ValueRange acc) {
      Value qt = perKeyTile ? other : tile, kt = perKeyTile ? tile : other;
      Value firstRow = times(qt, rowSubs), firstCol = times(kt, keySubs);
      Value any = no, all = yes;
      for (int64_t s = 0; s < rowSubs * keySubs; ++s) {
        // Classes past the queries' or keys' end hold no pair: whole, not kept.
        Value row = arith::AddIOp::create(b, firstRow, tb.cIndex(s / keySubs));
        Value col = arith::AddIOp::create(b, firstCol, tb.cIndex(s % keySubs));
        Value held = arith::AndIOp::create(b, tb.cmpI(P::slt, row, classRows),
                                           tb.cmpI(P::slt, col, classCols));
        Value at = arith::MinSIOp::create(b, row, arith::SubIOp::create(b, classRows, c1));
        Value atCol = arith::MinSIOp::create(b, col, arith::SubIOp::create(b, classCols, c1));
        Value cls =
            memref::LoadOp::create(b, classes.classes, ValueRange{batch, head, at, atCol});
        any = arith::OrIOp::create(
            b, any, arith::AndIOp::create(b, held, tb.cmpI(P::ne, cls, i32c(kEmpty))));
        all = arith::AndIOp::create(
            b, all,
            arith::OrIOp::create(b, arith::XOrIOp::create(b, held, yes),
                                 tb.cmpI(P::eq, cls, i32c(kWhole))));
      }
      // Written at the next free place whatever it holds: an empty tile's entry is
      // overwritten by the next kept one (or lies past the count).
      Value entry = arith::AddIOp::create(b, arith::MulIOp::create(b, tb.toI32(other), i32c(2)),
                                          arith::ExtUIOp::create(b, tb.i32, all));
      Value place = arith::IndexCastOp::create(b, b.getIndexType(), acc[0]);
      memref::StoreOp::create(b, entry, list.entries, ValueRange{batch, head, tile, place});
      return SmallVector<Value>{
          arith::AddIOp::create(b, acc[0], arith::ExtUIOp::create(b, tb.i32, any))};
    })[0];
    memref::StoreOp::create(b, count, list.counts, ValueRange{batch, head, tile});
  });
  return list;
}
} // namespace

GradTileList GradClassification::listKeyTiles(const GradTileClasses &classes,
                                              int64_t queries, int64_t keys) {
  return listTiles(*this, classes, queries, keys, /*perKeyTile=*/false);
}

GradTileList GradClassification::listQueryTiles(const GradTileClasses &classes,
                                                int64_t queries, int64_t keys) {
  return listTiles(*this, classes, queries, keys, /*perKeyTile=*/true);
}

SmallVector<Value> tessera::walkGradTileList(
    TileBuilder &tb, const GradTileClasses &classes, const GradTileList &list, Value batch,
    Value head, Value tile, ValueRange init,
    function_ref<SmallVector<Value>(Value, Value, ValueRange)> body) {
  ImplicitLocOpBuilder &b = tb.b;
  Value c0 = tb.cIndex(0), c1 = tb.cIndex(1);
  Value listBatch = classes.perBatch ? batch : c0, listHead = classes.perHead ? head : c0;
  Value count = arith::IndexCastOp::create(
      b, b.getIndexType(),
      memref::LoadOp::create(b, list.counts, ValueRange{listBatch, listHead, tile}));
  SmallVector<Value> unchanged(init);
  return tb.ifElse(
      tb.cmpI(P::sgt, count, c0),
      [&] {
        Value last = arith::SubIOp::create(b, count, c1);
        ValueRange results = tb.forLoop(c0, count, init, [&](Value e, ValueRange carried) {
          Value place = arith::MinSIOp::create(b, e, last);
          Value entry = memref::LoadOp::create(b, list.entries,
                                               ValueRange{listBatch, listHead, tile, place});
          Value other = arith::IndexCastOp::create(
              b, b.getIndexType(),
              arith::ShRUIOp::create(b, entry, arith::ConstantIntOp::create(b, tb.i32, 1)));
          Value whole = arith::TruncIOp::create(b, b.getI1Type(), entry);
          return body(other, whole, carried);
        });
        if (!results.empty())
          results.front().getDefiningOp()->setAttr(tile_loop::kSpeculable, b.getUnitAttr());
        return SmallVector<Value>(results);
      },
      [&] { return unchanged; });
}
