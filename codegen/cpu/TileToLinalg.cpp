//===- TileToLinalg.cpp - tile programs to loops and linalg (CPU) ---------===//
//
// The CPU runs a grid as plain loops and each tile op as its linalg / tensor
// counterpart; one-shot bufferization then places the tiles in memory. Slow and exact:
// this target exists so that every variant is tested where there is no GPU.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/Passes.h"

#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <limits>

namespace tessera::cpu {
#define GEN_PASS_DEF_TILETOLINALG
#include "codegen/cpu/Passes.h.inc"
} // namespace tessera::cpu

using namespace mlir;
using namespace tessera;

namespace {

/// Indices of tile element `local` in a buffer, given the tile's origin: the tile spans
/// the buffer's trailing dims. Also returns whether every index is inside the buffer.
static std::pair<SmallVector<Value>, Value>
bufferIndices(ImplicitLocOpBuilder &b, Value buffer, ValueRange origin, ValueRange local) {
  auto type = cast<MemRefType>(buffer.getType());
  int64_t lead = type.getRank() - int64_t(local.size());
  SmallVector<Value> indices(origin.begin(), origin.end());
  Value inBounds = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
  for (int64_t d = 0; d < type.getRank(); ++d) {
    if (d >= lead)
      indices[d] = arith::AddIOp::create(b, indices[d], local[d - lead]);
    // Unsigned comparison also rejects negative indices.
    Value size = memref::DimOp::create(b, buffer, d);
    inBounds = arith::AndIOp::create(
        b, inBounds, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, indices[d], size));
  }
  return {indices, inBounds};
}

/// The table entry named at tile position `local` by one index tile per dimension.
static SmallVector<Value> entriesAt(ImplicitLocOpBuilder &b, ValueRange indexTiles,
                                    ValueRange local) {
  SmallVector<Value> at;
  for (Value tileOfIndices : indexTiles)
    at.push_back(arith::IndexCastOp::create(b, b.getIndexType(),
                                            tensor::ExtractOp::create(b, tileOfIndices, local)));
  return at;
}

/// A loop nest over every element of a tile of `tileType`, row-major; `body` gets the
/// element's position in the tile.
static void forEachElement(ImplicitLocOpBuilder &b, Type tileType,
                           function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body) {
  auto type = cast<RankedTensorType>(tileType);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  SmallVector<Value> lbs(type.getRank(), zero), steps(type.getRank(), one), ubs;
  for (int64_t size : type.getShape())
    ubs.push_back(arith::ConstantIndexOp::create(b, size));
  scf::buildLoopNest(b, b.getLoc(), lbs, ubs, steps,
                     [&](OpBuilder &nb, Location loc, ValueRange local) {
                       ImplicitLocOpBuilder ib(loc, nb);
                       body(ib, local);
                     });
}

static Value paddingValue(ImplicitLocOpBuilder &b, TypedAttr padding, Type elementType) {
  if (!padding)
    padding = cast<TypedAttr>(b.getZeroAttr(elementType));
  return arith::ConstantOp::create(b, padding);
}

/// Reads `buffer[indices]`, or `padding` where `inBounds` is false.
static Value guardedLoad(ImplicitLocOpBuilder &b, Value buffer, ValueRange indices,
                         Value inBounds, Value padding) {
  auto ifOp = scf::IfOp::create(
      b, inBounds,
      [&](OpBuilder &nb, Location loc) {
        scf::YieldOp::create(nb, loc, memref::LoadOp::create(nb, loc, buffer, indices)
                                          .getResult());
      },
      [&](OpBuilder &nb, Location loc) { scf::YieldOp::create(nb, loc, padding); });
  return ifOp.getResult(0);
}

struct LowerLoad : OpRewritePattern<tile::LoadOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::LoadOp op, PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    auto generate = tensor::GenerateOp::create(
        rewriter, op.getLoc(), type, ValueRange{},
        [&](OpBuilder &nb, Location loc, ValueRange local) {
          ImplicitLocOpBuilder b(loc, nb);
          auto [indices, inBounds] =
              bufferIndices(b, op.getSource(), op.getIndices(), local);
          Value pad = paddingValue(b, op.getPaddingAttr(), type.getElementType());
          tensor::YieldOp::create(
              b, guardedLoad(b, op.getSource(), indices, inBounds, pad));
        });
    rewriter.replaceOp(op, generate);
    return success();
  }
};

