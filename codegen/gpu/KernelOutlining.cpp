//===- KernelOutlining.cpp - tile grids into gpu.funcs with the launch record -===//
//
// tessera-tgpu-outline-kernels: each tile.grid of a host function moves into a gpu.func
// of the function's gpu.module (one CUDA block per program). The host values its body
// reads (sizes, group counts) are pure functions of the buffers' shapes and are
// recomputed in the kernel from its arguments. Everything about launching the kernel is
// decided here, from the grid's attributes (the schedule's blocks per SM, the
// shared-memory plan, warp specialisation, TMA): the kernel's attributes ptxas and LLVM
// read (block size, .minnctapersm, .maxnreg, descriptor parameters) and the host
// function's launch record (docs/LAUNCH_RECORD.md) — so tessera-tile-to-gpu only
// distributes the grid it finds in each kernel.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/KernelOutlining.h"
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/LaunchRecord.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/PersistentGrid.h"
#include "codegen/gpu/SharedAllocation.h"
#include "codegen/gpu/StageAttrs.h"
#include "codegen/gpu/TensorMemory.h"
#include "codegen/gpu/WarpSpecialize.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUOUTLINEKERNELS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

std::string tessera::gpu::kernelName(func::FuncOp func, unsigned index) {
  return (func.getName() + "_kernel" + Twine(index)).str();
}

std::string tessera::gpu::kernelModuleName(func::FuncOp func) {
  return (func.getName() + "_kernels").str();
}

LogicalResult tessera::gpu::checkGridLayouts(tile::GridOp grid) {
  if (!accumulatorOf(grid))
    return grid.emitError("the tile program has no GPU layouts: run tessera-tile-to-tgpu "
                          "before outlining and distributing it");
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
  return failure(unencoded.wasInterrupted());
}

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
static LogicalResult checkRegisterBudget(tile::GridOp grid, int64_t warps,
                                         int64_t minBlocks) {
  if (minBlocks == 0)
    return success(); // the stage plan's own hint leaves what its tiles need
  int64_t needed = productAccumulatorSlots(grid);
  // Registers are allocated per warp in units of 8, at most 255 a thread.
  int64_t budget = std::min<int64_t>(255, 65536 / (minBlocks * 32 * warps) / 8 * 8);
  if (needed <= budget)
    return success();
  return grid.emitError("min_blocks = ")
         << minBlocks << " leaves " << budget << " registers a thread (65536 / ("
         << minBlocks << " blocks x " << 32 * warps << " threads)), fewer than the "
         << needed << " its two largest product accumulators hold; use a smaller min_blocks";
}

namespace {
/// Outlines the grids of one host function into `module`.
struct FunctionOutliner {
  func::FuncOp func;
  ::mlir::gpu::GPUModuleOp module;
  int64_t minBlocks;
  unsigned tensorMapParams; // descriptors every kernel of the function takes
  SmallVector<Attribute> launches;

  LogicalResult outline(tile::GridOp grid, unsigned index);
};
} // namespace

