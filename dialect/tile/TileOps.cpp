//===- TileOps.cpp - tile op verifiers ------------------------------------===//
#include "dialect/tile/TileDialect.h"

using namespace mlir;
using namespace tessera::tile;

// tile.grid's region through a custom directive rather than `$body`: works around an
// upstream MLIR (22) parser bug. The ODS-generated parser parses the region into a
// local std::unique_ptr<Region> that it destroys on a parse error without dropping the
// uses of the values the region defines (the generic parser does, for regions already
// in the OperationState), so an op before tile.grid that used a name the body defines
// (a forward reference) is left pointing into the freed region: heap corruption.
// On an error this drops those uses first; see parseModRegions in AttnOps.cpp.
ParseResult tessera::tile::parseBody(OpAsmParser &parser, Region &body) {
  if (parser.parseRegion(body)) {
    for (Block &block : body)
      block.dropAllDefinedValueUses();
    return failure();
  }
  if (body.empty())
    body.emplaceBlock();
  return success();
}

void tessera::tile::printBody(OpAsmPrinter &printer, Operation *, Region &body) {
  printer.printRegion(body);
}

LogicalResult GridOp::verify() {
  if (getSizes().empty() || getSizes().size() > 3)
    return emitOpError("grid must have 1 to 3 dimensions, got ") << getSizes().size();
  return success();
}

LogicalResult ProgramIdOp::verify() {
  auto grid = (*this)->getParentOfType<GridOp>();
  if (!grid)
    return emitOpError("must be nested in a tile.grid");
  int64_t dim = getDim();
  if (dim < 0 || dim >= int64_t(grid.getSizes().size()))
    return emitOpError("dim ") << dim << " is out of range for a grid of rank "
                               << grid.getSizes().size();
  return success();
}

/// Common checks of a tile that views the trailing dims of a buffer.
static LogicalResult verifyTileAccess(Operation *op, MemRefType buffer, size_t numIndices,
                                      RankedTensorType tile) {
  if (int64_t(numIndices) != buffer.getRank())
    return op->emitOpError("expects ") << buffer.getRank() << " indices, got " << numIndices;
  if (tile.getRank() < 1 || tile.getRank() > buffer.getRank())
    return op->emitOpError("tile rank must be in [1, buffer rank], got ") << tile.getRank();
  if (tile.getElementType() != buffer.getElementType())
    return op->emitOpError("tile element type ")
           << tile.getElementType() << " differs from the buffer's "
           << buffer.getElementType();
  return success();
}

static LogicalResult verifyPadding(Operation *op, TypedAttr padding, Type elementType) {
  if (padding && padding.getType() != elementType)
    return op->emitOpError("padding type ")
           << padding.getType() << " differs from the element type " << elementType;
  return success();
}

LogicalResult LoadOp::verify() {
  auto tile = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyTileAccess(*this, getSource().getType(), getIndices().size(), tile)))
    return failure();
  return verifyPadding(*this, getPaddingAttr(), tile.getElementType());
}

LogicalResult StoreOp::verify() {
  return verifyTileAccess(*this, getDest().getType(), getIndices().size(),
                          cast<RankedTensorType>(getValue().getType()));
}

/// One i32 index tile per table dimension, each of `shape` (`shapeError` otherwise).
static LogicalResult verifyIndexTiles(Operation *op, MemRefType table, ValueRange indices,
                                      ArrayRef<int64_t> shape, StringRef shapeError) {
  if (int64_t(indices.size()) != table.getRank())
    return op->emitOpError("takes one index tile per table dimension: ")
           << table.getRank() << ", got " << indices.size();
  for (Value index : indices) {
    auto type = cast<RankedTensorType>(index.getType());
    if (!type.getElementType().isInteger(32))
      return op->emitOpError("indices must be i32");
    if (type.getShape() != shape)
      return op->emitOpError(shapeError);
  }
  return success();
}

