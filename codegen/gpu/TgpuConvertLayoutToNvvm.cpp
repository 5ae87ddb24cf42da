//===- TgpuConvertLayoutToNvvm.cpp - layout conversions in registers ------===//
//
// The layout-conversion family of tessera-convert-tgpu-to-nvvm (docs/RationaleTgpu.md,
// step 9): the one conversion that needs no data movement, an accumulator read as the
// next product's left operand (FlashAttention-2's P). Each thread holds the same
// elements in both layouts, in another order (Layouts.h: accSlotForOperandA), so the
// conversion picks slots and writes nothing. Conversions that move elements between
// threads go through a shared scratch with its barriers and stay tessera-tile-to-gpu's
// (SharedMemory.cpp: convertThroughShared) until scratch buffers are ops.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/TgpuToNvvm.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
/// Whether `op` reads an accumulator tile as a left operand of the same shape.
bool convertsInRegisters(tgpu::ConvertLayoutOp op) {
  std::optional<Layout> in = layoutOfType(op.getSource().getType());
  std::optional<Layout> out = layoutOfType(op.getType());
  return in && out && tessera::gpu::convertsInRegisters(*in, *out);
}

struct LowerAccumulatorToOperandA : OpConversionPattern<tgpu::ConvertLayoutOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::ConvertLayoutOp op, OneToNOpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (!convertsInRegisters(op))
      return rewriter.notifyMatchFailure(op, "not an accumulator read as a left operand");
    Layout out = *layoutOfType(op.getType());
    ValueRange in = adaptor.getSource();
    SmallVector<Value> slots;
    for (int64_t s = 0; s < numSlots(out); ++s)
      slots.push_back(in[accSlotForOperandA(s, out.cols)]);
    rewriter.replaceOpWithMultiple(op, {slots});
    return success();
  }
};

void populate(const TypeConverter &types, RewritePatternSet &patterns,
              ConversionTarget &target) {
  target.addIllegalOp<tgpu::ConvertLayoutOp>();
  patterns.add<LowerAccumulatorToOperandA>(types, patterns.getContext());
}

LogicalResult check(Operation *op) {
  auto convert = dyn_cast<tgpu::ConvertLayoutOp>(op);
  if (!convert || convertsInRegisters(convert))
    return success();
  return op->emitOpError("has no per-thread form: only an accumulator read as a left "
                         "operand of its shape converts in registers (tessera-tile-to-gpu "
                         "converts the others through shared memory)");
}
} // namespace

TileOpFamily tessera::gpu::convertLayoutFamily() { return {populate, check}; }
