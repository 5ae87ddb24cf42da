//===- ModifierInlining.cpp - scalar modifier regions over tiles ----------===//
#include "passes/ModifierInlining.h"

#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

FailureOr<Value> tessera::inlineModifierElementwise(ImplicitLocOpBuilder &b, Region &region,
                                                    ArrayRef<Value> argTiles,
                                                    ArrayRef<int64_t> shape,
                                                    const IRMapping &buffers) {
  Block &block = region.front();
  IRMapping map;
  for (auto [arg, tileValue] : llvm::zip(block.getArguments(), argTiles))
    map.map(arg, tileValue);
  auto tileOf = [&](Type scalar) { return RankedTensorType::get(shape, scalar); };

  for (Operation &op : block.without_terminator()) {
    if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
      auto type = tileOf(cst.getType());
      auto splat = DenseElementsAttr::get(type, cast<TypedAttr>(cst.getValue()));
      map.map(cst.getResult(), arith::ConstantOp::create(b, type, splat));
      continue;
    }
    if (auto extract = dyn_cast<tensor::ExtractOp>(op)) {
      Value table = buffers.lookupOrNull(extract.getTensor());
      if (!table)
        return op.emitError("reads a tensor that is not an argument of the function");
      // The verifier guarantees one index; look through the i32 -> index cast the
      // frontend writes, since tile.gather indexes with i32.
      Value index = map.lookup(extract.getIndices()[0]);
      if (auto cast = index.getDefiningOp<arith::IndexCastOp>())
        index = cast.getIn();
      auto indexType = cast<RankedTensorType>(index.getType());
      if (!indexType.getElementType().isInteger(32))
        index = arith::IndexCastOp::create(b, tileOf(b.getI32Type()), index);
      Value gathered = tile::GatherOp::create(b, tileOf(extract.getType()), table, index,
                                              /*padding=*/nullptr);
      map.map(extract.getResult(), gathered);
      continue;
    }
    // Every other op is a scalar arith/math op (the verifier says so): elementwise
    // mappable, so its tensor form is the same op on tiles.
    SmallVector<Value> operands;
    for (Value v : op.getOperands())
      operands.push_back(map.lookup(v));
    SmallVector<Type> resultTypes;
    for (Type t : op.getResultTypes())
      resultTypes.push_back(tileOf(t));
    OperationState state(op.getLoc(), op.getName(), operands, resultTypes, op.getAttrs());
    Operation *clone = b.create(state);
    map.map(op.getResults(), clone->getResults());
  }
  auto yield = cast<attn::YieldOp>(block.getTerminator());
  return map.lookup(yield.getValues()[0]);
}