LogicalResult GatherOp::verify() {
  MemRefType table = getSource().getType();
  auto result = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyIndexTiles(*this, table, getIndices(), result.getShape(),
                              "result shape must equal the index tiles' shape")))
    return failure();
  if (result.getElementType() != table.getElementType())
    return emitOpError("result element type must equal the table's");
  return verifyPadding(*this, getPaddingAttr(), result.getElementType());
}

LogicalResult ScatterAddOp::verify() {
  MemRefType table = getTable().getType();
  auto values = cast<RankedTensorType>(getValues().getType());
  if (!table.getElementType().isF32() || !values.getElementType().isF32())
    return emitOpError("adds f32 values into an f32 table, got ")
           << values.getElementType() << " into " << table.getElementType();
  if (failed(verifyIndexTiles(*this, table, getIndices(), values.getShape(),
                              "index tiles must have the value tile's shape")))
    return failure();
  if (Value mask = getMask()) {
    auto type = cast<RankedTensorType>(mask.getType());
    if (!type.getElementType().isInteger(1) || type.getShape() != values.getShape())
      return emitOpError("mask must be an i1 tile of the value tile's shape");
  }
  return success();
}

LogicalResult DotOp::verify() {
  auto a = cast<RankedTensorType>(getLhs().getType());
  auto b = cast<RankedTensorType>(getRhs().getType());
  auto c = cast<RankedTensorType>(getAcc().getType());
  if (a.getRank() != 2 || b.getRank() != 2 || c.getRank() != 2)
    return emitOpError("operands must be 2-D tiles");
  if (a.getDimSize(1) != b.getDimSize(0))
    return emitOpError("contraction dims differ: lhs is ")
           << a.getDimSize(0) << "x" << a.getDimSize(1) << ", rhs is " << b.getDimSize(0)
           << "x" << b.getDimSize(1);
  if (c.getDimSize(0) != a.getDimSize(0) || c.getDimSize(1) != b.getDimSize(1))
    return emitOpError("accumulator must be ") << a.getDimSize(0) << "x" << b.getDimSize(1);
  if (a.getElementType() != b.getElementType())
    return emitOpError("lhs and rhs must share one element type");
  if (!a.getElementType().isF32() && !a.getElementType().isF16() &&
      !a.getElementType().isBF16())
    return emitOpError("operands must be f16, bf16 or f32");
  if (!c.getElementType().isF32())
    return emitOpError("accumulator must be f32");
  return success();
}

LogicalResult TransOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getResult().getType());
  if (in.getRank() != 2 || out.getRank() != 2 || in.getDimSize(0) != out.getDimSize(1) ||
      in.getDimSize(1) != out.getDimSize(0) || in.getElementType() != out.getElementType())
    return emitOpError("result must be the 2-D transpose of the input");
  return success();
}

/// `wide` equals `narrow` with one extra dimension at `axis`.
static LogicalResult verifyAxisDropped(Operation *op, RankedTensorType wide,
                                       RankedTensorType narrow, int64_t axis) {
  if (axis < 0 || axis >= wide.getRank())
    return op->emitOpError("axis ") << axis << " is out of range for rank " << wide.getRank();
  SmallVector<int64_t> expected(wide.getShape());
  expected.erase(expected.begin() + axis);
  if (ArrayRef<int64_t>(expected) != narrow.getShape() ||
      wide.getElementType() != narrow.getElementType())
    return op->emitOpError("shapes disagree along axis ") << axis;
  return success();
}

LogicalResult ReduceOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  if (!in.getElementType().isIntOrFloat())
    return emitOpError("input must hold integers or floats");
  return verifyAxisDropped(*this, in, cast<RankedTensorType>(getResult().getType()),
                           getAxis());
}

LogicalResult BroadcastOp::verify() {
  return verifyAxisDropped(*this, cast<RankedTensorType>(getResult().getType()),
                           cast<RankedTensorType>(getInput().getType()), getAxis());
}

LogicalResult RangeOp::verify() {
  auto t = cast<RankedTensorType>(getResult().getType());
  if (t.getRank() != 1 || !t.getElementType().isInteger(32))
    return emitOpError("result must be a 1-D tile of i32");
  return success();
}
