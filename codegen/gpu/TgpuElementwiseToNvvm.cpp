//===- TgpuElementwiseToNvvm.cpp - element-wise tile ops to per-thread scalars -===//
//
// tessera-convert-tgpu-elementwise-to-nvvm: the element-wise family of the tgpu -> nvvm
// conversions (docs/RationaleTgpu.md, step 9). A tile whose type carries a #tgpu
// register layout is, in each thread, the list of scalars ("slots") that layout gives
// it (Layouts.h: numSlots), so an arith or math op on such tiles is the same op on each
// slot, and needs no data movement: the type converter maps the tile to its slots
// (1:N) and one pattern writes the op per slot. A scalar operand (a select's condition,
// a uniform value) is used in every slot; a splat constant is its scalar in every slot.
// exp2 and log2 of f32 become the one-instruction approximations (MUFU.EX2 / MUFU.LG2).
// A tile.broadcast of a row or column slice into an accumulator or row-span tile picks
// its input's slots and writes nothing.
//
// Then rounding divisions (ceildivsi / floordivsi, of tiles or of index arithmetic
// copied from the host) become plain integer ops.
//
// tessera-tile-to-gpu leaves each element-wise op of a kernel in place, on tiles it
// makes from its operands' slots by unrealized casts (and its result cast back to
// slots); the pass folds those casts into the slots they carry.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Transforms/DialectConversion.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUELEMENTWISETONVVM
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using tessera::gpu::broadcastSource;
using tessera::gpu::broadcastSourceSlot;
using tessera::gpu::Layout;
using tessera::gpu::layoutOfType;
using tessera::gpu::numSlots;

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

/// A tile with a register layout among a cast's operands or results.
bool castsTiles(UnrealizedConversionCastOp cast) {
  auto laidOut = [](Type t) { return layoutOfType(t).has_value(); };
  return llvm::any_of(cast->getOperandTypes(), laidOut) ||
         llvm::any_of(cast->getResultTypes(), laidOut);
}

/// tessera-tile-to-gpu's casts between a tile and its slots: the slots themselves.
struct FoldSlotCasts : OpConversionPattern<UnrealizedConversionCastOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(UnrealizedConversionCastOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    SmallVector<Value> slots;
    for (ValueRange range : adaptor.getOperands())
      slots.append(range.begin(), range.end());
    SmallVector<Type> want;
    if (failed(typeConverter->convertTypes(op->getResultTypes(), want)) ||
        TypeRange(ValueRange(slots)) != TypeRange(want))
      return rewriter.notifyMatchFailure(op, "its slots do not match its results");
    if (op->getNumResults() == 1) {
      rewriter.replaceOpWithMultiple(op, {slots});
      return success();
    }
    rewriter.replaceOp(op, slots);
    return success();
  }
};

struct TgpuElementwiseToNvvmPass
    : tessera::gpu::impl::TgpuElementwiseToNvvmBase<TgpuElementwiseToNvvmPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    TypeConverter types;
    types.addConversion([](Type t) { return t; });
    types.addConversion([](RankedTensorType t, SmallVectorImpl<Type> &slots)
                            -> std::optional<LogicalResult> {
      std::optional<Layout> layout = layoutOfType(t);
      if (!layout)
        return std::nullopt;
      slots.append(numSlots(*layout), t.getElementType());
      return success();
    });
    // Every element-wise op on tiles here must have its slots: a register layout on its
    // result (arith's verifiers hold its tile operands to the result's encoding), a
    // constant that is a splat.
    WalkResult checked = getOperation()->walk([&](Operation *op) {
      if (auto broadcast = dyn_cast<tile::BroadcastOp>(op)) {
        std::optional<Layout> out = layoutOfType(broadcast.getType());
        std::optional<Layout> source =
            out ? broadcastSource(*out, broadcast.getAxis()) : std::nullopt;
        if (!source || layoutOfType(broadcast.getInput().getType()) != source) {
          op->emitOpError("has no per-thread form: a broadcast makes an accumulator or "
                          "row-span tile from the slice of its rows (axis 1) or columns "
                          "(axis 0) that layout holds");
          return WalkResult::interrupt();
        }
        return WalkResult::advance();
      }
      if (!isElementwiseOnTiles(op))
        return WalkResult::advance();
      Type resultType = op->getNumResults() == 1 ? op->getResult(0).getType() : Type();
      std::optional<Layout> layout = layoutOfType(resultType);
      if (!layout) {
        op->emitOpError("has no per-thread form: its result is not one tile with a #tgpu "
                        "register layout (tessera-tile-to-tgpu writes them)");
        return WalkResult::interrupt();
      }
      auto constant = dyn_cast<arith::ConstantOp>(op);
      if (constant && !isa<SplatElementsAttr>(constant.getValue())) {
        op->emitOpError("has no per-thread form: a tile constant that is not a splat");
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (checked.wasInterrupted())
      return signalPassFailure();
    ConversionTarget target(*ctx);
    target.markUnknownOpDynamicallyLegal([](Operation *op) { return !isElementwiseOnTiles(op); });
    target.addIllegalOp<tile::BroadcastOp>();
    target.addDynamicallyLegalOp<UnrealizedConversionCastOp>(
        [](UnrealizedConversionCastOp cast) { return !castsTiles(cast); });
    RewritePatternSet patterns(ctx);
    patterns.add<LowerElementwise, LowerBroadcast, FoldSlotCasts>(types, ctx);
    if (failed(applyPartialConversion(getOperation(), target, std::move(patterns))))
      return signalPassFailure();
    // Rounding divisions (the tiles' and the index arithmetic copied from the host)
    // become plain integer ops; the rest of arith lowers directly to NVVM (max / min
    // stay single instructions).
    RewritePatternSet divisionPatterns(ctx);
    arith::populateCeilFloorDivExpandOpsPatterns(divisionPatterns);
    FrozenRewritePatternSet divisions(std::move(divisionPatterns));
    for (auto kernel : getOperation().getOps<::mlir::gpu::GPUFuncOp>())
      if (failed(applyPatternsGreedily(kernel, divisions))) {
        kernel.emitError("could not expand rounding divisions");
        return signalPassFailure();
      }
  }
};
} // namespace
