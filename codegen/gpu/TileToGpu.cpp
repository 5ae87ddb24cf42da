//===- TileToGpu.cpp - tile programs to warp-level tensor-core kernels ----===//
//
// Each tile.grid becomes a gpu.func (one CUDA block per program, 32 x num_warps threads)
// in a gpu.module. Tile values are distributed over the block's threads in the layouts
// tessera-tile-to-tgpu wrote in their types: a tile becomes a list of per-thread scalars
// ("slots"), element-wise ops run slot by slot, row reductions finish with two butterfly
// shuffles inside each quad of lanes, and tile.dot becomes mma.sync m16n8k16 or wgmma, as
// the grid's accumulator layout says (f16/bf16 in, f32 accumulate).
// The host side keeps a launch record (grid as a formula of argument sizes, block size)
// on the function so a runtime without MLIR can launch the kernel.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/LaunchRecord.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/PersistentGrid.h"
#include "codegen/gpu/WarpSpecialize.h"
#include "codegen/gpu/SharedAllocation.h"
#include "codegen/gpu/StageAttrs.h"
#include "codegen/gpu/TensorMemory.h"

#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TILETOGPU
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
struct TileToGpuPass : tessera::gpu::impl::TileToGpuBase<TileToGpuPass> {
  using TileToGpuBase::TileToGpuBase;
  void runOnOperation() override;
  LogicalResult checkRegisterBudget(tile::GridOp grid, int64_t warps);
  LogicalResult outline(func::FuncOp func, tile::GridOp grid, int index,
                        ::mlir::gpu::GPUModuleOp module, SmallVectorImpl<Attribute> &launches);
};
} // namespace

/// Registers a thread holds for the grid's two largest product accumulators (a softmax's
/// O carried while S is computed).
static int64_t productAccumulatorSlots(tile::GridOp grid) {
  SmallVector<int64_t> accumulators;
  grid.walk([&](tile::DotOp dot) {
    accumulators.push_back(numSlots(*layoutOfType(dot.getType())));
  });
  // Distinct sizes: a program's several loops repeat the same two products.
  llvm::sort(accumulators, std::greater<>());
  accumulators.erase(llvm::unique(accumulators), accumulators.end());
  int64_t needed = 0;
  for (int64_t slots : ArrayRef(accumulators).take_front(2))
    needed += slots;
  return needed;
}

/// ptxas cannot assemble a product whose accumulator, with the one carried beside it (a
/// softmax's O while S is computed), outgrows the registers a thread has; a min_blocks
/// that leaves fewer is reported here instead of failing at module load on the GPU.
LogicalResult TileToGpuPass::checkRegisterBudget(tile::GridOp grid, int64_t warps) {
  if (minBlocks == 0)
    return success(); // the stage plan's own hint leaves what its tiles need
  int64_t needed = productAccumulatorSlots(grid);
  // Registers are allocated per warp in units of 8, at most 255 a thread.
  int64_t budget = std::min<int64_t>(255, 65536 / (minBlocks * 32 * warps) / 8 * 8);
  if (needed <= budget)
    return success();
  return grid.emitError("min_blocks = ")
         << int64_t(minBlocks) << " leaves " << budget << " registers a thread (65536 / ("
         << int64_t(minBlocks) << " blocks x " << 32 * warps
         << " threads)), fewer than the " << needed
         << " its two largest product accumulators hold; use a smaller min_blocks";
}