LogicalResult FunctionOutliner::outline(tile::GridOp grid, unsigned index) {
  MLIRContext *ctx = func.getContext();
  int64_t warps = grid.getConfig().getNumWarps();
  if (failed(checkGridLayouts(grid)) || failed(checkRegisterBudget(grid, warps, minBlocks)))
    return failure();
  bool useWgmma = accumulatorOf(grid).getVersion() == tgpu::MmaVersion::wgmma;
  if (grid->hasAttr(kPersistentAttr) && grid.getSizes().size() != 1)
    return grid.emitError("a tgpu.persistent grid has one size (its work items; "
                          "tessera-persistent-grid)");
  // A grid without a schedule (hand-written tgpu IR) is scheduled here, by the same code
  // as tessera-tgpu-assign-stages.
  if (!grid->hasAttr(kNumStagesAttr) && failed(assignStages(grid)))
    return failure();
  int64_t plannedBlocks = 0;
  if (auto blocks = grid->getAttrOfType<IntegerAttr>(kBlocksPerSMAttr))
    plannedBlocks = blocks.getInt();
  // The shared-memory plan's arena (the allocation's scratch lowering has none yet).
  int64_t arena = 0;
  if (auto planned = grid->getAttrOfType<IntegerAttr>(kSharedBytesAttr))
    arena = planned.getInt();
  if (failed(checkLaunchSharedBytes(grid, arena)))
    return failure();
  int64_t smem = launchSharedBytes(arena);
  bool warpSpecialized =
      grid.getBody()
          .walk([](tgpu::WarpSpecializeOp) { return WalkResult::interrupt(); })
          .wasInterrupted();
  int64_t threads = 32 * warps + (warpSpecialized ? 32 * kProducerWarps : 0);

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
  // The grid's extent as formulas of the host arguments, before the grid leaves them.
  SmallVector<Attribute> grids;
  for (Value size : grid.getSizes()) {
    FailureOr<Attribute> f = gridFormula(size, func);
    if (failed(f))
      return grid.emitError("grid sizes must be ceil or floor of dim(argument) / constant, "
                            "constants, or products of these");
    grids.push_back(*f);
  }

  // Descriptors follow the buffers (the launch record packs them in this order).
  argTypes.append(tensorMapParams, LLVM::LLVMPointerType::get(ctx));
  std::string name = kernelName(func, index);
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto kernel = ::mlir::gpu::GPUFuncOp::create(b, grid.getLoc(), name,
                                               FunctionType::get(ctx, argTypes, {}));
  kernel->setAttr(::mlir::gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  // Every thread the block launches (a producer warpgroup too: a thread-id range LLVM
  // must not narrow to the consumers').
  kernel.setKnownBlockSizeAttr(DenseI32ArrayAttr::get(ctx, {int32_t(threads), 1, 1}));
  if (tensorMapParams)
    kernel->setAttr(kTensorMapParamsAttr, b.getI64IntegerAttr(tensorMapParams));
  if (warpSpecialized) // setmaxnreg moves registers from what a thread has at entry
    kernel->setAttr(NVVM::NVVMDialect::getMaxnregAttrName(),
                    b.getI32IntegerAttr(warpSpecializedRegisters(warps / 4).entry));

  // The host values the grid reads, recomputed from the kernel's arguments.
  Block &entry = kernel.getBody().front();
  IRMapping inKernel;
  for (auto [hostArg, kernelArg] : llvm::zip(func.getArguments(), entry.getArguments()))
    inKernel.map(hostArg, kernelArg);
  SetVector<Operation *> hostSlice;
  auto addToSlice = [&](Value v) {
    Operation *def = v.getDefiningOp();
    if (!def || grid->isAncestor(def))
      return;
    SmallVector<Operation *> stack{def};
    while (!stack.empty()) {
      Operation *o = stack.pop_back_val();
      if (!hostSlice.insert(o))
        continue;
      for (Value x : o->getOperands())
        if (Operation *xd = x.getDefiningOp())
          stack.push_back(xd);
    }
  };
  grid->walk([&](Operation *op) {
    for (Value v : op->getOperands())
      addToSlice(v);
  });
  b.setInsertionPointToStart(&entry);
  for (Operation &op : func.getBody().front())
    if (hostSlice.contains(&op))
      b.clone(op, inKernel);
  auto ret = ::mlir::gpu::ReturnOp::create(b, grid.getLoc());
  grid->moveBefore(ret);
  grid->walk([&](Operation *op) {
    for (OpOperand &operand : op->getOpOperands())
      if (Value v = inKernel.lookupOrNull(operand.get()))
        operand.set(v);
  });

  int64_t blocks = minBlocks ? minBlocks : plannedBlocks;
  if (grid->hasAttr(kPersistentAttr)) {
    // As many programs as the SMs hold at once, and ptxas told to leave room for them;
    // a warp-specialised kernel's register budgets plan its blocks per SM.
    int64_t planned =
        warpSpecialized ? warpSpecializedRegisters(warps / 4).blocksPerSM : minBlocks;
    blocks = persistentBlocksPerSM(planned, plannedBlocks, smem, warps,
                                   productAccumulatorSlots(grid), useWgmma);
    grids.front() = persistentGridExtent(grids.front(), blocks);
  }
  if (blocks)
    kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(blocks));
  launches.push_back(b.getDictionaryAttr({
      b.getNamedAttr("kernel", b.getStringAttr(name)),
      b.getNamedAttr("grid", b.getArrayAttr(grids)),
      b.getNamedAttr("block", b.getI64IntegerAttr(threads)),
      b.getNamedAttr("smem", b.getI64IntegerAttr(smem)),
  }));
  return success();
}

