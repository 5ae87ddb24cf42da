//===- TgpuTypes.cpp - shared buffers, descriptors, barriers --------------===//
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace tessera::tgpu;

#define GET_TYPEDEF_CLASSES
#include "dialect/tgpu/TgpuOpsTypes.cpp.inc"

void TgpuDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialect/tgpu/TgpuOpsTypes.cpp.inc"
      >();
}

/// Elements of 128 bytes: the width of one swizzled row.
static int64_t swizzleRowElements(Type element) {
  return 128 * 8 / int64_t(element.getIntOrFloatBitWidth());
}

/// Checks what a tile in shared memory needs, whatever holds it (a buffer, a TMA box).
static LogicalResult verifySharedTile(function_ref<InFlightDiagnostic()> emitError,
                                      ArrayRef<int64_t> shape, Type element,
                                      SharedLayoutAttr layout) {
  if (shape.empty())
    return emitError() << "a shared tile has at least one dimension";
  for (int64_t extent : shape)
    if (extent <= 0)
      return emitError() << "shared tile dimensions must be positive, got " << extent;
  if (!element.isIntOrFloat() || element.getIntOrFloatBitWidth() % 8)
    return emitError() << "shared tile elements must be whole-byte integers or floats, got "
                       << element;
  if (!layout)
    return emitError() << "a shared tile needs a #tgpu.shared layout";
  if (layout.getKind() == SwizzleKind::swizzle_128b) {
    int64_t rowElements = swizzleRowElements(element);
    if (shape.size() != 2 || shape.back() % rowElements || shape[0] % 8)
      return emitError() << "swizzle_128b stores 2-D tiles in atoms of 8 rows of 128 bytes: "
                            "rows must be a multiple of 8 and columns of "
                         << rowElements << " " << element << " elements";
  }
  return success();
}

/// `<` dims `x` element `,` layout, the common head of the shared-tile types.
static ParseResult parseSharedTile(AsmParser &p, SmallVectorImpl<int64_t> &shape,
                                   Type &element, SharedLayoutAttr &layout) {
  return failure(p.parseLess() || p.parseDimensionList(shape, /*allowDynamic=*/false) ||
                 p.parseType(element) || p.parseComma() || p.parseAttribute(layout));
}

static void printSharedTile(AsmPrinter &p, ArrayRef<int64_t> shape, Type element,
                            SharedLayoutAttr layout) {
  p << "<";
  for (int64_t extent : shape)
    p << extent << "x";
  p << element << ", ";
  p.printAttribute(layout);
}

//===----------------------------------------------------------------------===//
// !tgpu.smem
//===----------------------------------------------------------------------===//

Type SharedBufferType::parse(AsmParser &p) {
  SMLoc loc = p.getCurrentLocation();
  SmallVector<int64_t> shape;
  Type element;
  SharedLayoutAttr layout;
  int64_t stages = 1;
  bool isMutable = false;
  if (failed(parseSharedTile(p, shape, element, layout)))
    return {};
  while (succeeded(p.parseOptionalComma())) {
    if (succeeded(p.parseOptionalKeyword("mutable"))) {
      isMutable = true;
      continue;
    }
    if (p.parseKeyword("stages") || p.parseEqual() || p.parseInteger(stages))
      return {};
  }
  if (p.parseGreater())
    return {};
  return getChecked([&] { return p.emitError(loc); }, p.getContext(), shape, element,
                    layout, stages, isMutable);
}

void SharedBufferType::print(AsmPrinter &p) const {
  printSharedTile(p, getShape(), getElementType(), getLayout());
  if (getStages() != 1)
    p << ", stages = " << getStages();
  if (getIsMutable())
    p << ", mutable";
  p << ">";
}

LogicalResult SharedBufferType::verify(function_ref<InFlightDiagnostic()> emitError,
                                       ArrayRef<int64_t> shape, Type element,
                                       SharedLayoutAttr layout, int64_t stages, bool) {
  if (failed(verifySharedTile(emitError, shape, element, layout)))
    return failure();
  if (stages < 1 || stages > 8)
    return emitError() << "stages must be in [1, 8], got " << stages;
  return success();
}

int64_t SharedBufferType::getStageBytes() const {
  ArrayRef<int64_t> shape = getShape();
  int64_t elementBytes = getElementType().getIntOrFloatBitWidth() / 8;
  int64_t rows = 1;
  for (int64_t extent : shape.drop_back())
    rows *= extent;
  return rows * (shape.back() * elementBytes + getLayout().getPad());
}

//===----------------------------------------------------------------------===//
// !tgpu.tma_desc
//===----------------------------------------------------------------------===//

Type TmaDescriptorType::parse(AsmParser &p) {
  SMLoc loc = p.getCurrentLocation();
  SmallVector<int64_t> shape;
  Type element;
  SharedLayoutAttr layout;
  if (failed(parseSharedTile(p, shape, element, layout)) || p.parseGreater())
    return {};
  return getChecked([&] { return p.emitError(loc); }, p.getContext(), shape, element,
                    layout);
}

void TmaDescriptorType::print(AsmPrinter &p) const {
  printSharedTile(p, getShape(), getElementType(), getLayout());
  p << ">";
}

LogicalResult TmaDescriptorType::verify(function_ref<InFlightDiagnostic()> emitError,
                                        ArrayRef<int64_t> shape, Type element,
                                        SharedLayoutAttr layout) {
  if (failed(verifySharedTile(emitError, shape, element, layout)))
    return failure();
  if (shape.size() > 5)
    return emitError() << "a TMA box has at most 5 dimensions, got " << shape.size();
  for (int64_t extent : shape)
    if (extent > 256)
      return emitError() << "a TMA box is at most 256 elements along each dimension, got "
                         << extent;
  if (layout.getKind() == SwizzleKind::padded_rows)
    return emitError() << "TMA writes dense or swizzled rows, never padded ones";
  return success();
}

//===----------------------------------------------------------------------===//
// !tgpu.mbarrier
//===----------------------------------------------------------------------===//

LogicalResult MbarrierType::verify(function_ref<InFlightDiagnostic()> emitError,
                                   int64_t stages) {
  if (stages < 1 || stages > 8)
    return emitError() << "an mbarrier array has 1 to 8 stages, got " << stages;
  return success();
}
