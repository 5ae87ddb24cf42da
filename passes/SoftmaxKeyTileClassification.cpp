//===- SoftmaxKeyTileClassification.cpp - which key tiles a program visits ===//
//
// Key tiles are classified before any is visited: tiles wholly outside causal / window
// bounds are never visited, tiles wholly inside run without any mask arithmetic, and
// only the boundary tiles (the window's first, the diagonal, the ragged end) evaluate
// the mask. The bounds are analytic (a range per program); a mask_mod is classified by
// grids of its own that list, per query tile, the key tiles it keeps anything of.
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxTileProgram.h"

#include "passes/ModifierBounds.h"

using namespace mlir;
using namespace tessera;

KeyTileRange tessera::beginSoftmaxProgram(SoftmaxProgram &p, Value gridHeads,
                                          Value gridBatch) {
  ImplicitLocOpBuilder &b = p.b;
  attn::AttentionOp op = p.op;
  auto grid = tile::GridOp::create(b, ValueRange{p.qTiles, gridHeads, gridBatch}, p.config);
  b.setInsertionPointToStart(&grid.getBody().emplaceBlock());
  Value qTileIdx = tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(0));
  // Under causal / window bounds later query tiles see more keys: launch them first
  // (blocks start in index order) so the grid does not end on its longest programs.
  if (op.getCausal() || op.getWindowAttr())
    qTileIdx = arith::SubIOp::create(
        b, arith::SubIOp::create(b, p.qTiles, p.cIndex(1)), qTileIdx);
  p.head = tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(1));
  p.batch = tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(2));
  p.qTileIdx = qTileIdx;
  p.kvHead = arith::DivSIOp::create(b, p.head, p.group);
  p.m0 = arith::MulIOp::create(b, qTileIdx, p.bmIdx);
  p.offset = p.toI32(p.offsetIdx);
  p.rows = tile::RangeOp::create(b, p.tileType({p.bm}, p.i32), p.m0);

  Value zero = p.cIndex(0), nk = p.nk;
  Value diagFirstRow = arith::AddIOp::create(b, p.m0, p.offsetIdx); // last key row m0 sees
  Value keyEnd = nk, fullEnd = nk;                                  // exclusive
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
  Value bnIdx = p.bnIdx;
  KeyTileRange t;
  t.lo = arith::FloorDivSIOp::create(b, keyBegin, bnIdx);
  t.hi = arith::MaxSIOp::create(b, t.lo, arith::CeilDivSIOp::create(b, keyEnd, bnIdx));
  t.fullLo = arith::MinSIOp::create(
      b, t.hi, arith::MaxSIOp::create(b, t.lo, arith::CeilDivSIOp::create(b, fullBegin, bnIdx)));
  t.fullHi = arith::MaxSIOp::create(
      b, t.fullLo,
      arith::MinSIOp::create(b, t.hi, arith::FloorDivSIOp::create(b, fullEnd, bnIdx)));
  return t;
}

namespace {
/// The classification grids' common values: lists of 32-tile chunks.
constexpr int64_t kChunkTiles = 32;

/// Records key tile `t` at the chunk's next free place whatever its class, and counts
/// it if it keeps anything: an empty tile's entry is overwritten by the next kept one
/// (or lies past the count).
SmallVector<Value> recordKeyTile(SoftmaxProgram &p, Value lists, Value chunkFirst, Value t,
                                 Value count, Value isFull, Value keepsAny) {
  ImplicitLocOpBuilder &b = p.b;
  auto i32c = [&](int64_t v) { return arith::ConstantIntOp::create(b, p.i32, v); };
  Value entry = arith::AddIOp::create(b, arith::MulIOp::create(b, p.toI32(t), i32c(2)),
                                      arith::ExtUIOp::create(b, p.i32, isFull));
  Value place = arith::AddIOp::create(
      b, chunkFirst, arith::IndexCastOp::create(b, b.getIndexType(), count));
  memref::StoreOp::create(b, entry, lists, ValueRange{p.batch, p.head, p.qTileIdx, place});
  return {arith::AddIOp::create(b, count, arith::ExtUIOp::create(b, p.i32, keepsAny))};
}

/// Counts the pairs of the key tile at `n0` the mask keeps, element by element, and
/// returns (every pair kept, any pair kept); rows past the end of the queries count as
/// kept for the first and not for the second.
std::pair<Value, Value> countKeptPairs(SoftmaxProgram &p, Value n0) {
  ImplicitLocOpBuilder &b = p.b;
  auto i32c = [&](int64_t v) { return arith::ConstantIntOp::create(b, p.i32, v); };
  auto [qIdx, kIdx] = p.indexTiles(n0);
  SmallVector<int64_t> shape{p.bm, p.bn};
  Value keep = p.keepTile(qIdx, kIdx);
  Value rowValid = p.cmpI(arith::CmpIPredicate::slt, qIdx, p.splatOf(shape, p.toI32(p.nq)));
  // Two counts in one sum (one block-wide reduction): kept pairs in the low 16 bits,
  // kept-or-ignored ones above (a tile has at most 2^14 pairs, checked by the builder).
  auto ints = [&](Value bits) {
    return arith::ExtUIOp::create(b, p.tileType(shape, p.i32), bits).getResult();
  };
  Value packed = arith::AddIOp::create(
      b, ints(arith::AndIOp::create(b, keep, rowValid)),
      arith::ShLIOp::create(b, ints(arith::OrIOp::create(b, keep, p.logicalNot(rowValid))),
                            p.splatI32(shape, 16)));
  Value total = tensor::ExtractOp::create(
      b, p.reduce(tile::Combiner::sum, p.reduce(tile::Combiner::sum, packed, 1), 0),
      ValueRange{});
  Value kept = arith::AndIOp::create(b, total, i32c(0xFFFF));
  Value isFull = p.cmpI(arith::CmpIPredicate::eq, arith::ShRUIOp::create(b, total, i32c(16)),
                        i32c(p.bm * p.bn));
  return {isFull, p.cmpI(arith::CmpIPredicate::sgt, kept, i32c(0))};
}
} // namespace

