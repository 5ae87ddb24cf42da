//===- TgpuOps.cpp - tgpu op verifiers ------------------------------------===//
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace tessera::tgpu;

// tgpu.warp_specialize's regions through a custom directive rather than `$defaultRegion`
// and `$partitionRegions`: works around an upstream MLIR (22) parser bug. The
// ODS-generated parser parses the regions into local std::unique_ptr<Region>s that it
// destroys on a parse error without dropping the uses of the values they define (the
// generic parser does, for regions already in the OperationState); a use of one of
// them from another region, or from an op before this one (a forward reference), is
// left pointing into freed memory: heap corruption. On an error this drops those uses
// first; see parseModRegions in AttnOps.cpp.
ParseResult tessera::tgpu::parseWarpRegions(
    OpAsmParser &parser, Region &defaultRegion,
    SmallVectorImpl<std::unique_ptr<Region>> &partitions) {
  auto fail = [&]() -> ParseResult {
    SmallVector<Region *> regions = {&defaultRegion};
    for (std::unique_ptr<Region> &region : partitions)
      regions.push_back(region.get());
    for (Region *region : regions)
      for (Block &block : *region)
        block.dropAllDefinedValueUses();
    return failure();
  };
  if (parser.parseKeyword("default") || parser.parseRegion(defaultRegion) ||
      parser.parseKeyword("partitions"))
    return fail();
  std::unique_ptr<Region> region = std::make_unique<Region>();
  OptionalParseResult first = parser.parseOptionalRegion(*region);
  if (!first.has_value())
    return success();
  partitions.push_back(std::move(region));
  if (failed(*first))
    return fail();
  while (succeeded(parser.parseOptionalComma())) {
    partitions.push_back(std::make_unique<Region>());
    if (parser.parseRegion(*partitions.back()))
      return fail();
  }
  return success();
}

void tessera::tgpu::printWarpRegions(OpAsmPrinter &printer, Operation *,
                                     Region &defaultRegion,
                                     MutableArrayRef<Region> partitions) {
  printer << "default ";
  printer.printRegion(defaultRegion);
  printer << " partitions ";
  llvm::interleaveComma(partitions, printer,
                        [&](Region &region) { printer.printRegion(region); });
}

#define GET_OP_CLASSES
#include "dialect/tgpu/TgpuOps.cpp.inc"

/// Registers hold tiles only in a layout of this dialect.
static LogicalResult verifyRegisterTile(Operation *op, Type type, StringRef what) {
  if (!isRegisterLayout(cast<RankedTensorType>(type).getEncoding()))
    return op->emitOpError() << what << " must carry a tgpu register layout, got " << type;
  return success();
}

/// A stage index is given exactly when there are several stages, and a constant one is
/// in range.
/// `scheduled`: a copy or read of a multi-stage buffer may leave its stage to the
/// enclosing loop's schedule (tessera-tile-to-gpu pipelines the loop).
static LogicalResult verifyStage(Operation *op, int64_t stages, Value stage, StringRef what,
                                 bool scheduled = false) {
  if (stages > 1 && !stage && !scheduled)
    return op->emitOpError() << what << " has " << stages << " stages: give a stage index";
  if (stages == 1 && stage)
    return op->emitOpError() << what << " has one stage: it takes no stage index";
  APInt index;
  if (stage && matchPattern(stage, m_ConstantInt(&index)) &&
      (index.isNegative() || index.getSExtValue() >= stages))
    return op->emitOpError() << "stage index " << index.getSExtValue() << " is out of range for "
                             << what << " of " << stages << " stages";
  return success();
}

static LogicalResult verifyMutable(Operation *op, SharedBufferType buffer) {
  if (!buffer.getIsMutable())
    return op->emitOpError() << "writes an immutable buffer " << buffer;
  return success();
}

/// The tile a shared buffer holds (per stage) against a register tile or another box.
static LogicalResult verifySameTile(Operation *op, ArrayRef<int64_t> bufferShape,
                                    Type bufferElement, ArrayRef<int64_t> shape,
                                    Type element, StringRef what) {
  if (bufferShape != shape)
    return op->emitOpError() << what << " shape (" << shape
                             << ") differs from the shared buffer's (" << bufferShape << ")";
  if (bufferElement != element)
    return op->emitOpError() << what << " element type " << element
                             << " differs from the shared buffer's " << bufferElement;
  return success();
}

