//===- RowTilePrograms.cpp - row permutations: LSH sort, gather, scatter --===//
//
// HyperAttention's sorting (SEMANTICS.md §3) as tile programs. attn.lsh_sort is a
// stable counting sort per (head, batch) in four grids, built from products so that
// tensor cores run it: every tile's bucket counts (in parallel), their exclusive prefix
// over tiles and buckets (one program per head, triangular products over chunks of
// tiles), every row's rank = its tile's offset for its bucket + the earlier rows of
// that bucket in the tile (in parallel), then perm[rank[i]] = i. attn.gather_rows /
// attn.scatter_rows move one row per step with bounded loads and stores, so out-of-range
// indices read zeros or are dropped without a check of their own.
//
//===----------------------------------------------------------------------===//
#include "passes/TilePrograms.h"

#include "passes/TileBuilder.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace tessera;

namespace {
/// How a row-moving program addresses a [B, H, N(, D)] buffer and its indices.
struct RowMover : TileBuilder {
  Value indices;
  int64_t width; // D, or 0 for [B, H, N] buffers (one element per row)

  RowMover(ImplicitLocOpBuilder &b, Value indices, Value rows)
      : TileBuilder(b), indices(indices) {
    auto type = cast<MemRefType>(rows.getType());
    width = type.getRank() == 4 ? type.getDimSize(3) : 0;
  }

  /// The tile shape of one row.
  SmallVector<int64_t> rowShape() { return {width ? width : 1}; }
  /// Buffer coordinates of row `row` of (batch, head).
  SmallVector<Value> at(Value batch, Value head, Value row) {
    SmallVector<Value> c{batch, head, row};
    if (width)
      c.push_back(cIndex(0));
    return c;
  }
  /// Index `i` of (batch, head): indices are [M] or [B or 1, H or 1, M] (size-1 dims
  /// broadcast).
  Value indexAt(Value batch, Value head, Value i) {
    Value raw;
    if (cast<MemRefType>(indices.getType()).getRank() == 1) {
      raw = memref::LoadOp::create(b, indices, ValueRange{i});
    } else {
      Value one = cIndex(1), zero = cIndex(0);
      Value bi = select(cmpI(arith::CmpIPredicate::eq, dim(indices, 0), one), zero, batch);
      Value hi = select(cmpI(arith::CmpIPredicate::eq, dim(indices, 1), one), zero, head);
      raw = memref::LoadOp::create(b, indices, ValueRange{bi, hi, i});
    }
    return arith::IndexCastOp::create(b, b.getIndexType(), raw);
  }
  /// For each of `count` rows in tiles of `bm`, runs `body(batch, head, row)`.
  void forEachRow(Value count, Value heads, Value batches, int64_t bm,
                  tile::ConfigAttr config,
                  llvm::function_ref<void(Value, Value, Value)> body) {
    grid({ceilDiv(count, bm), heads, batches}, config, [&](ArrayRef<Value> id) {
      Value m0 = arith::MulIOp::create(b, id[0], cIndex(bm));
      Value end = arith::MinSIOp::create(b, arith::AddIOp::create(b, m0, cIndex(bm)), count);
      forLoop(m0, end, {}, [&](Value row, ValueRange) -> SmallVector<Value> {
        body(id[2], id[1], row);
        return {};
      });
    });
  }
};
} // namespace

static LogicalResult checkStaticWidth(Operation *op, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  if (type.getRank() == 4 && type.isDynamicDim(3))
    return op->emitError("needs a static last dim to move rows as tiles");
  return success();
}

LogicalResult tessera::buildGatherRowsTileProgram(ImplicitLocOpBuilder &b,
                                                  attn::GatherRowsOp op,
                                                  const IRMapping &buffers,
                                                  tile::ConfigAttr config) {
  Value x = buffers.lookup(op.getInput()), out = buffers.lookup(op.getOutput());
  if (failed(checkStaticWidth(op, x)))
    return failure();
  RowMover p(b, buffers.lookup(op.getIndices()), x);
  Type elem = cast<MemRefType>(x.getType()).getElementType();
  p.forEachRow(p.dim(out, 2), p.dim(out, 1), p.dim(out, 0), config.getBlockM(), config,
               [&](Value batch, Value head, Value i) {
                 Value src = p.indexAt(batch, head, i);
                 Value row = tile::LoadOp::create(b, p.tileType(p.rowShape(), elem), x,
                                                  p.at(batch, head, src), nullptr);
                 tile::StoreOp::create(b, row, out, p.at(batch, head, i));
               });
  return success();
}