struct LowerGather : OpRewritePattern<tile::GatherOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::GatherOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    auto generate = tensor::GenerateOp::create(
        rewriter, op.getLoc(), type, ValueRange{},
        [&](OpBuilder &nb, Location loc, ValueRange local) {
          ImplicitLocOpBuilder b(loc, nb);
          SmallVector<Value> at = entriesAt(b, op.getIndices(), local);
          auto [indices, inBounds] = bufferIndices(b, op.getSource(), at, ValueRange{});
          Value pad = paddingValue(b, op.getPaddingAttr(), type.getElementType());
          tensor::YieldOp::create(
              b, guardedLoad(b, op.getSource(), indices, inBounds, pad));
        });
    rewriter.replaceOp(op, generate);
    return success();
  }
};

struct LowerStore : OpRewritePattern<tile::StoreOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::StoreOp op, PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    forEachElement(b, op.getValue().getType(), [&](ImplicitLocOpBuilder &ib, ValueRange local) {
      auto [indices, inBounds] = bufferIndices(ib, op.getDest(), op.getIndices(), local);
      scf::IfOp::create(ib, inBounds, [&](OpBuilder &tb, Location l) {
        Value v = tensor::ExtractOp::create(tb, l, op.getValue(), local);
        memref::StoreOp::create(tb, l, v, op.getDest(), indices);
        scf::YieldOp::create(tb, l);
      });
    });
    rewriter.eraseOp(op);
    return success();
  }
};

/// One element after another in row-major order (repeated entries sum in that order:
/// the same bits every run), each guarded by the mask and the table's bounds.
struct LowerScatterAdd : OpRewritePattern<tile::ScatterAddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::ScatterAddOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    forEachElement(
        b, op.getValues().getType(), [&](ImplicitLocOpBuilder &ib, ValueRange local) {
          SmallVector<Value> at = entriesAt(ib, op.getIndices(), local);
          auto [indices, add] = bufferIndices(ib, op.getTable(), at, ValueRange{});
          if (Value mask = op.getMask())
            add = arith::AndIOp::create(ib, add, tensor::ExtractOp::create(ib, mask, local));
          scf::IfOp::create(ib, add, [&](OpBuilder &tb, Location l) {
            Value v = tensor::ExtractOp::create(tb, l, op.getValues(), local);
            Value old = memref::LoadOp::create(tb, l, op.getTable(), indices);
            memref::StoreOp::create(tb, l, arith::AddFOp::create(tb, l, old, v), op.getTable(),
                                    indices);
            scf::YieldOp::create(tb, l);
          });
        });
    rewriter.eraseOp(op);
    return success();
  }
};

struct LowerDot : OpRewritePattern<tile::DotOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::DotOp op, PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<linalg::MatmulOp>(
        op, ValueRange{op.getLhs(), op.getRhs()}, ValueRange{op.getAcc()});
    return success();
  }
};

static Value emptyLike(OpBuilder &b, Location loc, Type type) {
  auto t = cast<RankedTensorType>(type);
  return tensor::EmptyOp::create(b, loc, t.getShape(), t.getElementType());
}

struct LowerTrans : OpRewritePattern<tile::TransOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::TransOp op, PatternRewriter &rewriter) const override {
    Value init = emptyLike(rewriter, op.getLoc(), op.getType());
    auto t = linalg::TransposeOp::create(rewriter, op.getLoc(), op.getInput(), init,
                                         ArrayRef<int64_t>{1, 0});
    rewriter.replaceOp(op, t.getResult());
    return success();
  }
};

struct LowerBroadcast : OpRewritePattern<tile::BroadcastOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::BroadcastOp op,
                                PatternRewriter &rewriter) const override {
    Value init = emptyLike(rewriter, op.getLoc(), op.getType());
    auto bc = linalg::BroadcastOp::create(rewriter, op.getLoc(), op.getInput(), init,
                                          ArrayRef<int64_t>{int64_t(op.getAxis())});
    rewriter.replaceOp(op, bc.getResult());
    return success();
  }
};