/// The host function's tessera.tensor_maps: the descriptors of its TMA grid, which every
/// kernel of the function takes (the launch record passes them to each).
static unsigned recordTensorMaps(func::FuncOp func) {
  SmallVector<TensorMapSpec> maps;
  for (auto grid : func.getBody().getOps<tile::GridOp>())
    if (grid->hasAttr(kTensorCopiesAttr))
      maps = tensorMapsOf(grid);
  if (maps.empty())
    return 0;
  MLIRContext *ctx = func.getContext();
  Builder b(ctx);
  SmallVector<Attribute> records;
  for (const TensorMapSpec &m : maps)
    records.push_back(b.getDictionaryAttr({
        b.getNamedAttr("argument", b.getI64IntegerAttr(m.argument)),
        b.getNamedAttr("dtype", b.getStringAttr(m.elem.isBF16() ? "bf16" : "f16")),
        b.getNamedAttr("box", b.getDenseI64ArrayAttr(m.box)),
        b.getNamedAttr("swizzle", b.getI64IntegerAttr(128)),
    }));
  func->setAttr(kTensorMapsAttr, b.getArrayAttr(records));
  return maps.size();
}

LogicalResult tessera::gpu::outlineKernels(ModuleOp top, int64_t minBlocks) {
  // An SM holds at most 32 blocks (sm_80, sm_90).
  if (minBlocks < 0 || minBlocks > 32)
    return top.emitError("min_blocks must be in [0, 32] (blocks per SM), got ") << minBlocks;
  SmallVector<func::FuncOp> funcs;
  for (func::FuncOp func : top.getOps<func::FuncOp>())
    if (!func.getBody().getOps<tile::GridOp>().empty())
      funcs.push_back(func);
  if (funcs.empty())
    return success();
  // The launch record lists a function's kernels once: grids added after outlining
  // would need a record of their own.
  for (func::FuncOp func : funcs)
    if (SymbolTable::lookupSymbolIn(top, kernelModuleName(func)))
      return func.emitError("the function has grids left after its kernels were outlined "
                            "into @")
             << kernelModuleName(func) << "; outline a function once, with all of its grids";
  // A grid not staged yet (hand-written tgpu IR) is staged first, and its staged loads
  // made copies (scheduled first where needed) and its loops pipelined: all write ops,
  // which the shared-memory plan numbers.
  for (func::FuncOp func : funcs)
    for (auto grid : func.getBody().getOps<tile::GridOp>())
      if (accumulatorOf(grid) && (failed(stageOperands(grid)) || failed(copyStagedLoads(grid)) ||
                                  failed(pipelineLoops(grid))))
        return failure(); // a grid without layouts is reported when it is outlined
  // Shared memory follows tessera-tgpu-allocate-shared's plan; a grid without one
  // (hand-written tgpu IR) is planned here first, by the same code.
  if (!top->hasAttr(kSharedScratchAttr) && failed(allocateShared(top, /*asPass=*/false)))
    return failure();
  MLIRContext *ctx = top.getContext();
  top->setAttr(::mlir::gpu::GPUDialect::getContainerModuleAttrName(), UnitAttr::get(ctx));
  for (func::FuncOp func : funcs) {
    if (failed(allocationsToWorkspaces(func)) ||
        failed(stageTensorCopies(func, /*choose=*/false)))
      return failure();
    OpBuilder tb = OpBuilder::atBlockEnd(top.getBody());
    auto module = ::mlir::gpu::GPUModuleOp::create(tb, func.getLoc(),
                                                   kernelModuleName(func));
    FunctionOutliner outliner{func, module, minBlocks, recordTensorMaps(func), {}};
    SmallVector<tile::GridOp> grids(func.getBody().getOps<tile::GridOp>());
    for (auto [i, grid] : llvm::enumerate(grids))
      if (failed(outliner.outline(grid, i)))
        return failure();
    func->setAttr("tessera.launches", ArrayAttr::get(ctx, outliner.launches));
  }
  return success();
}

namespace {
struct TgpuOutlineKernelsPass
    : tessera::gpu::impl::TgpuOutlineKernelsBase<TgpuOutlineKernelsPass> {
  using TgpuOutlineKernelsBase::TgpuOutlineKernelsBase;
  void runOnOperation() override {
    if (failed(outlineKernels(getOperation(), minBlocks)))
      signalPassFailure();
  }
};
} // namespace
