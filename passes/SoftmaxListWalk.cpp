//===- SoftmaxListWalk.cpp - key tiles chosen from lists ------------------===//
//
// Walks of the key tiles a list names: the user's block lists (block_indices, per token
// or per query block) and the lists the mask_mod classification wrote. Only listed
// tiles are visited (O(N / block_k) per query block); each is clipped to the causal /
// window range.
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxTileProgram.h"

#include "passes/TileLoopAttrs.h"

#include "llvm/Support/SaveAndRestore.h"

#include <limits>

using namespace mlir;
using namespace tessera;
using P = arith::CmpIPredicate;

static constexpr int32_t kNoBlock = std::numeric_limits<int32_t>::max();

namespace {
/// A key tile chosen from a list: its first key, whether to apply it (null: always) and
/// whether the bounds keep it whole (no mask).
struct ListedKeyTile {
  Value n0, visit, whole;
};

/// How an ascending list's tiles are walked, as ranges of j: from `start`, each straight
/// segment up to its end, masked or not (the bounds cut its tiles or keep them whole),
/// then the rest up to `end` by a masked loop that masks out what is not to be visited.
/// A list that does not ascend has `start` and every straight segment's end at 0 and
/// `end` = its total.
struct ListSegments {
  Value start;
  SmallVector<std::pair<Value, bool>> straight; // (end, masked)
  Value end;
};

/// Key tiles chosen from a list, one per j in [0, total): `choose(j, entry, tileOnly)`
/// gives the tile from `entry = fetch(j)` (with tileOnly, only its n0). The loop is
/// shaped for TileToGpu's pipelining (docs/RationaleTile.md, "Loop attributes, and what
/// the GPU lowering relies on"):
/// - K and V are loaded at the top of the body, before the branches that apply the
///   tile, their indices computed from j alone (pure ops and list reads): only such
///   loads are prefetched (findPrefetches);
/// - every read is clamped (list place, tile), so the reads of iterations past the last
///   are in bounds (tile.speculable); the loop sits under total > 0, since the first
///   iteration's reads are issued before the loop and an empty list has no place.
/// Entry j is read in iteration j (a GPU that prefetches nothing reads it an iteration
/// early itself: tessera-tgpu-read-ahead).
/// With `segments` the tiles of an ascending list (none repeated, none out of range
/// before the last straight segment's end) are walked by loops with no branch in the
/// body, masked or not, and the rest by a masked loop whose mask also drops a tile not
/// to be visited (a repeat, -1, out of range: all its keys taken as past the end, so it
/// changes no row), continuing one another as the dense walk's loops. No product is
/// issued in a branch, so a GPU keeps products in flight across tiles and loops (the
/// search of a list that does not ascend for repeats is a scalar branch). A list that
/// does not ascend takes the last loop alone: one step in the program per loop.
void walkListedKeyTiles(SoftmaxProgram &p, Value total, function_ref<Value(Value)> fetch,
                        function_ref<ListedKeyTile(Value, Value, bool)> choose,
                        std::optional<ListSegments> segments = std::nullopt) {
  Value c0 = p.cIndex(0);
  // A tile applied if it is to be visited: unmasked where the bounds keep it whole.
  auto visiting = [&](Value j, ValueRange carried) -> SmallVector<Value> {
    ListedKeyTile c = choose(j, fetch(j), /*tileOnly=*/false);
    auto [k, v] = p.loadKeyValue(c.n0);
    auto apply = [&] {
      return p.ifElse(
          c.whole, [&] { return p.step(c.n0, k, v, carried, false); },
          [&] { return p.step(c.n0, k, v, carried, true); });
    };
    return c.visit ? p.ifElse(c.visit, apply, [&] { return SmallVector<Value>(carried); })
                   : apply();
  };
  // Every tile applied, masked or not, with no branch: a segment the bounds cut or keep
  // whole, or (`dropUnvisited`) the masked rest, a tile not to be visited masked whole.
  auto straight = [&](bool masked, bool dropUnvisited = false) {
    return [&, masked, dropUnvisited](Value j, ValueRange carried) -> SmallVector<Value> {
      ListedKeyTile c = choose(j, fetch(j), /*tileOnly=*/!dropUnvisited);
      auto [k, v] = p.loadKeyValue(c.n0);
      llvm::SaveAndRestore<Value> kept(p.tileKept, dropUnvisited ? c.visit : p.tileKept);
      return p.step(c.n0, k, v, carried, masked);
    };
  };
  SmallVector<Value> &state = p.state;
  SmallVector<Value> unchanged(state);
  state = p.ifElse(
      p.cmpI(P::sgt, total, c0),
      [&] {
        auto walk = [&](Value from, Value to,
                        function_ref<SmallVector<Value>(Value, ValueRange)> fn,
                        bool continuesPrevious) {
          ValueRange results = p.forLoop(from, to, state, fn);
          auto loop = cast<scf::ForOp>(results.front().getDefiningOp());
          loop->setAttr(tile_loop::kSpeculable, p.b.getUnitAttr());
          if (continuesPrevious)
            loop->setAttr(tile_loop::kContinuesPrevious, p.b.getUnitAttr());
          return loop;
        };
        scf::ForOp loop;
        if (segments) {
          auto advance = [&](Value from, Value to, bool masked, bool continues) {
            scf::ForOp l = walk(from, to, straight(masked), continues);
            state.assign(l.getResults().begin(), l.getResults().end());
          };
          Value from = segments->start;
          for (auto [i, segment] : llvm::enumerate(segments->straight)) {
            advance(from, segment.first, segment.second, /*continues=*/i > 0);
            from = segment.first;
          }
          loop = walk(from, segments->end, straight(/*masked=*/true, /*dropUnvisited=*/true),
                      /*continues=*/!segments->straight.empty());
        } else {
          loop = walk(c0, total, visiting, false);
        }
        ValueRange tileState = loop.getResults().take_back(state.size());
        state.assign(tileState.begin(), tileState.end());
        return state;
      },
      [&] { return unchanged; });
}

/// Where a query block's list lies in block_indices [batch, heads or 1, query blocks,
/// entries], and the index constants 0 and 1 both walks use.
struct BlockListPlace {
  Value list, head, queryBlock, entries, tilesPerBlock;
  Value c0, c1;
};

/// Every row has its own list (per-token selection, MoBA / NSA): visits the union of
/// the tile's lists in increasing block order, each block masked to the rows that
/// listed it. The next block is the least listed one above the last visited.
void walkPerTokenBlockLists(SoftmaxProgram &p, const KeyTileRange &tiles,
                            const BlockListPlace &place) {
  ImplicitLocOpBuilder &b = p.b;
  Value c0 = place.c0;
  // The key tiles of block `raw` (i32), clipped to the causal / window range.
  auto visitBlock = [&](Value raw, ValueRange carried) {
    Value first = arith::MulIOp::create(
        b, arith::IndexCastOp::create(b, b.getIndexType(), raw), place.tilesPerBlock);
    Value from = arith::MaxSIOp::create(b, first, tiles.lo);
    Value to = arith::MinSIOp::create(
        b, arith::AddIOp::create(b, first, place.tilesPerBlock), tiles.hi);
    return SmallVector<Value>(p.forLoop(from, to, carried, [&](Value t, ValueRange c) {
      return p.stepTile(t, c, /*masked=*/true);
    }));
  };
  auto entryColumn = [&](Value e) { // [bm] i32, -1 past the last query
    Value col = tile::LoadOp::create(b, p.tileType({p.bm, 1}, p.i32), place.list,
                                     ValueRange{p.batch, place.head, p.m0, e},
                                     b.getI32IntegerAttr(-1));
    return p.reduce(tile::Combiner::sum, col, 1);
  };
  Value none = arith::ConstantIntOp::create(b, p.i32, kNoBlock);
  auto nextAbove = [&](Value last) {
    return p.forLoop(c0, place.entries, ValueRange{none}, [&](Value e, ValueRange acc) {
      Value col = entryColumn(e);
      Value above = p.cmpI(P::sgt, col, p.splatOf({p.bm}, last));
      Value least =
          p.reduce(tile::Combiner::min, p.select(above, col, p.splatI32({p.bm}, kNoBlock)), 0);
      Value scalar = tensor::ExtractOp::create(b, least, ValueRange{});
      return SmallVector<Value>{arith::MinSIOp::create(b, acc[0], scalar)};
    })[0];
  };
  SmallVector<Value> init{nextAbove(arith::ConstantIntOp::create(b, p.i32, -1))};
  init.append(p.state.begin(), p.state.end());
  auto loop = scf::WhileOp::create(
      b, TypeRange(ValueRange(init)), init,
      [&](OpBuilder &nb, Location, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        scf::ConditionOp::create(b, p.cmpI(P::ne, args[0], none), args);
      },
      [&](OpBuilder &nb, Location, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value block = args[0];
        Value member = p.forLoop(
            c0, place.entries,
            ValueRange{p.splatOf({p.bm}, arith::ConstantIntOp::create(b, b.getI1Type(), 0))},
            [&](Value e, ValueRange acc) {
              Value hit = p.cmpI(P::eq, entryColumn(e), p.splatOf({p.bm}, block));
              return SmallVector<Value>{arith::OrIOp::create(b, acc[0], hit)};
            })[0];
        p.rowKeep = member;
        SmallVector<Value> next{nextAbove(block)};
        llvm::append_range(next, visitBlock(block, args.drop_front()));
        p.rowKeep = Value();
        scf::YieldOp::create(b, next);
      });
  p.state.assign(loop.getResults().begin() + 1, loop.getResults().end());
}

/// Whole query blocks share a list: one flat loop over (entry, tile of its block), so
/// that the next tile's copies can start while this one computes. Its loads read a
/// clamped entry and an in-range tile, whatever it holds; a tile that is not to be
/// visited (-1, a repeat, outside causal / window bounds) is loaded but not applied.
void walkQueryBlockLists(SoftmaxProgram &p, const KeyTileRange &tiles,
                         const BlockListPlace &place) {
  ImplicitLocOpBuilder &b = p.b;
  attn::AttentionOp op = p.op;
  Value c0 = place.c0, c1 = place.c1;
  Value tilesPerBlock = place.tilesPerBlock;
  Value lastEntry = arith::SubIOp::create(b, place.entries, c1);
  auto entryAt = [&](Value e) {
    return memref::LoadOp::create(b, place.list,
                                  ValueRange{p.batch, place.head, place.queryBlock, e})
        .getResult();
  };
  auto cmp = [&](P pred, Value x, Value y) { return p.cmpI(pred, x, y); };
  auto both = [&](Value x, Value y) { return arith::AndIOp::create(b, x, y).getResult(); };
  Value falseBit = arith::ConstantIntOp::create(b, b.getI1Type(), 0);
  Value trueBit = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
  Value noBlock = arith::ConstantIntOp::create(b, p.i32, -1);
  // One pass over the list: whether its blocks ascend (-1 anywhere) — as top-k
  // selections and BlockMasks give them, then no repeats are possible and the per-tile
  // search for an earlier equal entry is skipped — and where its last listed entry is,
  // so trailing -1 padding costs no iterations. And, for a list that ascends with no -1
  // before its last listed entry (its tiles ascend, j by j), how many of its tiles lie
  // before each of the bounds lo <= fullLo <= fullHi <= hi: the walk's segments.
  // Counted in i32 (a list has fewer than 2^31 tiles): the scan's values are live in
  // a warp-specialised kernel's producer too, which has few registers.
  // One stage prefetches nothing: the branchy loop alone (a GPU reads its entries an
  // iteration early instead: tessera-tgpu-read-ahead).
  bool segmented = p.config.getNumStages() >= 2;
  SmallVector<Value> bounds;
  Value tilesPerBlock32, zero32;
  SmallVector<Value> scanInit{noBlock, trueBit, c0};
  if (segmented) {
    for (Value bound : {tiles.lo, tiles.fullLo, tiles.fullHi, tiles.hi})
      bounds.push_back(p.toI32(bound));
    tilesPerBlock32 = p.toI32(tilesPerBlock);
    zero32 = arith::ConstantIntOp::create(b, p.i32, 0);
    scanInit.append({falseBit, falseBit});
    scanInit.append(bounds.size(), zero32);
  }
  auto tilesBefore = [&](Value raw, Value bound) { // of block `raw`, before tile `bound`
    Value first = arith::MulIOp::create(b, raw, tilesPerBlock32);
    return arith::MinSIOp::create(
        b, arith::MaxSIOp::create(b, arith::SubIOp::create(b, bound, first), zero32),
        tilesPerBlock32);
  };
  ValueRange scan = p.forLoop(c0, place.entries, scanInit, [&](Value e, ValueRange acc) {
    Value x = entryAt(e);
    Value listed = cmp(P::sgt, x, noBlock);
    Value inOrder = arith::OrIOp::create(b, arith::XOrIOp::create(b, listed, trueBit),
                                         cmp(P::sgt, x, acc[0]));
    SmallVector<Value> next{p.select(listed, x, acc[0]), both(acc[1], inOrder),
                            p.select(listed, arith::AddIOp::create(b, e, c1), acc[2])};
    if (!segmented)
      return next;
    Value unlisted = arith::XOrIOp::create(b, listed, trueBit);
    next.push_back(arith::OrIOp::create(b, acc[3], unlisted));      // a -1 seen
    next.push_back(arith::OrIOp::create(b, acc[4], both(listed, acc[3]))); // listed after
    for (auto [i, bound] : llvm::enumerate(bounds))
      next.push_back(arith::AddIOp::create(
          b, acc[5 + i], p.select(listed, tilesBefore(x, bound), zero32)));
    return next;
  });
  Value ascending = scan[1];
  Value total = arith::MulIOp::create(b, scan[2], tilesPerBlock);
  std::optional<ListSegments> segments;
  if (segmented) {
    Value straight = both(ascending, arith::XOrIOp::create(b, scan[4], trueBit));
    auto onlyIfStraight = [&](Value count) { return p.select(straight, count, c0); };
    auto count = [&](unsigned i) {
      return arith::IndexCastOp::create(b, b.getIndexType(), scan[5 + i]).getResult();
    };
    Value below = count(0), whole = count(1), wholeEnd = count(2), end = count(3);
    // As few loops as the bounds need (each is a step in the program, its registers in
    // a warp-specialised producer): a mask_mod masks every tile, so the last loop alone
    // walks an ascending list's range (one step, as without segments); without a window
    // the bounds cut no tile before the whole ones (below = whole = 0).
    ListSegments s;
    if (op.hasMaskMod()) {
      s.start = onlyIfStraight(below);
    } else if (op.getWindowAttr()) {
      s.start = onlyIfStraight(below);
      s.straight.push_back({onlyIfStraight(whole), true});
      s.straight.push_back({onlyIfStraight(wholeEnd), false});
    } else {
      s.start = onlyIfStraight(whole);
      s.straight.push_back({onlyIfStraight(wholeEnd), false});
    }
    s.end = p.select(straight, end, total);
    segments = std::move(s);
  }
  auto entryIndex = [&](Value j) {
    return arith::MinSIOp::create(b, arith::DivSIOp::create(b, j, tilesPerBlock), lastEntry)
        .getResult();
  };
  auto fetch = [&](Value j) { return entryAt(entryIndex(j)); };
  auto choose = [&](Value j, Value raw, bool tileOnly) {
    Value e = entryIndex(j);
    Value t = arith::AddIOp::create(
        b,
        arith::MulIOp::create(b, arith::IndexCastOp::create(b, b.getIndexType(), raw),
                              tilesPerBlock),
        arith::RemSIOp::create(b, j, tilesPerBlock));
    Value inRange = both(cmp(P::sgt, raw, noBlock),
                         both(cmp(P::sge, t, tiles.lo), cmp(P::slt, t, tiles.hi)));
    auto tileStart = [&] {
      return arith::MulIOp::create(b, p.select(inRange, t, tiles.lo), p.bnIdx).getResult();
    };
    if (tileOnly)
      return ListedKeyTile{tileStart(), Value(), Value()};
    // A block listed twice is still visited once: skip repeats of earlier entries.
    auto seenBefore = [&] {
      return SmallVector<Value>(
          p.forLoop(c0, e, ValueRange{falseBit}, [&](Value f, ValueRange acc) {
            return SmallVector<Value>{
                arith::OrIOp::create(b, acc[0], cmp(P::eq, entryAt(f), raw))};
          }));
    };
    Value seen =
        p.ifElse(ascending, [&] { return SmallVector<Value>{falseBit}; }, seenBefore)[0];
    // Tiles that causal / window bounds keep whole need no mask, unless mask_mod.
    Value whole = op.hasMaskMod()
                      ? falseBit
                      : both(cmp(P::sge, t, tiles.fullLo), cmp(P::slt, t, tiles.fullHi));
    return ListedKeyTile{tileStart(), both(inRange, arith::XOrIOp::create(b, seen, trueBit)),
                         whole};
  };
  walkListedKeyTiles(p, total, fetch, choose, segments);
}
} // namespace

