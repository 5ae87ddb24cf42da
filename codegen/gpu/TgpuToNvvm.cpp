//===- TgpuToNvvm.cpp - tessera-convert-tgpu-to-nvvm ----------------------===//
//
// The tgpu -> nvvm conversion of the ops tessera-tile-to-gpu leaves on tiles
// (docs/RationaleTgpu.md, step 9). A tile whose type carries a #tgpu register layout is,
// in each thread, the list of scalars ("slots") that layout gives it (Layouts.h:
// numSlots): the type converter maps it to them (1:N), and each op family's patterns
// write its ops on slots (TgpuElementwiseToNvvm.cpp, TgpuReduceToNvvm.cpp,
// TgpuConvertLayoutToNvvm.cpp); scf loops and branches carrying tiles carry their slots
// (upstream's structural conversions). Then
// rounding divisions (ceildivsi / floordivsi, of tiles or of index arithmetic copied
// from the host) become plain integer ops.
//
// tessera-tile-to-gpu leaves each such op in place, on tiles it makes from its
// operands' slots by unrealized casts (and its result cast back to slots); the pass
// folds those casts into the slots they carry.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/TgpuToNvvm.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/Transforms/Patterns.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUTONVVM
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
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

struct TgpuToNvvmPass : tessera::gpu::impl::TgpuToNvvmBase<TgpuToNvvmPass> {
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
    TileOpFamily families[] = {elementwiseFamily(), reduceFamily(), convertLayoutFamily()};
    // What no family can lower is reported at the op before anything is rewritten.
    WalkResult checked = getOperation()->walk([&](Operation *op) {
      // A tile is per-thread slots inside a kernel; no launch passes one.
      if (auto function = dyn_cast<::mlir::gpu::GPUFuncOp>(op))
        for (BlockArgument arg : function.getArguments())
          if (layoutOfType(arg.getType())) {
            function.emitOpError("has no per-thread form: argument #")
                << arg.getArgNumber() << " is a tile (" << arg.getType()
                << "); a kernel takes buffers and scalars, its tiles live inside it";
            return WalkResult::interrupt();
          }
      for (const TileOpFamily &family : families)
        if (failed(family.check(op)))
          return WalkResult::interrupt();
      return WalkResult::advance();
    });
    if (checked.wasInterrupted())
      return signalPassFailure();
    ConversionTarget target(*ctx);
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    target.addDynamicallyLegalOp<UnrealizedConversionCastOp>(
        [](UnrealizedConversionCastOp cast) { return !castsTiles(cast); });
    RewritePatternSet patterns(ctx);
    patterns.add<FoldSlotCasts>(types, ctx);
    for (const TileOpFamily &family : families)
      family.populate(types, patterns, target);
    // Tiles carried by loops and branches (hand-written IR; the distributor's own loops
    // carry slots) become their slots there too: upstream's structural conversions.
    scf::populateSCFStructuralTypeConversionsAndLegality(types, patterns, target);
    if (failed(applyPartialConversion(getOperation(), target, std::move(patterns))))
      return signalPassFailure();
    // Rounding divisions become plain integer ops; the rest of arith lowers directly to
    // NVVM (max / min stay single instructions). After the per-slot lowering, so that
    // each slot's expansion stays together (docs/RationaleTgpu.md says what it costs
    // otherwise).
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
