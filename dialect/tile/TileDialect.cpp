//===- TileDialect.cpp - tile dialect registration and attributes ---------===//
#include "dialect/tile/TileDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace tessera::tile;

#include "dialect/tile/TileOpsDialect.cpp.inc"
#include "dialect/tile/TileEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/tile/TileAttrs.cpp.inc"
#define GET_OP_CLASSES
#include "dialect/tile/TileOps.cpp.inc"

void TileDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/tile/TileOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/tile/TileAttrs.cpp.inc"
      >();
}

static bool isPowerOfTwo(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

LogicalResult ConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 int64_t blockM, int64_t blockN, int64_t numWarps,
                                 int64_t numStages, int64_t split) {
  if (!isPowerOfTwo(blockM) || blockM > 256)
    return emitError() << "block_m must be a power of two in [1, 256], got " << blockM;
  if (!isPowerOfTwo(blockN) || blockN > 256)
    return emitError() << "block_n must be a power of two in [1, 256], got " << blockN;
  if (!isPowerOfTwo(numWarps) || numWarps > 16)
    return emitError() << "num_warps must be a power of two in [1, 16], got " << numWarps;
  if (numStages < 1 || numStages > 8)
    return emitError() << "num_stages must be in [1, 8], got " << numStages;
  if (split < 1 || split > 1024)
    return emitError() << "split must be in [1, 1024], got " << split;
  return success();
}