LogicalResult tessera::buildScatterRowsTileProgram(ImplicitLocOpBuilder &b,
                                                   attn::ScatterRowsOp op,
                                                   const IRMapping &buffers,
                                                   tile::ConfigAttr config) {
  Value y = buffers.lookup(op.getInput()), out = buffers.lookup(op.getOutput());
  if (failed(checkStaticWidth(op, y)))
    return failure();
  RowMover p(b, buffers.lookup(op.getIndices()), y);
  auto elem = cast<MemRefType>(y.getType()).getElementType();
  int64_t bm = config.getBlockM();
  // Rows no index names are zero: clear the output first.
  SmallVector<int64_t> tileShape{bm};
  if (p.width)
    tileShape.push_back(p.width);
  auto zeroType = p.tileType(tileShape, elem);
  p.grid({p.ceilDiv(p.dim(out, 2), bm), p.dim(out, 1), p.dim(out, 0)}, config,
         [&](ArrayRef<Value> id) {
           Value zero = arith::ConstantOp::create(b, zeroType,
                                                  cast<TypedAttr>(b.getZeroAttr(zeroType)));
           Value m0 = arith::MulIOp::create(b, id[0], p.cIndex(bm));
           SmallVector<Value> at{id[2], id[1], m0};
           if (p.width)
             at.push_back(p.cIndex(0));
           tile::StoreOp::create(b, zero, out, at);
         });
  p.forEachRow(p.dim(y, 2), p.dim(y, 1), p.dim(y, 0), bm, config,
               [&](Value batch, Value head, Value i) {
                 Value row = tile::LoadOp::create(b, p.tileType(p.rowShape(), elem), y,
                                                  p.at(batch, head, i), nullptr);
                 tile::StoreOp::create(b, row, out,
                                       p.at(batch, head, p.indexAt(batch, head, i)));
               });
  return success();
}

