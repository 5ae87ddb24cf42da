//===- Pipelines.cpp - Tessera's named pass pipelines ---------------------===//
#include "codegen/Pipelines.h"
#include "codegen/GpuChecks.h"

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
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;


void tessera::buildToTilePipeline(OpPassManager &pm, const PipelineOptions &options,
                                  bool keyMajorGrad, bool gradDqAtomic) {
  AttnToTileOptions attnToTile;
  attnToTile.keyMajorGrad = keyMajorGrad;
  attnToTile.gradDqAtomic = gradDqAtomic;
  attnToTile.blockM = options.blockM;
  attnToTile.blockN = options.blockN;
  attnToTile.numWarps = options.numWarps;
  attnToTile.numStages = options.numStages;
  attnToTile.split = options.split;
  attnToTile.gradQueryTile = options.gradQueryTile;
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

/// Tile programs -> tgpu (layouts, each conversion once, the operands staged in shared
/// memory, then the loop schedule as attributes, which tessera-tile-to-gpu follows), the
/// options already checked.
static void buildCheckedTileToTgpu(OpPassManager &pm, const tessera::GpuPipelineOptions &options) {
  pm.addPass(tessera::createCheckGpuInput());
  tessera::gpu::TileToTgpuOptions layouts;
  layouts.wgmma = options.chip == "sm_90a";
  pm.addPass(tessera::gpu::createTileToTgpu(layouts));
  pm.addPass(tessera::gpu::createTgpuCleanupConversions());
  if (options.persistent)
    pm.addPass(tessera::gpu::createPersistentGrid());
  tessera::gpu::TgpuStageOperandsOptions staging;
  staging.tma = options.tma;
  pm.addPass(tessera::gpu::createTgpuStageOperands(staging));
  pm.addPass(tessera::gpu::createTgpuAssignStages());
  pm.addPass(tessera::gpu::createTgpuReadAhead());
  if (options.warpSpecialize) {
    tessera::gpu::TgpuWarpSpecializeOptions split;
    split.pingpong = options.pingpong;
    pm.addPass(tessera::gpu::createTgpuWarpSpecialize(split));
    if (options.intraWarpgroupOverlap)
      pm.addPass(tessera::gpu::createTgpuPipelineProducts());
  }
  pm.addPass(tessera::gpu::createTgpuCopyStagedLoads());
  pm.addPass(tessera::gpu::createTgpuPipelineLoops());
  pm.addPass(tessera::gpu::createTgpuAllocateShared());
  pm.addPass(tessera::gpu::createTgpuInsertWaits());
  pm.addPass(tessera::gpu::createTgpuInsertBarriers());
}

/// tgpu -> PTX.
static void buildTgpuToPtx(OpPassManager &pm, const tessera::GpuPipelineOptions &options) {
  tessera::gpu::TgpuOutlineKernelsOptions outlining;
  outlining.minBlocks = options.minBlocks;
  pm.addPass(tessera::gpu::createTgpuOutlineKernels(outlining));
  pm.addPass(tessera::gpu::createTileToGpu());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<mlir::gpu::GPUModuleOp>();
  kernels.addPass(tessera::gpu::createTgpuToNvvm());
  kernels.addPass(tessera::gpu::createTgpuSyncToNvvm());
  kernels.addPass(tessera::gpu::createTgpuAsyncToNvvm());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(createConvertGpuOpsToNVVMOps());
  kernels.addPass(tessera::gpu::createTensorMapParams());
  // NVVM ops with no LLVM intrinsic (wgmma, some barriers) become inline PTX here.
  kernels.addPass(createConvertNVVMToLLVMPass());
  kernels.addPass(createCanonicalizerPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa"; // PTX: the driver JITs it for the exact GPU
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void tessera::buildTileToPtxPipeline(OpPassManager &pm, const GpuPipelineOptions &options) {
  pm.addPass(tessera::createCheckGpuOptions(options.chip, options.minBlocks, options.tma,
                                             options.warpSpecialize, options.pingpong,
                                             options.intraWarpgroupOverlap));
  buildCheckedTileToTgpu(pm, options);
  buildTgpuToPtx(pm, options);
}

/// attn ops -> tgpu, as tessera-gpu has them before distribution.
void tessera::buildToTgpuPipeline(OpPassManager &pm, const GpuPipelineOptions &options) {
  PipelineOptions tiling;
  tiling.blockM = options.blockM;
  tiling.blockN = options.blockN;
  tiling.numWarps = options.numWarps;
  tiling.numStages = options.numStages;
  tiling.split = options.split;
  tiling.gradQueryTile = options.gradQueryTile;
  pm.addPass(tessera::createCheckGpuOptions(options.chip, options.minBlocks, options.tma,
                                             options.warpSpecialize, options.pingpong,
                                             options.intraWarpgroupOverlap));
  // Hand-written tile IR may come this way too; canonicalization with the GPU dialects
  // loaded crashed on an out-of-range dim index before the second check could see it.
  pm.addPass(tessera::createCheckGpuInput());
  // wgmma takes Pᵀ and dSᵀ from registers; mma.sync would hold K and V there instead.
  buildToTilePipeline(pm, tiling, /*keyMajorGrad=*/options.chip == "sm_90a",
                      options.gradDqAtomic);
  buildCheckedTileToTgpu(pm, options);
}

void tessera::buildGpuPipeline(OpPassManager &pm, const GpuPipelineOptions &options) {
  buildToTgpuPipeline(pm, options);
  buildTgpuToPtx(pm, options);
}

void tessera::buildCpuPipeline(OpPassManager &pm, const PipelineOptions &options) {
  buildToTilePipeline(pm, options);
  buildTileToCpuPipeline(pm);
}

void tessera::registerPipelines() {
  registerGpuChecks();
  PassPipelineRegistration<PipelineOptions>(
      "tessera-to-tile", "attn ops to tile programs (target-independent)",
      [](OpPassManager &pm, const PipelineOptions &options) { buildToTilePipeline(pm, options); });
  PassPipelineRegistration<>("tessera-tile-to-cpu",
                             "tile programs to the LLVM dialect for the CPU JIT",
                             buildTileToCpuPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "tessera-cpu", "attn ops to the LLVM dialect for the CPU JIT", buildCpuPipeline);
  PassPipelineRegistration<GpuPipelineOptions>(
      "tessera-tile-to-ptx", "tile programs to PTX (gpu.binary)", buildTileToPtxPipeline);
  PassPipelineRegistration<GpuPipelineOptions>(
      "tessera-to-tgpu", "attn ops to tile programs with GPU layouts and loop schedule",
      buildToTgpuPipeline);
  PassPipelineRegistration<GpuPipelineOptions>("tessera-gpu", "attn ops to PTX",
                                               buildGpuPipeline);
}
