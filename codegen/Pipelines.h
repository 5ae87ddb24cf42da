//===- Pipelines.h - Tessera's named pass pipelines -------------*- C++ -*-===//
//
// One function builds each pipeline; tessera-opt, the Python layer and the autotuner all
// call it, and the printed textual form replays in tessera-opt.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_PIPELINES_H
#define TESSERA_CODEGEN_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
}

namespace tessera {

/// Tuning knobs shared by every pipeline; they become the `#tile.config` of each kernel.
/// (A template so each pipeline's options type, CRTP in MLIR, can extend them.)
template <typename Derived>
struct TuningOptions : mlir::PassPipelineOptions<Derived> {
  using Base = mlir::PassPipelineOptions<Derived>;
  typename Base::template Option<int64_t> blockM{
      *this, "block-m", llvm::cl::desc("query rows per program"), llvm::cl::init(64)};
  typename Base::template Option<int64_t> blockN{
      *this, "block-n", llvm::cl::desc("keys per inner-loop step"), llvm::cl::init(64)};
  typename Base::template Option<int64_t> numWarps{
      *this, "num-warps", llvm::cl::desc("warps per program"), llvm::cl::init(4)};
  typename Base::template Option<int64_t> numStages{
      *this, "num-stages", llvm::cl::desc("software-pipeline stages"), llvm::cl::init(2)};
  typename Base::template Option<int64_t> gradQueryTile{
      *this, "grad-query-tile",
      llvm::cl::desc("softmax backward: queries per dK / dV tile (0: the compiler's rule)"),
      llvm::cl::init(0)};
  typename Base::template Option<int64_t> split{
      *this, "split", llvm::cl::desc("pieces a program's work is split into"),
      llvm::cl::init(1)};
};

struct PipelineOptions : TuningOptions<PipelineOptions> {};

/// The GPU pipeline adds the target chip.
struct GpuPipelineOptions : TuningOptions<GpuPipelineOptions> {
  Option<std::string> chip{*this, "chip", llvm::cl::desc("GPU architecture (sm_90a, sm_80)"),
                           llvm::cl::init("sm_90a")};
  Option<int64_t> minBlocks{*this, "min-blocks",
                            llvm::cl::desc("blocks per SM ptxas must leave registers for "
                                           "(.minnctapersm; 0 = the compiler's choice)"),
                            llvm::cl::init(0)};
  Option<bool> tma{*this, "tma",
                   llvm::cl::desc("sm_90a: copy wgmma operand tiles with TMA from descriptor "
                                  "parameters (off by default)"),
                   llvm::cl::init(false)};
  Option<bool> warpSpecialize{
      *this, "warp-specialize",
      llvm::cl::desc("sm_90a: a TMA producer warpgroup feeds consumer warpgroups through an "
                     "mbarrier ring (needs tma; off by default)"),
      llvm::cl::init(false)};
  Option<bool> pingpong{*this, "pingpong",
                        llvm::cl::desc("sm_90a: warp-specialize's two consumer warpgroups "
                                       "take turns at their products (off by default)"),
                        llvm::cl::init(false)};
  Option<bool> intraWarpgroupOverlap{
      *this, "intra-warpgroup-overlap",
      llvm::cl::desc("sm_90a: warp-specialize's consumers issue each loop's last product "
                     "one iteration later, under the next softmax (needs warp-specialize; "
                     "off by default)"),
      llvm::cl::init(false)};
  Option<bool> persistent{*this, "persistent",
                          llvm::cl::desc("sm_90a: one CTA per SM walks the grid's tiles "
                                         "(off by default)"),
                          llvm::cl::init(false)};
  Option<bool> gradDqAtomic{
      *this, "grad-dq-atomic",
      llvm::cl::desc("softmax backward: dQ summed in f32 by the dK / dV grid with atomics "
                     "instead of a dQ grid (off by default)"),
      llvm::cl::init(false)};
};

/// `tessera-to-tile`: attn ops -> tile programs, cleaned up. `keyMajorGrad`: the pass
/// option key-major-grad (the softmax backward's dK / dV tiles; false for mma.sync GPUs),
/// `gradDqAtomic` its option grad-dq-atomic (GPU pipelines only: the CPU keeps the dQ grid).
void buildToTilePipeline(mlir::OpPassManager &pm, const PipelineOptions &options,
                         bool keyMajorGrad = true, bool gradDqAtomic = false);
/// `tessera-tile-to-cpu`: tile programs -> the LLVM dialect, ready for the JIT.
void buildTileToCpuPipeline(mlir::OpPassManager &pm);
/// `tessera-cpu`: both of the above.
void buildCpuPipeline(mlir::OpPassManager &pm, const PipelineOptions &options);

/// `tessera-tile-to-ptx{chip=}`: tile programs -> gpu.binary holding PTX per kernel.
void buildTileToPtxPipeline(mlir::OpPassManager &pm, const GpuPipelineOptions &options);
/// `tessera-to-tgpu{...}`: attn ops -> tile programs with #tgpu layouts and the loop
/// schedule (tessera-tgpu-assign-stages), as tessera-gpu has them before distribution.
void buildToTgpuPipeline(mlir::OpPassManager &pm, const GpuPipelineOptions &options);
/// `tessera-gpu{...}`: attn ops -> PTX.
void buildGpuPipeline(mlir::OpPassManager &pm, const GpuPipelineOptions &options);

void registerPipelines();

} // namespace tessera

#endif
