//===- AttnDialect.cpp - attn dialect registration ------------------------===//
#include "dialect/attn/AttnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace tessera::attn;

#include "dialect/attn/AttnOpsDialect.cpp.inc"
#include "dialect/attn/AttnEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/attn/AttnAttrs.cpp.inc"

void AttnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/attn/AttnOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/attn/AttnAttrs.cpp.inc"
      >();
}

LogicalResult tessera::attn::verifyRank(Operation *op, StringRef what,
                                        ShapedType type, int64_t rank) {
  if (type.getRank() != rank)
    return op->emitOpError() << what << " must have rank " << rank << ", got "
                             << type;
  return success();
}

LogicalResult tessera::attn::verifyDimsMatch(Operation *op, StringRef what,
                                             int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b)
    return success();
  return op->emitOpError() << what << " mismatch: " << a << " vs " << b;
}

bool tessera::attn::isFloatTensorElement(Type t) {
  return t.isF32() || t.isF16() || t.isBF16();
}

#define GET_OP_CLASSES
#include "dialect/attn/AttnOps.cpp.inc"
