//===- Pipelines.cpp - Tessera's named pass pipelines ---------------------===//
#include "codegen/Pipelines.h"

#include "codegen/cpu/Passes.h"
#include "codegen/gpu/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "passes/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

std::string tessera::unsupportedChipReason(const std::string &chip) {
  // sm_80: mma.sync and cp.async (the driver JITs it for Ampere and Ada); sm_90a adds
  // wgmma and TMA; sm_90 is Hopper without them (the driver JITs it for Blackwell).
  static const char *const supported[] = {"sm_80", "sm_90", "sm_90a"};
  for (const char *s : supported)
    if (chip == s)
      return "";
  return "unsupported GPU chip '" + chip +
         "': the GPU pipeline targets NVIDIA sm_80 (Ampere, Ada), sm_90 and sm_90a "
         "(Hopper; sm_90 also runs on Blackwell)";
}

namespace {
/// The first pass of each GPU pipeline: options no later pass can handle become one
/// located diagnostic before any pass runs, never an abort inside LLVM. (Tuning knobs are
/// checked where they are read: AttnToTile, TileToGpu, and the #tile.config verifier.)
struct CheckGpuOptionsPass
    : PassWrapper<CheckGpuOptionsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(CheckGpuOptionsPass)
  CheckGpuOptionsPass() = default;
  CheckGpuOptionsPass(const CheckGpuOptionsPass &other) : PassWrapper(other) {}
  StringRef getArgument() const override { return "tessera-check-gpu-options"; }
  StringRef getDescription() const override {
    return "rejects a GPU chip or option the GPU pipeline cannot compile for";
  }
  Option<std::string> chip{*this, "chip", llvm::cl::desc("GPU architecture"),
                           llvm::cl::init("sm_90a")};
  Option<int64_t> minBlocks{*this, "min-blocks", llvm::cl::desc("blocks per SM"),
                            llvm::cl::init(0)};

  void runOnOperation() override {
    std::string reason = tessera::unsupportedChipReason(chip);
    if (reason.empty() && (minBlocks < 0 || minBlocks > 32))
      reason = "min-blocks must be in [0, 32] (blocks per SM), got " +
               std::to_string(int64_t(minBlocks));
    if (!reason.empty()) {
      mlir::emitError(getOperation().getLoc(), reason);
      signalPassFailure();
    }
  }
};

std::unique_ptr<Pass> createCheckGpuOptions(const tessera::GpuPipelineOptions &options) {
  auto pass = std::make_unique<CheckGpuOptionsPass>();
  pass->chip = options.chip.getValue();
  pass->minBlocks = options.minBlocks.getValue();
  return pass;
}
} // namespace

void tessera::buildToTilePipeline(OpPassManager &pm, const PipelineOptions &options) {
  AttnToTileOptions attnToTile;
  attnToTile.blockM = options.blockM;
  attnToTile.blockN = options.blockN;
  attnToTile.numWarps = options.numWarps;
  attnToTile.numStages = options.numStages;
  attnToTile.split = options.split;
  pm.addPass(createAttnToTile(attnToTile));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void tessera::buildTileToCpuPipeline(OpPassManager &pm) {
  pm.addPass(cpu::createTileToLinalg());
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Loop-carried tiles are rebuilt every iteration, so loops return fresh buffers.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.allowReturnAllocsFromLoops = true;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

/// Tile programs -> PTX, the options already checked.
static void buildCheckedTileToPtx(OpPassManager &pm, const tessera::GpuPipelineOptions &options) {
  tessera::gpu::TileToGpuOptions distribute;
  distribute.wgmma = options.chip == "sm_90a";
  distribute.minBlocks = options.minBlocks;
  pm.addPass(tessera::gpu::createTileToGpu(distribute));
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<mlir::gpu::GPUModuleOp>();
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createConvertGpuOpsToNVVMOps());
  // NVVM ops with no LLVM intrinsic (wgmma, some barriers) become inline PTX here.
  kernels.addPass(createConvertNVVMToLLVMPass());
  kernels.addPass(createCanonicalizerPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa"; // PTX: the driver JITs it for the exact GPU
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void tessera::buildTileToPtxPipeline(OpPassManager &pm, const GpuPipelineOptions &options) {
  pm.addPass(createCheckGpuOptions(options));
  buildCheckedTileToPtx(pm, options);
}

void tessera::buildGpuPipeline(OpPassManager &pm, const GpuPipelineOptions &options) {
  PipelineOptions tiling;
  tiling.blockM = options.blockM;
  tiling.blockN = options.blockN;
  tiling.numWarps = options.numWarps;
  tiling.numStages = options.numStages;
  tiling.split = options.split;
  pm.addPass(createCheckGpuOptions(options));
  buildToTilePipeline(pm, tiling);
  buildCheckedTileToPtx(pm, options);
}

void tessera::buildCpuPipeline(OpPassManager &pm, const PipelineOptions &options) {
  buildToTilePipeline(pm, options);
  buildTileToCpuPipeline(pm);
}

void tessera::registerPipelines() {
  PassRegistration<CheckGpuOptionsPass>();
  PassPipelineRegistration<PipelineOptions>(
      "tessera-to-tile", "attn ops to tile programs (target-independent)",
      buildToTilePipeline);
  PassPipelineRegistration<>("tessera-tile-to-cpu",
                             "tile programs to the LLVM dialect for the CPU JIT",
                             buildTileToCpuPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "tessera-cpu", "attn ops to the LLVM dialect for the CPU JIT", buildCpuPipeline);
  PassPipelineRegistration<GpuPipelineOptions>(
      "tessera-tile-to-ptx", "tile programs to PTX (gpu.binary)", buildTileToPtxPipeline);
  PassPipelineRegistration<GpuPipelineOptions>("tessera-gpu", "attn ops to PTX",
                                               buildGpuPipeline);
}
