//===- TgpuReduceToNvvm.cpp - row reductions within a warp ----------------===//
//
// The reduction family of tessera-convert-tgpu-to-nvvm (docs/RationaleTgpu.md, step 9):
// a tile.reduce along the rows of an accumulator or row-span tile into its row slice.
// An accumulator row's values are in one quad of lanes: each thread folds its slots of
// the row, then two xor shuffles (lanes 1 and 2 away) combine the quad. A row-span
// thread holds its rows whole: the fold alone. Reductions that cross warps (a row or
// column tile to one value, an accumulator over its rows) go through shared memory and
// stay tessera-tile-to-gpu's (Elementwise.cpp) until scratch buffers are ops; they
// share combineValues / combineLanes with this file.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/TgpuToNvvm.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

Value tessera::gpu::combineValues(OpBuilder &b, Location loc, tile::Combiner kind, Value x,
                                  Value y) {
  bool isFloat = isa<FloatType>(x.getType());
  switch (kind) {
  case tile::Combiner::sum:
    return isFloat ? Value(arith::AddFOp::create(b, loc, x, y))
                   : Value(arith::AddIOp::create(b, loc, x, y));
  case tile::Combiner::max:
    return isFloat ? Value(arith::MaxNumFOp::create(b, loc, x, y))
                   : Value(arith::MaxSIOp::create(b, loc, x, y));
  case tile::Combiner::min:
    return isFloat ? Value(arith::MinimumFOp::create(b, loc, x, y))
                   : Value(arith::MinSIOp::create(b, loc, x, y));
  }
  return {};
}

Value tessera::gpu::combineLanes(OpBuilder &b, Location loc, tile::Combiner kind, Value v,
                                 ArrayRef<int64_t> offsets) {
  Value width = arith::ConstantIntOp::create(b, loc, b.getI32Type(), 32);
  for (int64_t offset : offsets) {
    Value off = arith::ConstantIntOp::create(b, loc, b.getI32Type(), offset);
    Value other = ::mlir::gpu::ShuffleOp::create(b, loc, v, off, width,
                                                 ::mlir::gpu::ShuffleMode::XOR)
                      .getShuffleResult();
    v = combineValues(b, loc, kind, v, other);
  }
  return v;
}

namespace {
/// Whether `op` reduces the rows of an accumulator or row-span tile into its row slice:
/// the reductions a warp makes alone.
bool reducesRowsInWarp(tile::ReduceOp op) {
  std::optional<Layout> in = layoutOfType(op.getInput().getType());
  std::optional<Layout> out = layoutOfType(op.getType());
  return in && out && reducesWithinWarp(*in, op.getAxis()) &&
         out->kind == LayoutKind::Row && out->mTiles == in->mTiles;
}

struct LowerRowReduce : OpConversionPattern<tile::ReduceOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tile::ReduceOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (!reducesRowsInWarp(op))
      return rewriter.notifyMatchFailure(op, "not a reduction within a warp's rows");
    Layout in = *layoutOfType(op.getInput().getType());
    ValueRange slots = adaptor.getInput();
    tile::Combiner kind = op.getCombiner();
    Location loc = op.getLoc();
    auto fold = [&](Value acc, Value v) {
      return acc ? combineValues(rewriter, loc, kind, acc, v) : v;
    };
    SmallVector<Value> rows;
    for (int64_t row = 0; row < 2 * in.mTiles; ++row) {
      Value acc;
      if (in.kind == LayoutKind::RowSpan) {
        for (int64_t c = 0; c < in.cols; ++c)
          acc = fold(acc, slots[row * in.cols + c]);
        rows.push_back(acc);
        continue;
      }
      // Slots of m-tile row / 2 whose row half (g or g + 8) is row % 2; the 4 lanes of
      // a quad hold the same row.
      int64_t perTile = in.cols / 2;
      for (int64_t s = (row / 2) * perTile; s < (row / 2 + 1) * perTile; ++s)
        if (((s % 4) >> 1) == row % 2)
          acc = fold(acc, slots[s]);
      rows.push_back(combineLanes(rewriter, loc, kind, acc, {1, 2}));
    }
    rewriter.replaceOpWithMultiple(op, {rows});
    return success();
  }
};

void populate(const TypeConverter &types, RewritePatternSet &patterns,
              ConversionTarget &target) {
  target.addIllegalOp<tile::ReduceOp>();
  patterns.add<LowerRowReduce>(types, patterns.getContext());
}

LogicalResult check(Operation *op) {
  auto reduce = dyn_cast<tile::ReduceOp>(op);
  if (!reduce || reducesRowsInWarp(reduce))
    return success();
  return op->emitOpError("has no per-thread form: only a reduction along the rows of an "
                         "accumulator or row-span tile into its row slice stays within a "
                         "warp (tessera-tile-to-gpu lowers those across warps)");
}
} // namespace

TileOpFamily tessera::gpu::reduceFamily() { return {populate, check}; }
