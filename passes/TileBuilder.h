//===- TileBuilder.h - small helpers for emitting tile programs -*- C++ -*-===//
#ifndef TESSERA_PASSES_TILEBUILDER_H
#define TESSERA_PASSES_TILEBUILDER_H

#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace tessera {
/// Constants, splats and shape helpers shared by every attn -> tile lowering.
struct TileBuilder {
  mlir::ImplicitLocOpBuilder &b;
  mlir::Type f32, i32;

  explicit TileBuilder(mlir::ImplicitLocOpBuilder &b)
      : b(b), f32(b.getF32Type()), i32(b.getI32Type()) {}

  mlir::RankedTensorType tileType(llvm::ArrayRef<int64_t> shape, mlir::Type t) {
    return mlir::RankedTensorType::get(shape, t);
  }
  mlir::Value cIndex(int64_t v) { return mlir::arith::ConstantIndexOp::create(b, v); }
  mlir::Value cF32(double v) {
    return mlir::arith::ConstantOp::create(b, b.getF32FloatAttr(float(v)));
  }
  mlir::Value splatF32(llvm::ArrayRef<int64_t> shape, float v) {
    auto type = tileType(shape, f32);
    return mlir::arith::ConstantOp::create(b, type, mlir::DenseElementsAttr::get(type, v));
  }
  mlir::Value splatOf(llvm::ArrayRef<int64_t> shape, mlir::Value scalar) {
    return mlir::tensor::SplatOp::create(b, tileType(shape, scalar.getType()), scalar);
  }
  mlir::Value splatI32(llvm::ArrayRef<int64_t> shape, int32_t v) {
    auto type = tileType(shape, i32);
    return mlir::arith::ConstantOp::create(b, type, mlir::DenseElementsAttr::get(type, v));
  }
  /// The 1-D tile start, start + 1, ..., start + n - 1 (i32).
  mlir::Value range(mlir::Value start, int64_t n) {
    return tile::RangeOp::create(b, tileType({n}, i32), start);
  }
  /// Reduces a tile along `axis` (the result drops that dim).
  mlir::Value reduce(tile::Combiner combiner, mlir::Value t, int64_t axis) {
    auto type = mlir::cast<mlir::RankedTensorType>(t.getType());
    llvm::SmallVector<int64_t> shape(type.getShape());
    shape.erase(shape.begin() + axis);
    return tile::ReduceOp::create(b, tileType(shape, type.getElementType()), combiner, t,
                                  axis);
  }
  mlir::Value select(mlir::Value cond, mlir::Value a, mlir::Value c) {
    return mlir::arith::SelectOp::create(b, cond, a, c);
  }
  /// Element-wise not of an i1 tile.
  mlir::Value logicalNot(mlir::Value t) {
    auto type = mlir::cast<mlir::RankedTensorType>(t.getType());
    return mlir::arith::XOrIOp::create(
        b, t, mlir::arith::ConstantOp::create(b, type, mlir::DenseElementsAttr::get(type, true)));
  }
  mlir::Value cmpI(mlir::arith::CmpIPredicate p, mlir::Value x, mlir::Value y) {
    return mlir::arith::CmpIOp::create(b, p, x, y);
  }
  mlir::Value ceilDiv(mlir::Value x, int64_t d) {
    return mlir::arith::CeilDivSIOp::create(b, x, cIndex(d));
  }
  mlir::Value dim(mlir::Value buffer, int64_t d) {
    return mlir::memref::DimOp::create(b, buffer, d);
  }
  /// Emits a tile.grid over `sizes` whose body `body` builds (given the program ids),
  /// and leaves the builder after it.
  void grid(mlir::ValueRange sizes, tile::ConfigAttr config,
            llvm::function_ref<void(llvm::ArrayRef<mlir::Value>)> body) {
    auto g = tile::GridOp::create(b, sizes, config);
    mlir::OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&g.getBody().emplaceBlock());
    llvm::SmallVector<mlir::Value> ids;
    for (int64_t d = 0; d < int64_t(sizes.size()); ++d)
      ids.push_back(programId(d));
    body(ids);
  }
  mlir::Value toI32(mlir::Value index) {
    return mlir::arith::IndexCastOp::create(b, i32, index);
  }
  mlir::Value indexToF32(mlir::Value index) {
    return mlir::arith::SIToFPOp::create(b, f32, toI32(index));
  }
  /// [n] -> [n, m] (axis 1) or [m, n] (axis 0).
  mlir::Value broadcast(mlir::Value v, int64_t axis, int64_t size) {
    auto t = mlir::cast<mlir::RankedTensorType>(v.getType());
    int64_t n = t.getDimSize(0);
    llvm::SmallVector<int64_t> shape =
        axis == 1 ? llvm::SmallVector<int64_t>{n, size} : llvm::SmallVector<int64_t>{size, n};
    return tile::BroadcastOp::create(b, tileType(shape, t.getElementType()), v, axis);
  }
  mlir::Value programId(int64_t dim) {
    return tile::ProgramIdOp::create(b, b.getIndexType(), b.getI64IntegerAttr(dim));
  }
  /// The 2-D transpose of a tile.
  mlir::Value trans(mlir::Value t) {
    auto type = mlir::cast<mlir::RankedTensorType>(t.getType());
    return tile::TransOp::create(
        b, tileType({type.getDimSize(1), type.getDimSize(0)}, type.getElementType()), t);
  }
  /// lhs · rhs + acc.
  mlir::Value dot(mlir::Value lhs, mlir::Value rhs, mlir::Value acc) {
    return tile::DotOp::create(b, acc.getType(), lhs, rhs, acc).getResult();
  }
  /// An scf.for from `lo` to `hi` (step 1) carrying `init`; `body` is emitted with this
  /// builder positioned inside the loop and returns the values to carry on.
  mlir::ValueRange forLoop(mlir::Value lo, mlir::Value hi, mlir::ValueRange init,
                           llvm::function_ref<llvm::SmallVector<mlir::Value>(
                               mlir::Value, mlir::ValueRange)>
                               body);
  /// An scf.if whose branches are emitted with this builder inside them and return the
  /// values they yield; returns the if's results.
  llvm::SmallVector<mlir::Value>
  ifElse(mlir::Value cond, llvm::function_ref<llvm::SmallVector<mlir::Value>()> thenFn,
         llvm::function_ref<llvm::SmallVector<mlir::Value>()> elseFn) {
    auto emit = [&](llvm::function_ref<llvm::SmallVector<mlir::Value>()> fn) {
      return [&, fn](mlir::OpBuilder &nested, mlir::Location) {
        mlir::OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
        mlir::scf::YieldOp::create(b, fn());
      };
    };
    auto ifOp = mlir::scf::IfOp::create(b, cond, emit(thenFn), emit(elseFn));
    return llvm::SmallVector<mlir::Value>(ifOp.getResults());
  }
  /// Loads a tile and widens it to f32.
  mlir::Value loadF32(mlir::Value buffer, llvm::ArrayRef<int64_t> shape,
                      mlir::ValueRange indices) {
    mlir::Type elem = mlir::cast<mlir::MemRefType>(buffer.getType()).getElementType();
    mlir::Value t = tile::LoadOp::create(b, tileType(shape, elem), buffer, indices, nullptr);
    return elem == f32 ? t : mlir::Value(mlir::arith::ExtFOp::create(b, tileType(shape, f32), t));
  }
  /// A product operand: 16-bit float inputs stay in their type (tensor cores multiply
  /// them exactly, accumulating in f32), anything else is read as f32.
  mlir::Value loadOperand(mlir::Value buffer, llvm::ArrayRef<int64_t> shape,
                          mlir::ValueRange indices) {
    mlir::Type elem = mlir::cast<mlir::MemRefType>(buffer.getType()).getElementType();
    if (!elem.isBF16() && !elem.isF16())
      return loadF32(buffer, shape, indices);
    return tile::LoadOp::create(b, tileType(shape, elem), buffer, indices, nullptr);
  }
  /// Narrows an f32 tile to `elem` (if needed) and stores it.
  void storeAs(mlir::Value tileValue, mlir::Value buffer, mlir::ValueRange indices) {
    mlir::Type elem = mlir::cast<mlir::MemRefType>(buffer.getType()).getElementType();
    auto t = mlir::cast<mlir::RankedTensorType>(tileValue.getType());
    if (t.getElementType() != elem)
      tileValue = mlir::arith::TruncFOp::create(b, tileType(t.getShape(), elem), tileValue);
    tile::StoreOp::create(b, tileValue, buffer, indices);
  }
};
inline mlir::ValueRange TileBuilder::forLoop(
    mlir::Value lo, mlir::Value hi, mlir::ValueRange init,
    llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value, mlir::ValueRange)> body) {
  auto loop = mlir::scf::ForOp::create(
      b, lo, hi, cIndex(1), init,
      [&](mlir::OpBuilder &nested, mlir::Location, mlir::Value iv, mlir::ValueRange carried) {
        mlir::OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
        mlir::scf::YieldOp::create(b, body(iv, carried));
      });
  return loop.getResults();
}
} // namespace tessera

#endif