// Block classification, as FlexAttention's BlockMask: a first grid evaluates mask_mod on
// every tile the bounds leave and lists, per query tile, the tiles it keeps anything of
// (entry 2 t + 1 when it keeps all, 2 t when only part), one program per chunk of 32 key
// tiles (its list from the chunk's first place, and its count); a second grid joins each
// query tile's chunks into one list and its count; the attention grid walks that list
// only, evaluating mask_mod on partial tiles alone.
ClassifiedKeyTiles tessera::classifyKeyTilesByMaskMod(SoftmaxProgram &p) {
  ImplicitLocOpBuilder &b = p.b;
  attn::AttentionOp op = p.op;
  ClassifiedKeyTiles out;
  Block &mask = op.getMaskMod().front();
  out.perBatch = !mask.getArgument(0).use_empty();
  out.perHead = !mask.getArgument(1).use_empty();
  Value c1 = p.cIndex(1);
  Value listBatches = out.perBatch ? p.nBatch : c1, listHeads = out.perHead ? p.nHeads : c1;
  Value chunkSize = p.cIndex(kChunkTiles);
  Value kTiles = arith::CeilDivSIOp::create(b, p.nk, p.bnIdx);
  Value kChunks = arith::CeilDivSIOp::create(b, kTiles, chunkSize);
  auto dyn = ShapedType::kDynamic;
  auto lists = [&](SmallVector<Value> sizes) {
    SmallVector<int64_t> shape(sizes.size(), dyn);
    return memref::AllocOp::create(b, MemRefType::get(shape, p.i32), sizes).getResult();
  };
  // A chunk's list fits between its first place and the row's end; the joining grid
  // moves whole chunks of places, those past the end read as 0 and are not written.
  out.lists = lists({listBatches, listHeads, p.qTiles, kTiles});
  out.counts = lists({listBatches, listHeads, p.qTiles});
  Value chunkCounts = lists({listBatches, listHeads, p.qTiles, kChunks});
  OpBuilder::InsertionGuard classify(b);
  // Programs over (query tile, head x chunk, batch).
  KeyTileRange tiles =
      beginSoftmaxProgram(p, arith::MulIOp::create(b, listHeads, kChunks), listBatches);
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
  Value lastRow = lastOf(p.m0, p.bm, p.nq);
  Value count = p.forLoop(chunkLo, chunkHi, ValueRange{i32c(0)}, [&](Value t,
                                                                      ValueRange acc) {
    Value n0 = arith::MulIOp::create(b, t, p.bnIdx);
    // The mask's verdict on the whole tile (rows and keys past the ends left out) by
    // interval arithmetic; element-wise only when that decides nothing.
    BoxVerdict verdict = boundMaskOverBox(
        b, op.getMaskMod(),
        {{p.toI32(p.batch), p.toI32(p.batch)}, {p.toI32(p.head), p.toI32(p.head)},
         {p.toI32(p.m0), lastRow}, {p.toI32(n0), lastOf(n0, p.bn, p.nk)}});
    Value wholeByBounds =
        arith::AndIOp::create(b, p.cmpI(arith::CmpIPredicate::sge, t, tiles.fullLo),
                              p.cmpI(arith::CmpIPredicate::slt, t, tiles.fullHi));
    Value keepsAll = arith::AndIOp::create(b, verdict.keepsAll, wholeByBounds);
    auto record = [&](Value isFull, Value keepsAny) {
      return recordKeyTile(p, out.lists, chunkFirst, t, acc[0], isFull, keepsAny);
    };
    auto elementwise = [&] {
      auto [isFull, keepsAny] = countKeptPairs(p, n0);
      return record(isFull, keepsAny);
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
  tiles = beginSoftmaxProgram(p, listHeads, listBatches);
  Value firstChunk = arith::FloorDivSIOp::create(b, tiles.lo, chunkSize);
  Value endChunk = arith::MaxSIOp::create(
      b, firstChunk, arith::CeilDivSIOp::create(b, tiles.hi, chunkSize));
  Value total = p.forLoop(firstChunk, endChunk, ValueRange{i32c(0)}, [&](Value c,
                                                                         ValueRange acc) {
    Value listed = tile::LoadOp::create(
        b, p.tileType({kChunkTiles}, p.i32), out.lists,
        ValueRange{p.batch, p.head, p.qTileIdx, arith::MulIOp::create(b, c, chunkSize)},
        nullptr);
    tile::StoreOp::create(b, listed, out.lists,
                          ValueRange{p.batch, p.head, p.qTileIdx,
                                     arith::IndexCastOp::create(b, b.getIndexType(), acc[0])});
    Value n = memref::LoadOp::create(b, chunkCounts, ValueRange{p.batch, p.head, p.qTileIdx, c});
    return SmallVector<Value>{arith::AddIOp::create(b, acc[0], n)};
  })[0];
  memref::StoreOp::create(b, total, out.counts, ValueRange{p.batch, p.head, p.qTileIdx});
  return out;
}