LogicalResult TileToGpuPass::outline(func::FuncOp func, tile::GridOp grid, int index,
                                     ::mlir::gpu::GPUModuleOp module,
                                     SmallVectorImpl<Attribute> &launches) {
  MLIRContext *ctx = &getContext();
  tile::ConfigAttr config = grid.getConfig();
  int64_t warps = config.getNumWarps();
  tgpu::MmaEncodingAttr accumulator = accumulatorOf(grid);
  if (!accumulator)
    return grid.emitError("the tile program has no GPU layouts: run tessera-tile-to-tgpu "
                          "before tessera-tile-to-gpu");
  // The distributor reads every tile's layout from its type.
  WalkResult unencoded = grid.getBody().walk([](Operation *op) {
    auto lacksLayout = [](Value v) {
      auto t = dyn_cast<RankedTensorType>(v.getType());
      return t && t.getRank() > 0 && !isSplat(v) && !layoutOfType(t);
    };
    if (llvm::any_of(op->getResults(), lacksLayout) ||
        llvm::any_of(op->getOperands(), lacksLayout)) {
      op->emitError("a tile without a #tgpu layout: the program was changed after "
                    "tessera-tile-to-tgpu assigned layouts");
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (unencoded.wasInterrupted())
    return failure();
  if (failed(checkRegisterBudget(grid, warps)))
    return failure();
  if (grid->hasAttr(kPersistentAttr) && grid.getSizes().size() != 1)
    return grid.emitError("a tgpu.persistent grid has one size (its work items; "
                          "tessera-persistent-grid)");
  // The lowering follows the grid's staging (runOnOperation) and schedule; a grid
  // without a schedule (hand-written tgpu IR) is scheduled here, by the same code as
  // tessera-tgpu-assign-stages.
  if (!grid->hasAttr(kNumStagesAttr) && failed(assignStages(grid)))
    return failure();
  // Conversions are made where their users read them (Distributor::slotsOf, which
  // shares one among the users of a block).
  grid.walk([](tgpu::ConvertLayoutOp convert) {
    convert.getResult().replaceAllUsesWith(convert.getSource());
    convert.erase();
  });

  std::string name = (func.getName() + "_kernel" + Twine(index)).str();
  OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
  // Kernels assume unit stride in each buffer's last dimension (the runtime checks it),
  // which lets tile copies use 16-byte vector loads.
  SmallVector<Type> argTypes;
  for (Type t : func.getArgumentTypes()) {
    auto m = dyn_cast<MemRefType>(t);
    if (!m)
      return func.emitError("GPU kernels take buffers only; argument of type ") << t;
    SmallVector<int64_t> strides(m.getRank(), ShapedType::kDynamic);
    strides.back() = 1;
    argTypes.push_back(MemRefType::get(
        m.getShape(), m.getElementType(),
        StridedLayoutAttr::get(ctx, ShapedType::kDynamic, strides), m.getMemorySpace()));
  }
  auto kernel = ::mlir::gpu::GPUFuncOp::create(mb, grid.getLoc(), name,
                                               FunctionType::get(ctx, argTypes, {}));
  kernel->setAttr(::mlir::gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  kernel.setKnownBlockSizeAttr(DenseI32ArrayAttr::get(ctx, {int32_t(32 * warps), 1, 1}));
  Block &entry = kernel.getBody().front();
  ImplicitLocOpBuilder b(grid.getLoc(), ctx);
  b.setInsertionPointToStart(&entry);

  bool useWgmma = accumulator.getVersion() == tgpu::MmaVersion::wgmma;
  Distributor d(b, warps, config.getNumStages(), useWgmma, kernel);
  if (failed(d.followSchedule(grid)) || failed(d.beginSharedPlan(grid)))
    return failure();
  for (auto [hostArg, kernelArg] :
       llvm::zip(func.getArguments(), entry.getArguments()))
    d.scalars.map(hostArg, kernelArg);
  // Host values the body uses (sizes, group counts) are recomputed in the kernel from
  // its arguments: they are pure functions of the buffers' shapes.
  SetVector<Operation *> hostSlice;
  grid.getBody().walk([&](Operation *op) {
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (!def || grid->isAncestor(def))
        continue;
      SmallVector<Operation *> stack{def};
      while (!stack.empty()) {
        Operation *o = stack.pop_back_val();
        if (!hostSlice.insert(o))
          continue;
        for (Value x : o->getOperands())
          if (Operation *xd = x.getDefiningOp())
            stack.push_back(xd);
      }
    }
  });
  for (Operation &op : func.getBody().front())
    if (hostSlice.contains(&op))
      b.clone(op, d.scalars);
  // One grid of a function copies by TMA (tessera-tgpu-stage-operands marks it, checked
  // in runOnOperation); every kernel of the function takes its descriptors
  // (shareTensorMaps).
  if (grid->hasAttr(kTensorCopiesAttr))
    d.useTensorCopies(grid.getBody().front());
  if (failed(d.lowerBlock(grid.getBody().front())) || failed(d.finishTensorCopies(func)) ||
      failed(d.endSharedPlan(kernel)))
    return failure();
  ::mlir::gpu::ReturnOp::create(b);
  if (int64_t blocks = minBlocks ? minBlocks : d.plannedBlocksPerSM)
    kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(blocks));
  // Shared memory (staging and conversion buffers, all in the dynamic arena).
  if (!d.recordingShared() && d.dynamicSharedBytes() > kSharedLimit)
    return grid.emitError("the kernel needs ")
           << d.dynamicSharedBytes() << " bytes of shared memory, more than the "
           << kSharedLimit << " a block can have; use smaller tiles or a larger split";
  // Index arithmetic copied from the host (ceildiv/floordiv) becomes plain integer ops;
  // the rest of arith lowers directly to NVVM (max/min stay single instructions).
  RewritePatternSet divisions(ctx);
  arith::populateCeilFloorDivExpandOpsPatterns(divisions);
  if (failed(applyPatternsGreedily(kernel, std::move(divisions))))
    return kernel.emitError("could not expand index divisions");

  SmallVector<Attribute> grids;
  for (Value size : grid.getSizes()) {
    FailureOr<Attribute> f = gridFormula(size, func);
    if (failed(f))
      return grid.emitError("grid sizes must be ceil or floor of dim(argument) / constant, "
                            "constants, or products of these");
    grids.push_back(*f);
  }
  if (grid->hasAttr(kPersistentAttr)) {
    // As many programs as the SMs hold at once, and ptxas told to leave room for them;
    // a warp-specialised kernel's register budgets plan its blocks per SM.
    int64_t planned =
        d.isWarpSpecialized() ? warpSpecializedRegisters(warps / 4).blocksPerSM : minBlocks;
    int64_t blocks =
        persistentBlocksPerSM(planned, d.plannedBlocksPerSM, d.dynamicSharedBytes(), warps,
                              productAccumulatorSlots(grid), useWgmma);
    grids.front() = persistentGridExtent(grids.front(), blocks);
    kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(blocks));
  }
  Builder attrs(ctx);
  launches.push_back(attrs.getDictionaryAttr({
      attrs.getNamedAttr("kernel", attrs.getStringAttr(name)),
      attrs.getNamedAttr("grid", attrs.getArrayAttr(grids)),
      attrs.getNamedAttr("block", attrs.getI64IntegerAttr(d.blockThreads())),
      attrs.getNamedAttr("smem", attrs.getI64IntegerAttr(d.dynamicSharedBytes())),
  }));
  grid.erase();
  return success();
}


void TileToGpuPass::runOnOperation() {
  ModuleOp top = getOperation();
  MLIRContext *ctx = &getContext();
  // An SM holds at most 32 blocks (sm_80, sm_90).
  if (minBlocks < 0 || minBlocks > 32) {
    top.emitError("min_blocks must be in [0, 32] (blocks per SM), got ") << int64_t(minBlocks);
    return signalPassFailure();
  }
  // A grid not staged yet (hand-written tgpu IR) is staged first: staging writes the
  // computed operands' buffers as ops, which the shared-memory plan numbers.
  WalkResult staged = top.walk([](tile::GridOp grid) {
    if (!accumulatorOf(grid))
      return WalkResult::advance(); // reported when it is outlined
    return failed(stageOperands(grid)) ? WalkResult::interrupt() : WalkResult::advance();
  });
  if (staged.wasInterrupted())
    return signalPassFailure();
  // Shared memory follows tessera-tgpu-allocate-shared's plan; a grid without one
  // (hand-written tgpu IR) is planned here first, by the same code.
  if (!top->hasAttr(kSharedScratchAttr) &&
      failed(allocateShared(top, /*asPass=*/false)))
    return signalPassFailure();
  top->setAttr(::mlir::gpu::GPUDialect::getContainerModuleAttrName(), UnitAttr::get(ctx));
  SmallVector<func::FuncOp> funcs(top.getOps<func::FuncOp>());
  for (func::FuncOp func : funcs) {
    SmallVector<tile::GridOp> grids(func.getBody().getOps<tile::GridOp>());
    if (grids.empty())
      continue;
    if (failed(allocationsToWorkspaces(func)) || failed(stageTensorCopies(func, /*choose=*/false)))
      return signalPassFailure();
    OpBuilder tb = OpBuilder::atBlockEnd(top.getBody());
    auto module = ::mlir::gpu::GPUModuleOp::create(tb, func.getLoc(),
                                                   (func.getName() + "_kernels").str());
    SmallVector<Attribute> launches;
    for (auto [i, grid] : llvm::enumerate(grids))
      if (failed(outline(func, grid, i, module, launches)))
        return signalPassFailure();
    shareTensorMaps(func, module);
    func->setAttr("tessera.launches", ArrayAttr::get(ctx, launches));
  }
}
