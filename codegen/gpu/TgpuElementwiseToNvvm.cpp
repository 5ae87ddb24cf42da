//===- TgpuElementwiseToNvvm.cpp - element-wise tile ops per slot ---------===//
//
// The element-wise family of tessera-convert-tgpu-to-nvvm (docs/RationaleTgpu.md, step
// 9): an arith or math op on tiles with register layouts is the same op on each slot,
// with no data movement (a scalar operand, such as a uniform select condition, in every
// slot; a splat constant its scalar). exp2 and log2 of f32 become the one-instruction
// approximations (MUFU.EX2 / MUFU.LG2). A tile.broadcast of a row or column slice into
// an accumulator or row-span tile picks its input's slots and writes nothing.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/TgpuToNvvm.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
bool isTile(Type t) { return isa<RankedTensorType>(t); }

/// An arith or math op on tiles: the family this pass lowers.
bool isElementwiseOnTiles(Operation *op) {
  Dialect *dialect = op->getDialect();
  StringRef ns = dialect ? dialect->getNamespace() : "";
  return (ns == "arith" || ns == "math") &&
         (llvm::any_of(op->getResultTypes(), isTile) ||
          llvm::any_of(op->getOperandTypes(), isTile));
}

/// The one-instruction approximation of an f32 exp2 or log2, empty for other ops.
/// Upstream's ex2.approx.f32 brackets each call with a rescale for subnormal results
/// (three more instructions); flushing them to zero changes no softmax weight or decay
/// factor by more than 2^-126. log2 (of softmax sums, >= 1 for any row that saw a key)
/// would otherwise be a ~30-instruction polynomial; lg2.approx is within 2^-22 of it.
StringRef approximation(Operation *op, Type scalar) {
  if (!scalar.isF32())
    return "";
  if (isa<math::Exp2Op>(op))
    return "llvm.nvvm.ex2.approx.ftz.f32";
  if (isa<math::Log2Op>(op))
    return "llvm.nvvm.lg2.approx.ftz.f";
  return "";
}

struct LowerElementwise : ConversionPattern {
  LowerElementwise(const TypeConverter &types, MLIRContext *ctx)
      : ConversionPattern(types, MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}

  LogicalResult matchAndRewrite(Operation *op, ArrayRef<ValueRange> operands,
                                ConversionPatternRewriter &rewriter) const override {
    if (!isElementwiseOnTiles(op) || op->getNumResults() != 1)
      return rewriter.notifyMatchFailure(op, "not an element-wise op on one tile");
    auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    SmallVector<Type> slotTypes;
    if (!type || failed(typeConverter->convertType(type, slotTypes)) ||
        slotTypes.size() == 1 && slotTypes.front() == type)
      return rewriter.notifyMatchFailure(op, "its result has no register layout");
    Type scalar = type.getElementType();
    int64_t slots = slotTypes.size();
    Location loc = op->getLoc();
    SmallVector<Value> out;
    if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
      auto dense = dyn_cast<SplatElementsAttr>(constant.getValue());
      if (!dense)
        return rewriter.notifyMatchFailure(op, "a tile constant that is not a splat");
      auto value = cast<TypedAttr>(dense.getSplatValue<Attribute>());
      out.assign(slots, arith::ConstantOp::create(rewriter, loc, value));
      rewriter.replaceOpWithMultiple(op, {out});
      return success();
    }
    for (ValueRange range : operands)
      if (range.size() != 1 && int64_t(range.size()) != slots)
        return rewriter.notifyMatchFailure(op, "an operand in another layout");
    StringRef intrinsic = approximation(op, scalar);
    for (int64_t s = 0; s < slots; ++s) {
      SmallVector<Value> args;
      for (ValueRange range : operands)
        args.push_back(range.size() == 1 ? range.front() : range[s]);
      if (!intrinsic.empty()) {
        out.push_back(LLVM::CallIntrinsicOp::create(rewriter, loc, scalar,
                                                    rewriter.getStringAttr(intrinsic), args)
                          .getResult(0));
        continue;
      }
      OperationState state(loc, op->getName(), args, {scalar}, op->getAttrs());
      out.push_back(rewriter.create(state)->getResult(0));
    }
    rewriter.replaceOpWithMultiple(op, {out});
    return success();
  }
};

/// A broadcast repeats its input's slots (Layouts.h: broadcastSourceSlot): nothing moves
/// between threads, no instruction is written.
struct LowerBroadcast : OpConversionPattern<tile::BroadcastOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tile::BroadcastOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    std::optional<Layout> out = layoutOfType(op.getType());
    if (!out || layoutOfType(op.getInput().getType()) != broadcastSource(*out, op.getAxis()))
      return rewriter.notifyMatchFailure(op, "its input is not in its source layout");
    ValueRange in = adaptor.getInput();
    SmallVector<Value> slots;
    for (int64_t s = 0; s < numSlots(*out); ++s)
      slots.push_back(in[broadcastSourceSlot(*out, op.getAxis(), s)]);
    rewriter.replaceOpWithMultiple(op, {slots});
    return success();
  }
};

void populate(const TypeConverter &types, RewritePatternSet &patterns,
              ConversionTarget &target) {
  target.addDynamicallyLegalDialect<arith::ArithDialect, math::MathDialect>(
      [](Operation *op) { return !isElementwiseOnTiles(op); });
  target.addIllegalOp<tile::BroadcastOp>();
  patterns.add<LowerElementwise, LowerBroadcast>(types, patterns.getContext());
}

/// Every element-wise op on tiles must have its slots: a register layout on its result
/// (arith's verifiers hold its tile operands to the result's encoding), a constant that
/// is a splat; a broadcast reads its result's row or column slice.
LogicalResult check(Operation *op) {
  if (auto broadcast = dyn_cast<tile::BroadcastOp>(op)) {
    std::optional<Layout> out = layoutOfType(broadcast.getType());
    std::optional<Layout> source = out ? broadcastSource(*out, broadcast.getAxis()) : std::nullopt;
    if (!source || layoutOfType(broadcast.getInput().getType()) != source)
      return op->emitOpError("has no per-thread form: a broadcast makes an accumulator or "
                             "row-span tile from the slice of its rows (axis 1) or columns "
                             "(axis 0) that layout holds");
    return success();
  }
  if (!isElementwiseOnTiles(op))
    return success();
  Type resultType = op->getNumResults() == 1 ? op->getResult(0).getType() : Type();
  if (!layoutOfType(resultType))
    return op->emitOpError("has no per-thread form: its result is not one tile with a #tgpu "
                           "register layout (tessera-tile-to-tgpu writes them)");
  auto constant = dyn_cast<arith::ConstantOp>(op);
  if (constant && !isa<SplatElementsAttr>(constant.getValue()))
    return op->emitOpError("has no per-thread form: a tile constant that is not a splat");
  return success();
}
} // namespace

TileOpFamily tessera::gpu::elementwiseFamily() { return {populate, check}; }
