//===- TgpuSyncToNvvm.cpp - tgpu synchronisation ops to NVVM --------------===//
//
// tessera-convert-tgpu-sync-to-nvvm: the synchronisation family of the tgpu -> nvvm
// conversions (docs/RationaleTgpu.md, step 9). tessera-tile-to-gpu orders shared memory
// and cp.async with tgpu ops, the same ones tessera-tgpu-insert-barriers places; this
// pass turns them into the instructions:
//   tgpu.barrier                       -> gpu.barrier (bar.sync 0)
//   tgpu.named_barrier %id threads = n -> nvvm.barrier id, n (bar.sync id, n)
//   tgpu.named_barrier_arrive %id ...  -> nvvm.barrier.arrive id, n
//   tgpu.fence_async_shared            -> nvvm.fence.proxy async.shared::cta
//   tgpu.async_commit_group            -> nvvm.cp.async.commit.group
//   tgpu.async_wait pending = n        -> nvvm.cp.async.wait.group n
//   tgpu.warpgroup_wait %r.. pending = n -> nvvm.wgmma.wait.group n, then %r.. through
//                                         empty asm statements, 32 registers each (their
//                                         uses stay below the wait)
// Tokens only order these ops among themselves: a commit or wait whose token another op
// still reads is left, and the pass fails on it.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/Wgmma.h"
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUSYNCTONVVM
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;

namespace {
struct LowerBarrier : OpRewritePattern<tgpu::BarrierOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::BarrierOp op, PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<::mlir::gpu::BarrierOp>(op);
    return success();
  }
};

Value threadCount(PatternRewriter &rewriter, Location loc, int64_t threads) {
  return arith::ConstantIntOp::create(rewriter, loc, rewriter.getI32Type(), threads);
}

struct LowerNamedBarrier : OpRewritePattern<tgpu::NamedBarrierOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::NamedBarrierOp op, PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<NVVM::BarrierOp>(
        op, Type(), op.getId(), threadCount(rewriter, op.getLoc(), op.getThreads()),
        NVVM::BarrierReductionAttr(), Value());
    return success();
  }
};

struct LowerNamedBarrierArrive : OpRewritePattern<tgpu::NamedBarrierArriveOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::NamedBarrierArriveOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<NVVM::BarrierArriveOp>(
        op, op.getId(), threadCount(rewriter, op.getLoc(), op.getThreads()));
    return success();
  }
};

struct LowerProxyFence : OpRewritePattern<tgpu::FenceAsyncSharedOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::FenceAsyncSharedOp op,
                                PatternRewriter &rewriter) const override {
    MLIRContext *ctx = op.getContext();
    rewriter.replaceOpWithNewOp<NVVM::FenceProxyOp>(
        op, NVVM::ProxyKindAttr::get(ctx, NVVM::ProxyKind::async_shared),
        NVVM::SharedSpaceAttr::get(ctx, NVVM::SharedSpace::shared_cta));
    return success();
  }
};

struct LowerCommitGroup : OpRewritePattern<tgpu::AsyncCommitGroupOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::AsyncCommitGroupOp op,
                                PatternRewriter &rewriter) const override {
    if (!op->use_empty() || !op.getTokens().empty())
      return rewriter.notifyMatchFailure(op, "its group is named by a wait or it names copies");
    NVVM::CpAsyncCommitGroupOp::create(rewriter, op.getLoc());
    rewriter.eraseOp(op);
    return success();
  }
};

struct LowerWait : OpRewritePattern<tgpu::AsyncWaitOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::AsyncWaitOp op, PatternRewriter &rewriter) const override {
    if (!op->use_empty() || !op.getGroups().empty())
      return rewriter.notifyMatchFailure(op, "it names groups or a later op reads its token");
    NVVM::CpAsyncWaitGroupOp::create(rewriter, op.getLoc(),
                                     rewriter.getI32IntegerAttr(op.getPending()));
    rewriter.eraseOp(op);
    return success();
  }
};

struct LowerWarpgroupWait : OpRewritePattern<tgpu::WarpgroupWaitOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tgpu::WarpgroupWaitOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getToken())
      return rewriter.notifyMatchFailure(op, "it orders a tgpu.warpgroup_dot");
    if (!llvm::all_of(op.getValues().getTypes(), [](Type t) { return t.isF32(); }))
      return rewriter.notifyMatchFailure(op, "it passes values other than f32 registers");
    NVVM::WgmmaWaitGroupSyncOp::create(rewriter, op.getLoc(), op.getPending());
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(op, tessera::gpu::fenceRegisters(b, op.getValues()));
    return success();
  }
};

struct TgpuSyncToNvvmPass : tessera::gpu::impl::TgpuSyncToNvvmBase<TgpuSyncToNvvmPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<LowerBarrier, LowerNamedBarrier, LowerNamedBarrierArrive, LowerProxyFence,
                 LowerCommitGroup, LowerWait, LowerWarpgroupWait>(&getContext());
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    getOperation()->walk([&](Operation *op) {
      auto wait = dyn_cast<tgpu::WarpgroupWaitOp>(op);
      if (wait && !wait.getToken()) {
        op->emitOpError("has no NVVM form: a product wait passes f32 registers only");
        signalPassFailure();
      } else if (isa<tgpu::BarrierOp, tgpu::FenceAsyncSharedOp, tgpu::AsyncCommitGroupOp,
                     tgpu::AsyncWaitOp, tgpu::WarpgroupWaitOp>(op)) {
        op->emitOpError("has no NVVM form yet: its tokens order ops this pass does not lower");
        signalPassFailure();
      }
    });
  }
};
} // namespace
