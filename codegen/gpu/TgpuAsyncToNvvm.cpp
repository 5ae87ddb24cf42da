//===- TgpuAsyncToNvvm.cpp - mbarriers and TMA copies to PTX ---------------===//
//
// tessera-convert-tgpu-async-to-nvvm: the asynchronous-copy family of the tgpu -> nvvm
// conversions (docs/RationaleTgpu.md, step 9). Types become what the instructions
// address: an !tgpu.mbarrier its barrier's 32-bit shared-window address (stage s 8 * s
// bytes further), an !tgpu.smem its stage 0's (stage s getStageBytes() * s further),
// a !tgpu.tma_desc the kernel's descriptor parameter (!llvm.ptr). The instructions are
// inline PTX, as NVVM emits its own, with the addresses in 32-bit registers:
//   tgpu.mbarrier_init %b count = n    -> mbarrier.init.shared::cta.b64 [b], n (each stage)
//   tgpu.fence_mbarrier_init           -> fence.mbarrier_init.release.cluster
//   tgpu.mbarrier_expect_tx %b bytes   -> mbarrier.arrive.expect_tx.shared::cta.b64
//   tgpu.mbarrier_arrive %b count = n  -> mbarrier.arrive.shared::cta.b64 (predicated
//                                         with `if %p`)
//   tgpu.mbarrier_wait %b, %phase      -> a mbarrier.try_wait.parity loop
//   tgpu.tma_load                      -> cp.async.bulk.tensor.Nd ... complete_tx::bytes,
//                                         one per 64-column block of a swizzle_128b box
//   tgpu.tma_store                     -> cp.async.bulk.tensor.Nd.global.shared::cta
//                                         (a block each), one bulk commit_group
//   tgpu.tma_store_wait pending = n    -> cp.async.bulk.wait_group.read n
// tessera-tile-to-gpu's kernels name their barriers and boxes by address, through
// unrealized casts to these types, which fold away here; an op naming a barrier or
// buffer whose address nothing gives (its allocation not lowered) is an error.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/Wgmma.h"
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/DialectConversion.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUASYNCTONVVM
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using tessera::gpu::inlinePtx;
using tessera::gpu::toI32;

namespace {
Value i32Constant(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v);
}

/// Element `index` of an array of `bytes`-byte elements at 32-bit address `base`.
Value elementAddress(OpBuilder &b, Location loc, Value base, Value index, int64_t bytes) {
  if (!index)
    return base;
  Value i = arith::IndexCastUIOp::create(b, loc, b.getI32Type(), index);
  Value offset = arith::MulIOp::create(b, loc, i, i32Constant(b, loc, bytes));
  return arith::AddIOp::create(b, loc, base, offset);
}

/// Stage `stage` (null: the only one) of the mbarriers at `base`: 8 bytes each.
Value barrierAddress(OpBuilder &b, Location loc, Value base, Value stage) {
  return elementAddress(b, loc, base, stage, 8);
}

/// `op` replaced by one PTX statement with side effects.
void replaceWithPtx(ConversionPatternRewriter &rewriter, Operation *op, ValueRange operands,
                    StringRef ptx, StringRef constraints) {
  inlinePtx(rewriter, op->getLoc(), Type(), operands, ptx, constraints);
  rewriter.eraseOp(op);
}

/// `x` where `pred` is `x == 0` for an index or 32-bit `x`; null otherwise.
Value testedForZero(Value pred) {
  auto cmp = pred.getDefiningOp<arith::CmpIOp>();
  if (!cmp || cmp.getPredicate() != arith::CmpIPredicate::eq || !matchPattern(cmp.getRhs(), m_Zero()))
    return {};
  Type t = cmp.getLhs().getType();
  return t.isIndex() || t.isInteger(32) ? cmp.getLhs() : Value();
}

