//===- TileDialect.h - the tile dialect -------------------------*- C++ -*-===//
#ifndef TESSERA_DIALECT_TILE_TILEDIALECT_H
#define TESSERA_DIALECT_TILE_TILEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace tessera::tile {
/// `custom<Body>($body)` of tile.grid: its region (TileOps.cpp).
mlir::ParseResult parseBody(mlir::OpAsmParser &parser, mlir::Region &body);
void printBody(mlir::OpAsmPrinter &printer, mlir::Operation *op, mlir::Region &body);
} // namespace tessera::tile

#include "dialect/tile/TileOpsDialect.h.inc"
#include "dialect/tile/TileEnums.h.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/tile/TileAttrs.h.inc"
#define GET_OP_CLASSES
#include "dialect/tile/TileOps.h.inc"

#endif