/// `tile` (its transpose with `trans`) is the tile `buffer` holds; `verb` says what trans
/// does, `what` names the tile.
static LogicalResult verifyBufferTile(Operation *op, SharedBufferType buffer,
                                      RankedTensorType tile, bool trans, StringRef verb,
                                      StringRef what) {
  SmallVector<int64_t> shape(tile.getShape());
  if (trans) {
    if (shape.size() != 2)
      return op->emitOpError() << "trans " << verb << " 2-D tiles, got rank " << shape.size();
    std::swap(shape[0], shape[1]);
  }
  std::string named = ((trans ? "the transposed " : "the ") + what + "'s").str();
  return verifySameTile(op, buffer.getShape(), buffer.getElementType(), shape,
                        tile.getElementType(), named);
}

static LogicalResult verifyPending(Operation *op, int64_t pending) {
  if (pending < 0)
    return op->emitOpError() << "pending must be at least 0, got " << pending;
  return success();
}

//===----------------------------------------------------------------------===//
// Registers and shared memory
//===----------------------------------------------------------------------===//

LogicalResult ConvertLayoutOp::verify() {
  auto source = cast<RankedTensorType>(getSource().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  if (source.getShape() != result.getShape() ||
      source.getElementType() != result.getElementType())
    return emitOpError("changes only the layout: shape and element type must stay ")
           << source.cloneWithEncoding({}) << ", got " << result.cloneWithEncoding({});
  if (failed(verifyRegisterTile(*this, source, "the source")))
    return failure();
  return verifyRegisterTile(*this, result, "the result");
}

OpFoldResult ConvertLayoutOp::fold(FoldAdaptor) {
  if (getSource().getType() == getResult().getType())
    return getSource();
  return {};
}

LogicalResult LocalAllocOp::verify() {
  SharedBufferType buffer = getResult().getType();
  if (!getInit()) {
    if (getTrans())
      return emitOpError("trans stores the transpose of an initial value: give one");
    if (!buffer.getIsMutable())
      return emitOpError("an empty buffer must be mutable (nothing could fill it)");
    return success();
  }
  if (buffer.getIsMutable() || buffer.getStages() != 1)
    return emitOpError("a buffer made from a value is immutable and has one stage, got ")
           << buffer;
  auto init = cast<RankedTensorType>(getInit().getType());
  if (failed(verifyRegisterTile(*this, init, "the initial value")))
    return failure();
  return verifyBufferTile(*this, buffer, init, getTrans(), "stores", "initial value");
}

LogicalResult LocalLoadOp::verify() {
  SharedBufferType buffer = getBuffer().getType();
  auto result = cast<RankedTensorType>(getResult().getType());
  if (failed(verifyStage(*this, buffer.getStages(), getStage(), "the buffer",
                         /*scheduled=*/buffer.getIsMutable())) ||
      failed(verifyRegisterTile(*this, result, "the result")))
    return failure();
  return verifyBufferTile(*this, buffer, result, getTrans(), "reads", "result");
}

LogicalResult LocalStoreOp::verify() {
  SharedBufferType buffer = getBuffer().getType();
  auto value = cast<RankedTensorType>(getValue().getType());
  if (failed(verifyMutable(*this, buffer)) ||
      failed(verifyStage(*this, buffer.getStages(), getStage(), "the buffer")) ||
      failed(verifyRegisterTile(*this, value, "the stored value")))
    return failure();
  return verifySameTile(*this, buffer.getShape(), buffer.getElementType(), value.getShape(),
                        value.getElementType(), "the stored value's");
}

//===----------------------------------------------------------------------===//
// cp.async
//===----------------------------------------------------------------------===//

LogicalResult AsyncCopyOp::verify() {
  MemRefType source = getSource().getType();
  SharedBufferType buffer = getBuffer().getType();
  if (failed(verifyMutable(*this, buffer)) ||
      failed(verifyStage(*this, buffer.getStages(), getStage(), "the buffer",
                         /*scheduled=*/true)))
    return failure();
  if (int64_t(getIndices().size()) != source.getRank())
    return emitOpError("expects ") << source.getRank() << " indices, got "
                                   << getIndices().size();
  if (int64_t(buffer.getShape().size()) > source.getRank())
    return emitOpError("the tile's rank (") << buffer.getShape().size()
                                            << ") exceeds the source's (" << source.getRank()
                                            << ")";
  if (source.getElementType() != buffer.getElementType())
    return emitOpError("source element type ")
           << source.getElementType() << " differs from the buffer's "
           << buffer.getElementType();
  int64_t rowBytes = buffer.getShape().back() * buffer.getElementType().getIntOrFloatBitWidth() / 8;
  if (rowBytes % 16)
    return emitOpError("cp.async moves 16-byte chunks: a tile row must be a multiple of 16 "
                       "bytes, got ")
           << rowBytes;
  return success();
}

LogicalResult AsyncWaitOp::verify() { return verifyPending(*this, getPending()); }

//===----------------------------------------------------------------------===//
// mbarriers
//===----------------------------------------------------------------------===//

/// The arrival count and transaction bytes of an mbarrier phase are 20-bit fields.
static constexpr int64_t kMbarrierMax = (1 << 20) - 1;

LogicalResult MbarrierInitOp::verify() {
  if (getCount() < 1 || getCount() > kMbarrierMax)
    return emitOpError("count must be in [1, ") << kMbarrierMax << "], got " << getCount();
  return success();
}

LogicalResult MbarrierArriveOp::verify() {
  if (getCount() < 1)
    return emitOpError("count must be at least 1, got ") << getCount();
  return verifyStage(*this, getBarrier().getType().getStages(), getStage(), "the barrier");
}

LogicalResult MbarrierExpectTxOp::verify() {
  if (getBytes() < 1 || getBytes() > kMbarrierMax)
    return emitOpError("bytes must be in [1, ") << kMbarrierMax << "], got " << getBytes();
  return verifyStage(*this, getBarrier().getType().getStages(), getStage(), "the barrier");
}

LogicalResult MbarrierWaitOp::verify() {
  return verifyStage(*this, getBarrier().getType().getStages(), getStage(), "the barrier");
}

//===----------------------------------------------------------------------===//
// Named barriers
//===----------------------------------------------------------------------===//

/// PTX's named barriers: 16 a block, counting whole warps of a block of up to 1024
/// threads.
static LogicalResult verifyNamedBarrier(Operation *op, Value id, int64_t threads) {
  if (threads < 32 || threads > 1024 || threads % 32)
    return op->emitOpError("threads must be a multiple of 32 in [32, 1024], got ") << threads;
  APInt constant;
  if (matchPattern(id, m_ConstantInt(&constant)) &&
      (constant.isNegative() || constant.getSExtValue() > 15))
    return op->emitOpError("a block has named barriers 0 to 15, got ")
           << constant.getSExtValue();
  return success();
}

LogicalResult NamedBarrierOp::verify() { return verifyNamedBarrier(*this, getId(), getThreads()); }

LogicalResult NamedBarrierArriveOp::verify() {
  return verifyNamedBarrier(*this, getId(), getThreads());
}

//===----------------------------------------------------------------------===//
// TMA
//===----------------------------------------------------------------------===//

/// A descriptor's box against the shared buffer it fills or drains, and its coordinates.
static LogicalResult verifyTmaBox(Operation *op, TmaDescriptorType desc,
                                  SharedBufferType buffer, size_t numCoordinates) {
  if (failed(verifySameTile(op, buffer.getShape(), buffer.getElementType(), desc.getShape(),
                            desc.getElementType(), "the descriptor's box")))
    return failure();
  if (desc.getLayout() != buffer.getLayout())
    return op->emitOpError("the descriptor writes ")
           << desc.getLayout() << " but the buffer is " << buffer.getLayout();
  if (numCoordinates < desc.getShape().size() || numCoordinates > 5)
    return op->emitOpError("expects one coordinate per global dimension (")
           << desc.getShape().size() << " to 5), got " << numCoordinates;
  return success();
}

LogicalResult TmaLoadOp::verify() {
  SharedBufferType buffer = getBuffer().getType();
  if (failed(verifyMutable(*this, buffer)) ||
      failed(verifyStage(*this, buffer.getStages(), getStage(), "the buffer")) ||
      failed(verifyStage(*this, getBarrier().getType().getStages(), getBarrierStage(),
                         "the barrier")))
    return failure();
  return verifyTmaBox(*this, getDescriptor().getType(), buffer, getCoordinates().size());
}

LogicalResult TmaStoreOp::verify() {
  SharedBufferType buffer = getBuffer().getType();
  if (buffer.getStages() != 1)
    return emitOpError("stores one tile: the buffer must have one stage, got ")
           << buffer.getStages();
  return verifyTmaBox(*this, getDescriptor().getType(), buffer, getCoordinates().size());
}

LogicalResult TmaStoreWaitOp::verify() { return verifyPending(*this, getPending()); }

//===----------------------------------------------------------------------===//
// Warpgroup MMA
//===----------------------------------------------------------------------===//

static bool isSixteenBitFloat(Type t) { return t.isF16() || t.isBF16(); }

LogicalResult WarpgroupDotOp::verify() {
  auto acc = cast<RankedTensorType>(getAcc().getType());
  auto layout = dyn_cast_or_null<MmaEncodingAttr>(acc.getEncoding());
  if (!layout || layout.getVersion() != MmaVersion::wgmma)
    return emitOpError("the accumulator must have a #tgpu.mma<wgmma, ...> layout, got ") << acc;
  if (!acc.getElementType().isF32())
    return emitOpError("accumulates in f32, got ") << acc.getElementType();

  SharedBufferType b = getB().getType();
  if (failed(verifyStage(*this, b.getStages(), getBStage(), "operand b")))
    return failure();
  ArrayRef<int64_t> aShape;
  Type aElement;
  if (auto aBuffer = dyn_cast<SharedBufferType>(getA().getType())) {
    if (failed(verifyStage(*this, aBuffer.getStages(), getAStage(), "operand a")))
      return failure();
    if (aBuffer.getLayout().getKind() != SwizzleKind::swizzle_128b)
      return emitOpError("operand a in shared memory must be swizzle_128b, got ")
             << aBuffer.getLayout();
    aShape = aBuffer.getShape();
    aElement = aBuffer.getElementType();
  } else {
    auto a = cast<RankedTensorType>(getA().getType());
    if (getAStage())
      return emitOpError("operand a in registers takes no stage index");
    auto operand = dyn_cast_or_null<DotOperandEncodingAttr>(a.getEncoding());
    if (!operand || operand.getOperand() != OperandIndex::a || operand.getParent() != layout)
      return emitOpError("operand a in registers must have the #tgpu.dot_operand<a> layout "
                         "of the accumulator's, got ")
             << a;
    aShape = a.getShape();
    aElement = a.getElementType();
  }
  if (b.getLayout().getKind() != SwizzleKind::swizzle_128b)
    return emitOpError("operand b must be swizzle_128b, got ") << b.getLayout();
  if (!isSixteenBitFloat(aElement) || aElement != b.getElementType())
    return emitOpError("operands must both be f16 or both bf16, got ")
           << aElement << " and " << b.getElementType();

  // Both operands are 2-D here: swizzle_128b and the dot operand layout hold only those.
  SmallVector<int64_t> bShape(b.getShape());
  if (getTransB())
    std::swap(bShape[0], bShape[1]);
  ArrayRef<int64_t> m = acc.getShape();
  if (aShape[0] != m[0] || bShape[1] != m[1] || aShape[1] != bShape[0])
    return emitOpError("expects [M, K] x [K, N] -> [M, N], got [")
           << aShape << "] x [" << bShape << "] -> [" << m << "]";
  return success();
}

LogicalResult WarpgroupWaitOp::verify() { return verifyPending(*this, getPending()); }

LogicalResult WarpgroupWaitOp::inferReturnTypes(
    MLIRContext *, std::optional<Location>, ValueRange operands, DictionaryAttr attributes,
    OpaqueProperties properties, RegionRange regions, SmallVectorImpl<Type> &inferred) {
  WarpgroupWaitOp::Adaptor adaptor(operands, attributes, properties, regions);
  llvm::append_range(inferred, adaptor.getValues().getTypes());
  return success();
}

//===----------------------------------------------------------------------===//
// Warp specialisation
//===----------------------------------------------------------------------===//

/// setmaxnreg takes a multiple of 8 in [24, 256].
static LogicalResult verifyRegisterBudget(Operation *op, int32_t registers) {
  if (registers < 24 || registers > 256 || registers % 8)
    return op->emitOpError("register budgets must be multiples of 8 in [24, 256], got ")
           << registers;
  return success();
}

LogicalResult WarpSpecializeOp::verify() {
  ArrayRef<int32_t> warps = getNumWarps();
  size_t partitions = getPartitionRegions().size();
  if (partitions == 0)
    return emitOpError("needs at least one partition");
  if (warps.size() != partitions)
    return emitOpError("has ") << partitions << " partitions but " << warps.size()
                               << " warp counts";
  for (int32_t w : warps)
    if (w < 1 || w > 16 || (w & (w - 1)))
      return emitOpError("partition warp counts must be powers of two in [1, 16], got ") << w;
  if (std::optional<ArrayRef<int32_t>> registers = getRegisters()) {
    if (registers->size() != partitions)
      return emitOpError("has ") << partitions << " partitions but " << registers->size()
                                 << " register budgets";
    for (int32_t r : *registers)
      if (failed(verifyRegisterBudget(*this, r)))
        return failure();
  }
  if (std::optional<int32_t> registers = getDefaultRegisters())
    if (failed(verifyRegisterBudget(*this, *registers)))
      return failure();

  Block &body = getDefaultRegion().front();
  auto yield = body.empty() ? WarpYieldOp() : dyn_cast<WarpYieldOp>(body.back());
  if (!yield)
    return emitOpError("the default region must end with tgpu.warp_yield");
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("the default region yields (")
           << yield.getValues().getTypes() << ") but the op returns (" << getResultTypes()
           << ")";
  for (Region &partition : getPartitionRegions())
    if (partition.front().empty() || !isa<WarpReturnOp>(partition.front().back()))
      return emitOpError("every partition must end with tgpu.warp_return");
  return success();
}