struct LowerMbarrierInit : OpConversionPattern<tgpu::MbarrierInitOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::MbarrierInitOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    std::string ptx = "mbarrier.init.shared::cta.b64 [$0], " + std::to_string(op.getCount()) + ";";
    for (int64_t s = 0, e = op.getBarrier().getType().getStages(); s < e; ++s) {
      Value stage = s ? arith::ConstantIndexOp::create(rewriter, loc, s).getResult() : Value();
      inlinePtx(rewriter, loc, Type(), barrierAddress(rewriter, loc, adaptor.getBarrier(), stage),
                ptx, "r");
    }
    rewriter.eraseOp(op);
    return success();
  }
};

struct LowerFenceMbarrierInit : OpConversionPattern<tgpu::FenceMbarrierInitOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::FenceMbarrierInitOp op, OpAdaptor,
                                ConversionPatternRewriter &rewriter) const override {
    replaceWithPtx(rewriter, op, ValueRange(), "fence.mbarrier_init.release.cluster;", "");
    return success();
  }
};

struct LowerMbarrierExpectTx : OpConversionPattern<tgpu::MbarrierExpectTxOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::MbarrierExpectTxOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value barrier = barrierAddress(rewriter, loc, adaptor.getBarrier(), adaptor.getStage());
    Value bytes = i32Constant(rewriter, loc, op.getBytes());
    replaceWithPtx(rewriter, op, ValueRange{barrier, bytes},
                   "mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r");
    return success();
  }
};

struct LowerMbarrierArrive : OpConversionPattern<tgpu::MbarrierArriveOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::MbarrierArriveOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    SmallVector<Value> operands{
        barrierAddress(rewriter, loc, adaptor.getBarrier(), adaptor.getStage())};
    std::string ptx = "mbarrier.arrive.shared::cta.b64 _, [$0]", constraints = "r";
    if (op.getCount() != 1) {
      operands.push_back(i32Constant(rewriter, loc, op.getCount()));
      ptx += ", $1";
      constraints += ",r";
    }
    ptx += ";";
    if (Value pred = adaptor.getPred()) {
      // Predicated, not branched around. A test of a value against zero (one lane a
      // warp) is made inside the statement: as a predicate operand LLVM hoists it into a
      // predicate register live across the kernel, which cost the D = 128 pingpong
      // kernels 60-240 bytes of spills.
      unsigned p = operands.size();
      if (Value tested = testedForZero(pred)) {
        ptx = "{\n.reg .pred first;\nsetp.eq.u32 first, $" + std::to_string(p) +
              ", 0;\n@first " + ptx + "\n}";
        operands.push_back(toI32(rewriter, loc, tested));
        constraints += ",r";
      } else {
        ptx = "@$" + std::to_string(p) + " " + ptx;
        operands.push_back(pred);
        constraints += ",b";
      }
    }
    replaceWithPtx(rewriter, op, operands, ptx, constraints);
    return success();
  }
};

struct LowerMbarrierWait : OpConversionPattern<tgpu::MbarrierWaitOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::MbarrierWaitOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value barrier = barrierAddress(rewriter, loc, adaptor.getBarrier(), adaptor.getStage());
    Value parity = arith::ExtUIOp::create(rewriter, loc, rewriter.getI32Type(), adaptor.getPhase());
    // A loop in one asm block: PTX scopes the label to its braces.
    replaceWithPtx(rewriter, op, ValueRange{barrier, parity},
                   "{\n.reg .pred done;\nwait_phase:\n"
                   "mbarrier.try_wait.parity.shared::cta.b64 done, [$0], $1;\n"
                   "@!done bra wait_phase;\n}",
                   "r,r");
    return success();
  }
};

/// The `{$first, ...}` coordinate list of a bulk tensor copy over `rank` coordinates,
/// adding their "r" constraints to `constraints`.
std::string coordinateList(int64_t rank, int64_t first, std::string &constraints) {
  std::string list = "{";
  for (int64_t d = 0; d < rank; ++d) {
    list += (d ? ", $" : "$") + std::to_string(first + d);
    constraints += ",r";
  }
  return list + "}";
}

