//===- ModifierInlining.cpp - scalar modifier regions over tiles ----------===//
//
// Each value of the region is kept in the narrowest form its inputs allow: a scalar
// (batch, head, constants), a row or column vector broadcast over the tile (the query
// index i is one value per row, the key index j one per column), or a whole tile. An op
// whose operands share a form is computed in it, so a mask like doc[i] == doc[j] reads
// the table once per row and once per column instead of twice per element; forms are
// widened only where they meet.
//
//===----------------------------------------------------------------------===//
#include "passes/ModifierInlining.h"

#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace tessera;

namespace {
/// A value of the region over the tile: `value` is a scalar (axis = kScalar), a 1-D tile
/// repeated along dimension `axis` of the tile, or the whole tile (axis = kWhole).
struct Form {
  static constexpr int64_t kScalar = -1, kWhole = -2;
  Value value;
  int64_t axis = kWhole;
};

struct FormInliner {
  ImplicitLocOpBuilder &b;
  ArrayRef<int64_t> shape;
  const IRMapping &buffers;

  /// The type of a value of scalar type `t` in form `axis`.
  Type typeIn(int64_t axis, Type t) {
    if (axis == Form::kScalar)
      return t;
    if (axis == Form::kWhole)
      return RankedTensorType::get(shape, t);
    SmallVector<int64_t> kept(shape);
    kept.erase(kept.begin() + axis);
    return RankedTensorType::get(kept, t);
  }
  /// `f` widened to form `axis` (a 1-D form only from a scalar).
  Value widen(Form f, int64_t axis) {
    if (f.axis == axis)
      return f.value;
    if (f.axis == Form::kScalar)
      return tensor::SplatOp::create(b, typeIn(axis, f.value.getType()), f.value);
    return tile::BroadcastOp::create(
        b, typeIn(Form::kWhole, getElementTypeOrSelf(f.value.getType())), f.value, f.axis);
  }
  /// The form an argument tile arrives in.
  Form formOf(Value t) {
    if (auto splat = t.getDefiningOp<tensor::SplatOp>())
      return {splat.getInput(), Form::kScalar};
    if (auto bc = t.getDefiningOp<tile::BroadcastOp>(); bc && shape.size() == 2)
      return {bc.getInput(), int64_t(bc.getAxis())};
    return {t, Form::kWhole};
  }
  /// The narrowest form all of `forms` widen to.
  int64_t commonAxis(ArrayRef<Form> forms) {
    int64_t axis = Form::kScalar;
    for (const Form &f : forms) {
      if (f.axis == Form::kScalar || f.axis == axis)
        continue;
      axis = axis == Form::kScalar ? f.axis : Form::kWhole;
    }
    return axis;
  }
};
} // namespace

FailureOr<Value> tessera::inlineModifierElementwise(ImplicitLocOpBuilder &b, Region &region,
                                                    ArrayRef<Value> argTiles,
                                                    ArrayRef<int64_t> shape,
                                                    const IRMapping &buffers) {
  Block &block = region.front();
  FormInliner in{b, shape, buffers};
  DenseMap<Value, Form> forms;
  for (auto [arg, tileValue] : llvm::zip(block.getArguments(), argTiles))
    forms[arg] = in.formOf(tileValue);

  for (Operation &op : block.without_terminator()) {
    if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
      forms[cst.getResult()] = {arith::ConstantOp::create(b, cst.getValue()), Form::kScalar};
      continue;
    }
    if (auto extract = dyn_cast<tensor::ExtractOp>(op)) {
      Value table = buffers.lookupOrNull(extract.getTensor());
      if (!table)
        return op.emitError("reads a tensor that is not an argument of the function");
      SmallVector<Form> indexForms;
      for (Value index : extract.getIndices())
        indexForms.push_back(forms.lookup(index));
      int64_t axis = in.commonAxis(indexForms);
      if (axis == Form::kScalar) { // as tile.gather reads: 0 outside the table
        Value ok;
        SmallVector<Value> at;
        for (auto [d, index] : llvm::enumerate(indexForms)) {
          Value i = index.value;
          if (!i.getType().isIndex())
            i = arith::IndexCastOp::create(b, b.getIndexType(), i);
          Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i,
                                               memref::DimOp::create(b, table, d));
          ok = ok ? arith::AndIOp::create(b, ok, inside).getResult() : inside;
          at.push_back(i);
        }
        Value zeroIndex = arith::ConstantIndexOp::create(b, 0);
        for (Value &i : at)
          i = arith::SelectOp::create(b, ok, i, zeroIndex);
        Value read = memref::LoadOp::create(b, table, at);
        Value zero = arith::ConstantOp::create(b, b.getZeroAttr(extract.getType()));
        forms[extract.getResult()] = {arith::SelectOp::create(b, ok, read, zero), Form::kScalar};
        continue;
      }
      // tile.gather indexes with i32 tiles of one shape: look through the i32 -> index
      // cast the frontend writes, and widen every index to the common form.
      SmallVector<Value> indexTiles;
      for (Form index : indexForms) {
        if (auto cast = index.value.getDefiningOp<arith::IndexCastOp>())
          index.value = cast.getIn();
        if (!getElementTypeOrSelf(index.value.getType()).isInteger(32))
          index.value = arith::IndexCastOp::create(
              b, in.typeIn(index.axis, b.getI32Type()), index.value);
        indexTiles.push_back(in.widen(index, axis));
      }
      Value gathered = tile::GatherOp::create(b, in.typeIn(axis, extract.getType()), table,
                                              indexTiles, /*padding=*/nullptr);
      forms[extract.getResult()] = {gathered, axis};
      continue;
    }
    // Every other op is a scalar arith/math op (the verifier says so): elementwise
    // mappable, so its form on vectors or tiles is the same op.
    SmallVector<Form> operandForms;
    for (Value v : op.getOperands())
      operandForms.push_back(forms.lookup(v));
    int64_t axis = in.commonAxis(operandForms);
    SmallVector<Value> operands;
    for (const Form &f : operandForms)
      operands.push_back(in.widen(f, axis));
    SmallVector<Type> resultTypes;
    for (Type t : op.getResultTypes())
      resultTypes.push_back(in.typeIn(axis, t));
    OperationState state(op.getLoc(), op.getName(), operands, resultTypes, op.getAttrs());
    Operation *clone = b.create(state);
    for (auto [from, to] : llvm::zip(op.getResults(), clone->getResults()))
      forms[from] = {to, axis};
  }
  auto yield = cast<attn::YieldOp>(block.getTerminator());
  return in.widen(forms.lookup(yield.getValues()[0]), Form::kWhole);
}
