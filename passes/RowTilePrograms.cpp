//===- RowTilePrograms.cpp - row permutations: LSH sort, gather, scatter --===//
//
// HyperAttention's sorting (SEMANTICS.md §3) as tile programs. attn.lsh_sort is a
// stable counting sort per (head, batch): bucket counts, their exclusive prefix (a
// product with a triangular matrix), then each row's rank = its bucket's start + the
// rows of the same bucket before it (a strictly-lower-triangular product within a tile
// plus a running count across tiles). attn.gather_rows / attn.scatter_rows move one row
// per step with bounded loads and stores, so out-of-range indices read zeros or are
// dropped without a check of their own.
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
  TileBuilder t(b);
  Value n = t.dim(x, 2);
  t.grid({t.dim(x, 1), t.dim(x, 0)}, config, [&](ArrayRef<Value> id) {
    Value h = id[0], bb = id[1], c0 = t.cIndex(0);
    Value r = t.loadF32(proj, {d, bits}, {c0, c0});
    SmallVector<float> pow2;
    for (int64_t i = 0; i < bits; ++i)
      pow2.push_back(float(int64_t(1) << i));
    auto pow2Type = t.tileType({bits}, t.f32);
    Value weights = t.broadcast(
        arith::ConstantOp::create(b, pow2Type, DenseElementsAttr::get(pow2Type, ArrayRef(pow2))),
        0, bm);
    Value bucketIds = t.broadcast(t.range(c0, buckets), 0, bm); // [bm, buckets]
    Value nI32 = t.toI32(n);
    // One-hot [bm, buckets] (f32) of the Gray-ordered bucket of rows m0 .. m0 + bm - 1;
    // rows past the end have none.
    auto oneHot = [&](Value m0) {
      Value projected =
          t.dot(t.loadF32(x, {bm, d}, {bb, h, m0, c0}), r, t.splatF32({bm, bits}, 0));
      Value positive = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, projected,
                                             t.splatF32({bm, bits}, 0));
      Value code = arith::FPToSIOp::create(
          b, t.tileType({bm}, t.i32),
          t.reduce(tile::Combiner::sum,
                   t.select(positive, weights, t.splatF32({bm, bits}, 0)), 1));
      // The position of `code` in the reflected Gray sequence g(n) = n ^ (n >> 1): the
      // prefix xor of its bits (shifts 1, 2, 4, ... cover `bits` bits), so neighbouring
      // buckets differ in one hyperplane.
      Value rank = code;
      for (int32_t s = 1; s < bits; s <<= 1)
        rank = arith::XOrIOp::create(b, rank,
                                     arith::ShRUIOp::create(b, rank, t.splatI32({bm}, s)));
      Value valid = t.cmpI(arith::CmpIPredicate::slt, t.range(m0, bm), t.splatOf({bm}, nI32));
      Value hit = arith::AndIOp::create(
          b, t.cmpI(arith::CmpIPredicate::eq, t.broadcast(rank, 1, buckets), bucketIds),
          t.broadcast(valid, 1, buckets));
      return t.select(hit, t.splatF32({bm, buckets}, 1), t.splatF32({bm, buckets}, 0));
    };
    Value tiles = t.ceilDiv(n, bm), bmIdx = t.cIndex(bm);
    auto tileStart = [&](Value i) { return arith::MulIOp::create(b, i, bmIdx).getResult(); };
    Value counts = t.forLoop(c0, tiles, {t.splatF32({buckets}, 0)},
                             [&](Value i, ValueRange carried) -> SmallVector<Value> {
                               Value hot = oneHot(tileStart(i));
                               return {arith::AddFOp::create(
                                   b, carried[0], t.reduce(tile::Combiner::sum, hot, 0))};
                             })[0];
    // Exclusive prefix over buckets: start[j] = sum_{i < j} counts[i] (exact in f32 up
    // to 2^24 rows).
    auto strictlyBefore = [&](int64_t rows, int64_t cols) {
      Value i = t.broadcast(t.range(c0, rows), 1, cols), j = t.broadcast(t.range(c0, cols), 0, rows);
      return t.select(t.cmpI(arith::CmpIPredicate::slt, i, j), t.splatF32({rows, cols}, 1),
                      t.splatF32({rows, cols}, 0));
    };
    Value start = t.reduce(
        tile::Combiner::sum,
        t.dot(t.broadcast(counts, 0, 1), strictlyBefore(buckets, buckets),
              t.splatF32({1, buckets}, 0)),
        0);
    // Earlier rows of the same tile: the transpose of strictlyBefore, i > j.
    Value earlier = t.trans(strictlyBefore(bm, bm));
    t.forLoop(c0, tiles, {start}, [&](Value i, ValueRange carried) -> SmallVector<Value> {
      Value m0 = tileStart(i), hot = oneHot(m0);
      Value before = arith::AddFOp::create(
          b, t.dot(earlier, hot, t.splatF32({bm, buckets}, 0)), t.broadcast(carried[0], 0, bm));
      Value pos = arith::FPToSIOp::create(
          b, t.tileType({bm}, t.i32),
          t.reduce(tile::Combiner::sum, arith::MulFOp::create(b, hot, before), 1));
      // perm[pos] = row, one row at a time.
      Value end = arith::MinSIOp::create(b, arith::AddIOp::create(b, m0, bmIdx), n);
      t.forLoop(m0, end, {}, [&](Value row, ValueRange) -> SmallVector<Value> {
        Value local = arith::SubIOp::create(b, row, m0);
        Value at = arith::IndexCastOp::create(
            b, b.getIndexType(), tensor::ExtractOp::create(b, pos, ValueRange{local}));
        memref::StoreOp::create(b, t.toI32(row), perm, ValueRange{bb, h, at});
        return {};
      });
      return {arith::AddFOp::create(b, carried[0], t.reduce(tile::Combiner::sum, hot, 0))};
    });
  });
  return success();
}