/// A box of a TMA copy, checked for what the patterns lower: 2-D 16-bit tiles, a
/// swizzle_128b one copied as its 64-column blocks (a 128-byte swizzle row is a swizzled
/// box's widest; the buffer's type makes it whole blocks).
FailureOr<int64_t> blockColumns(Operation *op, tgpu::SharedBufferType buffer) {
  ArrayRef<int64_t> shape = buffer.getShape();
  if (buffer.getElementType().getIntOrFloatBitWidth() != 16 || shape.size() != 2)
    return op->emitOpError("has no NVVM form yet: it copies 2-D tiles of 16-bit elements "
                           "only, got ")
           << buffer;
  return buffer.getLayout().getKind() == tgpu::SwizzleKind::swizzle_128b
             ? tessera::gpu::kSwizzleCols
             : shape.back();
}

/// For each block of `buffer`'s box (see blockColumns), its shared address from `base`
/// and its innermost coordinate from `column`.
template <typename Fn>
void forEachBlock(ConversionPatternRewriter &rewriter, Location loc, tgpu::SharedBufferType buffer,
                  int64_t blockCols, Value base, Value column, Fn fn) {
  int64_t rows = buffer.getShape().front(), cols = buffer.getShape().back();
  for (int64_t block = 0; block < cols / blockCols; ++block) {
    // Block k is swizzle block k: [rows][64] elements after the k blocks before it.
    if (!block) {
      fn(base, column);
      continue;
    }
    // One after the other: argument order would leave the IR to the C++ compiler.
    Value at = arith::AddIOp::create(rewriter, loc, base,
                                     i32Constant(rewriter, loc, block * rows * blockCols * 2));
    Value blockColumn =
        arith::AddIOp::create(rewriter, loc, column, i32Constant(rewriter, loc, block * blockCols));
    fn(at, blockColumn);
  }
}

/// `cp.async.bulk.tensor` between stage memory at `base` (a shared address) and the box
/// of `descriptor` at `coordinates` (outermost first, as the tile ops index), one
/// instruction per block (see blockColumns): into shared memory, completing on `barrier`,
/// or out of it where `barrier` is null (into the current bulk group).
LogicalResult bulkTensorCopies(ConversionPatternRewriter &rewriter, Operation *op,
                               tgpu::SharedBufferType buffer, Value base, Value descriptor,
                               ValueRange coordinates, Value barrier) {
  FailureOr<int64_t> blockCols = blockColumns(op, buffer);
  if (failed(blockCols))
    return failure();
  bool load = bool(barrier);
  // The descriptor's coordinates run innermost first.
  SmallVector<Value> coords(llvm::reverse(coordinates));
  int64_t rank = coords.size(), first = load ? 1 : 0;
  std::string constraints = load ? "r,l" : "l";
  std::string tensor = "[$" + std::to_string(first) + ", " +
                       coordinateList(rank, first + 1, constraints) + "]";
  std::string last = "[$" + std::to_string(rank + first + 1) + "]";
  std::string ptx = "cp.async.bulk.tensor." + std::to_string(rank) + "d." +
                    (load ? "shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], " +
                                tensor + ", " + last
                          : "global.shared::cta.bulk_group " + tensor + ", " + last) +
                    ";";
  constraints += ",r";
  forEachBlock(rewriter, op->getLoc(), buffer, *blockCols, base, coords[0],
               [&](Value at, Value column) {
                 SmallVector<Value> operands;
                 if (load)
                   operands.push_back(at);
                 operands.push_back(descriptor);
                 operands.push_back(column);
                 llvm::append_range(operands, ArrayRef<Value>(coords).drop_front());
                 operands.push_back(load ? barrier : at);
                 inlinePtx(rewriter, op->getLoc(), Type(), operands, ptx, constraints);
               });
  return success();
}

struct LowerTmaLoad : OpConversionPattern<tgpu::TmaLoadOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::TmaLoadOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    tgpu::SharedBufferType buffer = op.getBuffer().getType();
    Value dst = elementAddress(rewriter, loc, adaptor.getBuffer(), adaptor.getStage(),
                               buffer.getStageBytes());
    Value barrier =
        barrierAddress(rewriter, loc, adaptor.getBarrier(), adaptor.getBarrierStage());
    if (failed(bulkTensorCopies(rewriter, op, buffer, dst, adaptor.getDescriptor(),
                                adaptor.getCoordinates(), barrier)))
      return failure();
    rewriter.eraseOp(op);
    return success();
  }
};

