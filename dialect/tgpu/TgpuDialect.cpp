//===- TgpuDialect.cpp - tgpu registration and layout encodings -----------===//
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace tessera::tgpu;

#include "dialect/tgpu/TgpuOpsDialect.cpp.inc"
#include "dialect/tgpu/TgpuEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/tgpu/TgpuAttrs.cpp.inc"

void TgpuDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/tgpu/TgpuOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/tgpu/TgpuAttrs.cpp.inc"
      >();
  registerTypes();
}

bool tessera::tgpu::isRegisterLayout(Attribute encoding) {
  return isa_and_nonnull<MmaEncodingAttr, DotOperandEncodingAttr, SharedOperandEncodingAttr,
                         SliceEncodingAttr, RowSpanEncodingAttr, WholeEncodingAttr>(encoding);
}

static bool isPowerOfTwo(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

/// Warps of one block: at most 1024 threads.
static constexpr int64_t kMaxWarps = 32;

/// Rows of an m-tile one warp owns in the accumulator fragment (mma.sync m16; a wgmma
/// m64 spread over the four warps of a warpgroup).
static constexpr int64_t kWarpRows = 16;

/// Checks a tile's rank and that each dimension is a multiple of its quantum.
static LogicalResult verifyTileShape(function_ref<InFlightDiagnostic()> emitError,
                                     StringRef layout, ArrayRef<int64_t> shape,
                                     ArrayRef<int64_t> quanta, StringRef what) {
  if (shape.size() != quanta.size())
    return emitError() << "a " << layout << " layout holds " << quanta.size()
                       << "-D tiles, got rank " << shape.size();
  for (auto [i, extent, quantum] : llvm::enumerate(shape, quanta))
    if (extent % quantum)
      return emitError() << "a " << layout << " tile's dimension " << i << " (" << extent
                         << ") must be a multiple of " << quantum << " (" << what << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// #tgpu.mma
//===----------------------------------------------------------------------===//

LogicalResult MmaEncodingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                      MmaVersion version, ArrayRef<int64_t> warps,
                                      ArrayRef<int64_t> instr) {
  if (warps.size() != 2 || !isPowerOfTwo(warps[0]) || !isPowerOfTwo(warps[1]) ||
      warps[0] * warps[1] > kMaxWarps)
    return emitError() << "warps must be two powers of two (rows, columns) with at most "
                       << kMaxWarps << " warps in all";
  if (instr.size() != 3)
    return emitError() << "instr must be [m, n, k], got " << instr.size() << " values";
  if (version == MmaVersion::mma_sync) {
    if (instr[0] != 16 || instr[1] != 8 || instr[2] != 16)
      return emitError() << "mma_sync is m16n8k16: instr must be [16, 8, 16]";
    return success();
  }
  if (instr[0] != 64 || instr[2] != 16 || instr[1] < 8 || instr[1] > 256 || instr[1] % 8)
    return emitError() << "wgmma is m64nNk16 with N a multiple of 8 in [8, 256]: instr "
                          "must be [64, N, 16]";
  if (warps[0] % 4 || warps[1] != 1)
    return emitError() << "wgmma splits rows over whole warpgroups: warps must be "
                          "[4 x warpgroups, 1]";
  return success();
}

int64_t MmaEncodingAttr::rowQuantum() const { return kWarpRows * getWarps()[0]; }

int64_t MmaEncodingAttr::colQuantum() const { return getInstr()[1] * getWarps()[1]; }

LogicalResult
MmaEncodingAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                                function_ref<InFlightDiagnostic()> emitError) const {
  return verifyTileShape(emitError, "#tgpu.mma", shape, {rowQuantum(), colQuantum()},
                         "16 rows per warp along rows, the instruction's n per warp "
                         "along columns");
}

//===----------------------------------------------------------------------===//
// #tgpu.dot_operand
//===----------------------------------------------------------------------===//

LogicalResult
DotOperandEncodingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               OperandIndex operand, MmaEncodingAttr parent, int64_t kWidth) {
  if (!parent)
    return emitError() << "a dot operand layout needs an #tgpu.mma parent";
  if (kWidth != 1 && kWidth != 2 && kWidth != 4 && kWidth != 8)
    return emitError() << "k_width must be 1, 2, 4 or 8, got " << kWidth;
  if (operand == OperandIndex::b && parent.getVersion() == MmaVersion::wgmma)
    return emitError() << "wgmma reads its b operand from shared memory, never registers";
  return success();
}