struct LowerReduce : OpRewritePattern<tile::ReduceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::ReduceOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    Type elem = type.getElementType();
    bool isFloat = isa<FloatType>(elem);
    TypedAttr identity;
    switch (op.getCombiner()) {
    case tile::Combiner::sum:
      identity = cast<TypedAttr>(rewriter.getZeroAttr(elem));
      break;
    case tile::Combiner::max:
    case tile::Combiner::min: {
      bool isMax = op.getCombiner() == tile::Combiner::max;
      if (isFloat) {
        double inf = std::numeric_limits<double>::infinity();
        identity = rewriter.getFloatAttr(elem, isMax ? -inf : inf);
      } else {
        unsigned w = elem.getIntOrFloatBitWidth();
        identity = rewriter.getIntegerAttr(
            elem, isMax ? APInt::getSignedMinValue(w) : APInt::getSignedMaxValue(w));
      }
      break;
    }
    }
    Value init = linalg::FillOp::create(rewriter, loc,
                                        arith::ConstantOp::create(rewriter, loc, identity)
                                            .getResult(),
                                        emptyLike(rewriter, loc, type))
                     .getResult(0);
    tile::Combiner combiner = op.getCombiner();
    auto reduce = linalg::ReduceOp::create(
        rewriter, loc, ValueRange{op.getInput()}, ValueRange{init},
        ArrayRef<int64_t>{int64_t(op.getAxis())},
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value r;
          switch (combiner) {
          case tile::Combiner::sum:
            r = isFloat ? Value(arith::AddFOp::create(b, l, args[0], args[1]))
                        : Value(arith::AddIOp::create(b, l, args[0], args[1]));
            break;
          case tile::Combiner::max:
            r = isFloat ? Value(arith::MaxNumFOp::create(b, l, args[0], args[1]))
                        : Value(arith::MaxSIOp::create(b, l, args[0], args[1]));
            break;
          case tile::Combiner::min:
            r = isFloat ? Value(arith::MinimumFOp::create(b, l, args[0], args[1]))
                        : Value(arith::MinSIOp::create(b, l, args[0], args[1]));
            break;
          }
          linalg::YieldOp::create(b, l, r);
        });
    rewriter.replaceOp(op, reduce.getResult(0));
    return success();
  }
};

struct LowerRange : OpRewritePattern<tile::RangeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tile::RangeOp op, PatternRewriter &rewriter) const override {
    auto generate = tensor::GenerateOp::create(
        rewriter, op.getLoc(), op.getType(), ValueRange{},
        [&](OpBuilder &nb, Location loc, ValueRange local) {
          Value i = arith::AddIOp::create(nb, loc, op.getStart(), local[0]);
          tensor::YieldOp::create(
              nb, loc, arith::IndexCastOp::create(nb, loc, nb.getI32Type(), i).getResult());
        });
    rewriter.replaceOp(op, generate);
    return success();
  }
};

/// tensor.splat as linalg.fill, which bufferizes without a special case.
struct LowerSplat : OpRewritePattern<tensor::SplatOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::SplatOp op, PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.hasStaticShape())
      return failure();
    rewriter.replaceOpWithNewOp<linalg::FillOp>(
        op, op.getInput(), emptyLike(rewriter, op.getLoc(), type));
    return success();
  }
};

/// A grid becomes a loop nest; program ids become its induction variables.
static void lowerGrid(tile::GridOp grid) {
  ImplicitLocOpBuilder b(grid.getLoc(), grid);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value one = arith::ConstantIndexOp::create(b, 1);
  SmallVector<Value> lbs(grid.getSizes().size(), zero), steps(grid.getSizes().size(), one);
  SmallVector<Value> ubs(grid.getSizes());
  Block &body = grid.getBody().front();
  scf::LoopNest nest = scf::buildLoopNest(b, grid.getLoc(), lbs, ubs, steps);
  Block *innermost = nest.loops.back().getBody();
  innermost->getOperations().splice(innermost->getTerminator()->getIterator(),
                                    body.getOperations());
  SmallVector<Value> ids;
  for (scf::ForOp loop : nest.loops)
    ids.push_back(loop.getInductionVar());
  innermost->walk([&](tile::ProgramIdOp pid) {
    pid.replaceAllUsesWith(ids[pid.getDim()]);
    pid.erase();
  });
  grid.erase();
}

struct TileToLinalgPass : tessera::cpu::impl::TileToLinalgBase<TileToLinalgPass> {
  void runOnOperation() override {
    SmallVector<tile::GridOp> grids;
    getOperation().walk([&](tile::GridOp g) { grids.push_back(g); });
    for (tile::GridOp g : grids)
      lowerGrid(g);

    RewritePatternSet patterns(&getContext());
    patterns.add<LowerLoad, LowerGather, LowerStore, LowerScatterAdd, LowerDot, LowerTrans,
                 LowerBroadcast, LowerReduce, LowerRange, LowerSplat>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    WalkResult leftover = getOperation().walk([](Operation *op) {
      if (isa<tile::TileDialect>(op->getDialect())) {
        op->emitError("has no CPU lowering");
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (leftover.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