struct LowerTmaStore : OpConversionPattern<tgpu::TmaStoreOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::TmaStoreOp op, OpAdaptor adaptor,
                                ConversionPatternRewriter &rewriter) const override {
    if (failed(bulkTensorCopies(rewriter, op, op.getBuffer().getType(), adaptor.getBuffer(),
                                adaptor.getDescriptor(), adaptor.getCoordinates(), Value())))
      return failure();
    // The blocks are one bulk group: tgpu.tma_store_wait counts stores, not blocks.
    replaceWithPtx(rewriter, op, ValueRange(), "cp.async.bulk.commit_group;", "");
    return success();
  }
};

struct LowerTmaStoreWait : OpConversionPattern<tgpu::TmaStoreWaitOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(tgpu::TmaStoreWaitOp op, OpAdaptor,
                                ConversionPatternRewriter &rewriter) const override {
    replaceWithPtx(rewriter, op, ValueRange(),
                   "cp.async.bulk.wait_group.read " + std::to_string(op.getPending()) + ";", "");
    return success();
  }
};

/// Whether `v`, an operand of a tgpu type, is named by an address the conversion can use:
/// an unrealized cast of a value of the converted type (the distributed kernels' form).
bool hasAddress(Value v, const TypeConverter &types) {
  auto cast = v.getDefiningOp<UnrealizedConversionCastOp>();
  return cast && cast->getNumOperands() == 1 &&
         cast->getOperand(0).getType() == types.convertType(v.getType());
}

struct TgpuAsyncToNvvmPass : tessera::gpu::impl::TgpuAsyncToNvvmBase<TgpuAsyncToNvvmPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    TypeConverter types;
    types.addConversion([](Type t) { return t; });
    auto i32 = IntegerType::get(ctx, 32);
    types.addConversion([=](tgpu::MbarrierType) -> Type { return i32; });
    types.addConversion([=](tgpu::SharedBufferType) -> Type { return i32; });
    types.addConversion(
        [=](tgpu::TmaDescriptorType) -> Type { return LLVM::LLVMPointerType::get(ctx); });
    ConversionTarget target(*ctx);
    target.addIllegalOp<tgpu::MbarrierInitOp, tgpu::FenceMbarrierInitOp,
                        tgpu::MbarrierExpectTxOp, tgpu::MbarrierArriveOp,
                        tgpu::MbarrierWaitOp, tgpu::TmaLoadOp, tgpu::TmaStoreOp,
                        tgpu::TmaStoreWaitOp>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    // Every barrier, buffer and descriptor these ops name must have its address here
    // (tgpu.mbarrier_alloc and tgpu.local_alloc are not lowered by this family).
    WalkResult named = getOperation()->walk([&](Operation *op) {
      if (target.isLegal(op))
        return WalkResult::advance();
      for (Value v : op->getOperands())
        if (isa<tgpu::MbarrierType, tgpu::SharedBufferType, tgpu::TmaDescriptorType>(
                v.getType()) &&
            !hasAddress(v, types)) {
          op->emitOpError("has no NVVM form here: the shared address or descriptor of its ")
              << v.getType() << " operand is not known (its allocation is not lowered)";
          return WalkResult::interrupt();
        }
      return WalkResult::advance();
    });
    if (named.wasInterrupted())
      return signalPassFailure();
    RewritePatternSet patterns(ctx);
    patterns.add<LowerMbarrierInit, LowerFenceMbarrierInit, LowerMbarrierExpectTx,
                 LowerMbarrierArrive, LowerMbarrierWait, LowerTmaLoad, LowerTmaStore,
                 LowerTmaStoreWait>(types, ctx);
    if (failed(applyPartialConversion(getOperation(), target, std::move(patterns))))
      return signalPassFailure();
    // The kernels' casts of addresses to the types and the conversion's casts back fold.
    SmallVector<UnrealizedConversionCastOp> casts;
    getOperation()->walk([&](UnrealizedConversionCastOp c) { casts.push_back(c); });
    reconcileUnrealizedCasts(casts);
  }
};
} // namespace