LogicalResult
DotOperandEncodingAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                                       function_ref<InFlightDiagnostic()> emitError) const {
  int64_t k = getParent().getInstr()[2];
  if (getOperand() == OperandIndex::a)
    return verifyTileShape(emitError, "#tgpu.dot_operand<a>", shape,
                           {getParent().rowQuantum(), k},
                           "the parent's rows, the instruction's k along columns");
  return verifyTileShape(emitError, "#tgpu.dot_operand<b>", shape,
                         {k, getParent().getInstr()[1]},
                         "the instruction's k along rows, its n along columns");
}

//===----------------------------------------------------------------------===//
// #tgpu.shared_operand
//===----------------------------------------------------------------------===//

LogicalResult
SharedOperandEncodingAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                                          function_ref<InFlightDiagnostic()> emitError) const {
  // Extents are the product's to check (its K and N, with the product's own message).
  if (shape.size() != 2)
    return emitError() << "a #tgpu.shared_operand layout holds 2-D tiles, got rank "
                       << shape.size();
  return success();
}

//===----------------------------------------------------------------------===//
// #tgpu.slice
//===----------------------------------------------------------------------===//

LogicalResult SliceEncodingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                        int64_t dim, Attribute parent) {
  if (dim != 0 && dim != 1)
    return emitError() << "a slice removes dimension 0 or 1 of a 2-D parent, got " << dim;
  if (isa_and_nonnull<MmaEncodingAttr>(parent))
    return success();
  if (isa_and_nonnull<RowSpanEncodingAttr>(parent)) {
    if (dim != 1)
      return emitError() << "a #tgpu.row_span parent has only row slices (dim = 1)";
    return success();
  }
  return emitError() << "a slice's parent must be #tgpu.mma or #tgpu.row_span, got "
                     << parent;
}

LogicalResult
SliceEncodingAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                                  function_ref<InFlightDiagnostic()> emitError) const {
  int64_t quantum;
  if (auto mma = dyn_cast<MmaEncodingAttr>(getParent()))
    quantum = getDim() == 1 ? mma.rowQuantum() : mma.colQuantum();
  else
    quantum = kWarpRows * cast<RowSpanEncodingAttr>(getParent()).getWarps();
  return verifyTileShape(emitError, "#tgpu.slice", shape, {quantum},
                         "the parent's quantum along the kept dimension");
}

//===----------------------------------------------------------------------===//
// #tgpu.row_span, #tgpu.whole
//===----------------------------------------------------------------------===//

LogicalResult RowSpanEncodingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                          int64_t warps) {
  if (!isPowerOfTwo(warps) || warps > kMaxWarps)
    return emitError() << "warps must be a power of two in [1, " << kMaxWarps << "], got "
                       << warps;
  return success();
}

LogicalResult
RowSpanEncodingAttr::verifyEncoding(ArrayRef<int64_t> shape, Type,
                                    function_ref<InFlightDiagnostic()> emitError) const {
  return verifyTileShape(emitError, "#tgpu.row_span", shape, {kWarpRows * getWarps(), 1},
                         "16 rows per warp");
}

LogicalResult
WholeEncodingAttr::verifyEncoding(ArrayRef<int64_t>, Type,
                                  function_ref<InFlightDiagnostic()>) const {
  return success(); // every thread holds every element: any shape fits
}

//===----------------------------------------------------------------------===//
// #tgpu.shared
//===----------------------------------------------------------------------===//

LogicalResult SharedLayoutAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                       SwizzleKind kind, int64_t pad) {
  if (kind == SwizzleKind::padded_rows) {
    if (pad <= 0 || pad % 16)
      return emitError() << "padded_rows needs a pad that keeps 16-byte copies aligned "
                            "(a positive multiple of 16 bytes), got "
                         << pad;
    return success();
  }
  if (pad != 0)
    return emitError() << "only padded_rows takes a pad";
  return success();
}
