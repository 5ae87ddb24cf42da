//===- Compiler.h - the narrow facade over the Tessera compiler -*- C++ -*-===//
//
// The only header the Python layer, tools and tests need. It names no MLIR type, so a
// binding built with another compiler or Python links against it without MLIR headers.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_COMPILER_COMPILER_H
#define TESSERA_COMPILER_COMPILER_H

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace tessera {

/// A compiler error; `what()` holds the located diagnostics.
struct CompileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TuningConfig {
  int64_t blockM = 64, blockN = 64, numWarps = 4, numStages = 2, split = 1;
  int64_t minBlocks = 0; // GPU: blocks per SM for ptxas (.minnctapersm); 0 = compiler's
  int64_t gradQueryTile = 0; // softmax backward: queries per dK / dV tile; 0 = compiler's
  bool tma = false; // sm_90a: wgmma operand tiles copied by TMA (issue 25); CPU ignores it
  // sm_90a, issue 25 (CPU ignores them): a TMA producer warpgroup feeding consumer
  // warpgroups through an mbarrier ring; one CTA per SM walking the grid's tiles.
  bool warpSpecialize = false, persistent = false;
  bool gradDqAtomic = false; // softmax backward: dQ summed by the dK / dV grid (f32 atomics)
  // sm_90a, issue 25: warp_specialize's two consumer warpgroups take turns at their
  // products (one's softmax under the other's wgmma).
  bool pingpong = false;
  // sm_90a, issue 25: warp_specialize's consumers issue each loop's last product (P·V)
  // one iteration later, under the next softmax (FlashAttention-3's intra-warpgroup
  // overlap).
  bool intraWarpgroupOverlap = false;
};

/// The stages a user can inspect; each is reached by a printed, replayable pipeline.
/// TgpuSm90a ("tgpu") and TgpuSm80 ("tgpu-sm_80"): the tile program with its GPU layouts
/// and loop schedule, as the GPU pipeline has it for that chip before distribution.
enum class Stage { Attn, Tile, TgpuSm90a, TgpuSm80, Llvm };
Stage parseStage(const std::string &name); // throws CompileError on an unknown name

/// The `tessera-opt` pass pipeline that takes attn IR to `stage` with `config`.
std::string pipelineFor(Stage stage, const TuningConfig &config);

/// Parses and verifies `attnModule`; returns it printed. Throws CompileError.
std::string verifyModule(const std::string &attnModule);

/// Runs `pipelineFor(stage, config)` on `attnModule` and prints the result.
std::string lowerModule(const std::string &attnModule, Stage stage,
                        const TuningConfig &config);

/// Runs `pipeline` (as tessera-opt's --pass-pipeline takes it) on `attnModule` and prints
/// the module right after the first run of the pass `passName` (its tessera-opt flag
/// without dashes). Throws CompileError naming the passes that ran where none is called
/// that, or where the pipeline fails before it.
std::string irAfterPass(const std::string &attnModule, const std::string &pipeline,
                        const std::string &passName);

/// What a GPU runtime without MLIR needs to launch a compiled spec: the PTX of its
/// kernels and the launch record (docs/LAUNCH_RECORD.md, decoded by runtime/LaunchRecord.h):
/// a versioned JSON object naming each kernel with its block, shared memory and grid, the
/// workspaces between grids, and the ranks of the caller's arguments; grids and workspace
/// shapes are formulas of the arguments' sizes.
struct GpuKernelImage {
  std::string ptx;
  std::string launchesJson;
};

/// Compiles `entry` of `attnModule` to PTX for `chip` (sm_90a, sm_80).
GpuKernelImage compileForGpu(const std::string &attnModule, const std::string &entry,
                             const TuningConfig &config, const std::string &chip);

/// The launch record `compileForGpu` writes for `entry` of a module the GPU pipeline already
/// lowered, from the entry's `tessera.launches`, `tessera.workspaces` and (optional)
/// `tessera.tensor_maps` attributes (their shapes: docs/LAUNCH_RECORD.md). Throws
/// CompileError where they are missing or malformed.
std::string launchRecordOf(const std::string &gpuModule, const std::string &entry);

/// The `tessera-opt` pipeline `compileForGpu` runs.
std::string gpuPipelineFor(const TuningConfig &config, const std::string &chip);

/// A strided view of a caller's buffer, handed to a kernel without a copy. Sizes and
/// strides count elements.
struct BufferArg {
  void *data = nullptr;
  std::vector<int64_t> sizes, strides;
};

/// A kernel compiled for the CPU through MLIR's execution engine. Batch, heads and
/// sequence lengths are run-time values: one compiled kernel serves every shape.
class CpuKernel {
public:
  static std::unique_ptr<CpuKernel> compile(const std::string &attnModule,
                                            const std::string &entry,
                                            const TuningConfig &config);
  ~CpuKernel();
  /// Arguments in the entry's order: inputs, then one output buffer per result.
  void run(const std::vector<BufferArg> &args);

private:
  struct Impl;
  explicit CpuKernel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl;
};

} // namespace tessera

#endif