void tessera::walkBlockLists(SoftmaxProgram &p, const KeyTileRange &tiles) {
  ImplicitLocOpBuilder &b = p.b;
  int64_t bq = p.op.getBlockQAttr().getInt(), bk = p.op.getBlockKAttr().getInt();
  BlockListPlace place;
  Value c0 = place.c0 = p.cIndex(0), c1 = place.c1 = p.cIndex(1);
  place.list = p.buffers.lookup(p.op.getBlockIndices());
  Value listHeads = memref::DimOp::create(b, place.list, 1);
  Value sharedList = arith::CmpIOp::create(b, P::eq, listHeads, c1);
  place.head = arith::SelectOp::create(b, sharedList, c0, p.head);
  place.queryBlock = arith::DivSIOp::create(b, p.m0, p.cIndex(bq));
  place.tilesPerBlock = p.cIndex(bk / p.bn);
  place.entries = memref::DimOp::create(b, place.list, 3);
  if (bq == 1)
    walkPerTokenBlockLists(p, tiles, place);
  else
    walkQueryBlockLists(p, tiles, place);
}

// The classified tiles, as listed: entry 2 t + 1 for a whole tile, 2 t for a partial
// one; the place after the last entry is unwritten, so the tile read is clamped too.
void tessera::walkClassifiedKeyTiles(SoftmaxProgram &p, const ClassifiedKeyTiles &classified) {
  ImplicitLocOpBuilder &b = p.b;
  Value c0 = p.cIndex(0), c1 = p.cIndex(1), c2 = p.cIndex(2);
  SmallVector<Value> at{classified.perBatch ? p.batch : c0, classified.perHead ? p.head : c0,
                        p.qTileIdx};
  Value count = arith::IndexCastOp::create(
      b, b.getIndexType(), memref::LoadOp::create(b, classified.counts, at));
  Value lastEntry = arith::MaxSIOp::create(b, arith::SubIOp::create(b, count, c1), c0);
  Value lastTile = arith::MaxSIOp::create(
      b, arith::SubIOp::create(b, arith::CeilDivSIOp::create(b, p.nk, p.bnIdx), c1), c0);
  auto fetch = [&](Value j) {
    SmallVector<Value> idx(at);
    idx.push_back(arith::MinSIOp::create(b, j, lastEntry));
    return memref::LoadOp::create(b, classified.lists, idx).getResult();
  };
  walkListedKeyTiles(p, count, fetch, [&](Value j, Value listed, bool) {
    Value entry = arith::IndexCastOp::create(b, b.getIndexType(), listed);
    Value t = arith::MinSIOp::create(
        b, arith::MaxSIOp::create(b, arith::DivSIOp::create(b, entry, c2), c0), lastTile);
    return ListedKeyTile{arith::MulIOp::create(b, t, p.bnIdx), Value(),
                         p.cmpI(P::eq, arith::RemSIOp::create(b, entry, c2), c1)};
  });
}