LogicalResult tessera::buildLshSortTileProgram(ImplicitLocOpBuilder &b, attn::LshSortOp op,
                                               const IRMapping &buffers,
                                               tile::ConfigAttr config) {
  Value x = buffers.lookup(op.getInput()), proj = buffers.lookup(op.getProjection());
  Value perm = buffers.lookup(op.getPerm());
  auto xType = cast<MemRefType>(x.getType());
  int64_t d = xType.getDimSize(3), bits = cast<MemRefType>(proj.getType()).getDimSize(1);
  if (ShapedType::isDynamic(d) || ShapedType::isDynamic(bits))
    return op.emitError("needs a static head dim and number of hash bits to be tiled");
  // One column per bucket in the counting tiles.
  constexpr int64_t kMaxBits = 10;
  if (bits > kMaxBits)
    return op.emitError("sorts by at most ") << kMaxBits << " hash bits, got " << bits;
  int64_t buckets = int64_t(1) << bits, bm = config.getBlockM();
  // Bucket slots of the counting tiles: the per-tile count product has one row per slot,
  // at least 16 per warp; slots past the buckets stay empty.
  int64_t slots = std::max<int64_t>(buckets, 16 * config.getNumWarps());
  // A tile's bucket counts (at most bm) are product operands: exact in 16 bits up to 256.
  if (bm > 256)
    return op.emitError("sorts in tiles of at most 256 rows, got block_m = ") << bm;
  // Hash columns padded to 16, what a GPU product reads a right operand by (R reads
  // zeros there, weighted 0).
  int64_t cols = llvm::alignTo(bits, 16);
  TileBuilder t(b);
  // Products run on the rows' type when it is 16-bit: every operand below is exact in it
  // (R excepted: rounded to the rows' type, as the rows are), accumulated in f32.
  Type elem = xType.getElementType();
  Type operandType = elem.isBF16() || elem.isF16() ? elem : t.f32;
  auto asOperand = [&](Value f32Tile) -> Value {
    if (operandType == t.f32)
      return f32Tile;
    auto shape = cast<RankedTensorType>(f32Tile.getType()).getShape();
    return arith::TruncFOp::create(b, t.tileType(shape, operandType), f32Tile);
  };
  auto zeros = [&](int64_t m, int64_t n) { return t.splatF32({m, n}, 0); };
  auto toF32 = [&](Value ints) {
    auto shape = cast<RankedTensorType>(ints.getType()).getShape();
    return arith::SIToFPOp::create(b, t.tileType(shape, t.f32), ints).getResult();
  };
  auto toI32 = [&](Value floats) {
    auto shape = cast<RankedTensorType>(floats.getType()).getShape();
    return arith::FPToSIOp::create(b, t.tileType(shape, t.i32), floats).getResult();
  };
  // 1 where `pred`(row, col) holds, else 0: [m, n] f32.
  auto triangle = [&](arith::CmpIPredicate pred, int64_t m, int64_t n) {
    Value c0 = t.cIndex(0);
    Value i = t.broadcast(t.range(c0, m), 1, n), j = t.broadcast(t.range(c0, n), 0, m);
    return t.select(t.cmpI(pred, i, j), t.splatF32({m, n}, 1), zeros(m, n));
  };
  // The position of hash code `code` in the reflected Gray sequence g(n) = n ^ (n >> 1):
  // the prefix xor of its bits (shifts 1, 2, 4, ... cover `bits` bits), so neighbouring
  // buckets differ in one hyperplane.
  auto grayPosition = [&](Value code) {
    auto shape = cast<RankedTensorType>(code.getType()).getShape();
    for (int32_t s = 1; s < bits; s <<= 1)
      code = arith::XOrIOp::create(b, code, arith::ShRUIOp::create(b, code, t.splatI32(shape, s)));
    return code;
  };
  // Hash column j weighs 2^j, the padding columns 0 (computed: a GPU kernel has no
  // constant arrays): [cols] f32.
  auto columnWeights = [&]() {
    Value column = t.range(t.cIndex(0), cols);
    Value pow2 = t.select(t.cmpI(arith::CmpIPredicate::slt, column, t.splatI32({cols}, bits)),
                          arith::ShLIOp::create(b, t.splatI32({cols}, 1), column),
                          t.splatI32({cols}, 0));
    return toF32(pow2);
  };
  // 1 where row m0 + r of (batch, head) lies on the positive side of hyperplane c:
  // [bm, cols] f32.
  auto signs = [&](Value batch, Value head, Value m0) {
    Value c0 = t.cIndex(0);
    Value r = asOperand(t.loadF32(proj, {d, cols}, {c0, c0}));
    Value projected = t.dot(t.loadOperand(x, {bm, d}, {batch, head, m0, c0}), r, zeros(bm, cols));
    Value positive =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, projected, zeros(bm, cols));
    return t.select(positive, t.splatF32({bm, cols}, 1), zeros(bm, cols));
  };
  Value n = t.dim(x, 2), nI32 = t.toI32(n);
  auto rowsValid = [&](Value m0) {
    return t.cmpI(arith::CmpIPredicate::slt, t.range(m0, bm), t.splatOf({bm}, nI32));
  };
  Value tiles = t.ceilDiv(n, bm), bmIdx = t.cIndex(bm);
  auto tileStart = [&](Value i) { return arith::MulIOp::create(b, i, bmIdx).getResult(); };
  auto dyn = ShapedType::kDynamic;
  auto perTile = [&](Value batches, Value heads) {
    return memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn, slots}, t.i32),
                                   ValueRange{batches, heads, tiles});
  };
  Value batches = t.dim(x, 0), heads = t.dim(x, 1);

  // A stable counting sort in four parallel steps. 1: each tile's bucket counts.
  Value tileCounts = perTile(batches, heads);
  t.grid({tiles, heads, batches}, config, [&](ArrayRef<Value> id) {
    Value m0 = tileStart(id[0]), c0 = t.cIndex(0);
    // Codes along the columns (the tile's rows transposed), repeated on every bucket's
    // row: weights times the signs, so that each bucket's count is a row sum.
    Value weightRows = asOperand(t.broadcast(columnWeights(), 0, slots));
    Value codes = toI32(t.dot(weightRows, t.trans(asOperand(signs(id[2], id[1], m0))),
                              zeros(slots, bm)));
    Value hit = arith::AndIOp::create(
        b,
        t.cmpI(arith::CmpIPredicate::eq, grayPosition(codes),
               t.broadcast(t.range(c0, slots), 1, bm)),
        t.broadcast(rowsValid(m0), 0, slots));
    Value count = t.reduce(tile::Combiner::sum,
                           t.select(hit, t.splatI32({slots, bm}, 1), t.splatI32({slots, bm}, 0)),
                           1);
    tile::StoreOp::create(b, count, tileCounts, ValueRange{id[2], id[1], id[0], c0});
  });

  // 2: per (head, batch), where each tile's rows of each bucket start: the bucket's start
  // (the counts of the buckets before it) plus its rows in earlier tiles, walking the
  // tiles in chunks of 64 or 16 per warp (an exclusive prefix is a strictly-lower-
  // triangular product).
  const int64_t kChunk = std::max<int64_t>(64, 16 * config.getNumWarps());
  Value tileOffsets = perTile(batches, heads);
  t.grid({heads, batches}, config, [&](ArrayRef<Value> id) {
    Value h = id[0], bb = id[1], c0 = t.cIndex(0);
    Value chunks = t.ceilDiv(tiles, kChunk), chunkIdx = t.cIndex(kChunk);
    auto chunkStart = [&](Value i) { return arith::MulIOp::create(b, i, chunkIdx).getResult(); };
    auto chunkAt = [&](Value buffer, Value i) {
      return tile::LoadOp::create(b, t.tileType({kChunk, slots}, t.i32), buffer,
                                  ValueRange{bb, h, chunkStart(i), c0}, nullptr)
          .getResult();
    };
    Value lower = asOperand(triangle(arith::CmpIPredicate::sgt, kChunk, kChunk));
    Value ones = asOperand(t.splatF32({kChunk, kChunk}, 1));
    // Totals so far, as identical rows (a product with ones sums a chunk's rows).
    Value totals = t.forLoop(c0, chunks, {zeros(kChunk, slots)},
                             [&](Value i, ValueRange carried) -> SmallVector<Value> {
                               Value counts = asOperand(toF32(chunkAt(tileCounts, i)));
                               tile::StoreOp::create(b, toI32(t.dot(lower, counts, carried[0])),
                                                     tileOffsets,
                                                     ValueRange{bb, h, chunkStart(i), c0});
                               return {t.dot(ones, counts, carried[0])};
                             })[0];
    // start[c] = the totals of buckets before c: the strictly upper triangle, one byte of
    // the totals at a time so that every operand is exact in 16 bits (sums up to 2^24
    // rows are exact in f32).
    Value upper = asOperand(triangle(arith::CmpIPredicate::slt, slots, slots));
    Value whole = toI32(totals);
    Value start = zeros(kChunk, slots);
    for (int32_t shift : {0, 8, 16}) {
      Value byte = arith::AndIOp::create(
          b, arith::ShRUIOp::create(b, whole, t.splatI32({kChunk, slots}, shift)),
          t.splatI32({kChunk, slots}, 255));
      Value part = t.dot(asOperand(toF32(byte)), upper, zeros(kChunk, slots));
      start = arith::AddFOp::create(
          b, start,
          arith::MulFOp::create(b, part, t.splatF32({kChunk, slots}, float(1 << shift))));
    }
    Value startI32 = toI32(start);
    t.forLoop(c0, chunks, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
      tile::StoreOp::create(b, arith::AddIOp::create(b, chunkAt(tileOffsets, i), startI32),
                            tileOffsets, ValueRange{bb, h, chunkStart(i), c0});
      return {};
    });
  });

  // 3: each row's rank: its tile's offset for its bucket plus the earlier rows of its
  // bucket in the tile (the strictly lower triangle times the one-hot rows).
  Value ranks = memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn}, t.i32),
                                        ValueRange{batches, heads, n});
  t.grid({tiles, heads, batches}, config, [&](ArrayRef<Value> id) {
    Value m0 = tileStart(id[0]), c0 = t.cIndex(0);
    Value weights = t.broadcast(columnWeights(), 0, bm);
    Value code = toI32(t.reduce(tile::Combiner::sum,
                                arith::MulFOp::create(b, signs(id[2], id[1], m0), weights), 1));
    Value hit = arith::AndIOp::create(
        b,
        t.cmpI(arith::CmpIPredicate::eq, t.broadcast(grayPosition(code), 1, slots),
               t.broadcast(t.range(c0, slots), 0, bm)),
        t.broadcast(rowsValid(m0), 1, slots));
    Value hot = t.select(hit, t.splatF32({bm, slots}, 1), zeros(bm, slots));
    Value offsets = tile::LoadOp::create(b, t.tileType({slots}, t.i32), tileOffsets,
                                         ValueRange{id[2], id[1], id[0], c0}, nullptr);
    Value lower = asOperand(triangle(arith::CmpIPredicate::sgt, bm, bm));
    Value before = t.dot(lower, asOperand(hot), t.broadcast(toF32(offsets), 0, bm));
    Value rank = toI32(t.reduce(tile::Combiner::sum, arith::MulFOp::create(b, hot, before), 1));
    tile::StoreOp::create(b, rank, ranks, ValueRange{id[2], id[1], m0});
  });

  // 4: perm[rank[i]] = i, one row at a time.
  RowMover p(b, ranks, perm);
  p.forEachRow(n, heads, batches, bm, config, [&](Value batch, Value head, Value i) {
    Value row = t.splatOf({1}, t.toI32(i));
    tile::StoreOp::create(b, row, perm, p.at(batch, head, p.indexAt(batch, head, i)));
  });
  return success();
}
