//===- GpuChecks.cpp - what the GPU pipelines refuse up front -------------===//
#include "codegen/GpuChecks.h"

#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"

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
/// Options no later pass can handle become one diagnostic before any pass runs. (Tuning
/// knobs are checked where they are read: AttnToTile and the #tile.config verifier.)
struct CheckGpuOptionsPass : PassWrapper<CheckGpuOptionsPass, OperationPass<ModuleOp>> {
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
  Option<bool> tma{*this, "tma", llvm::cl::desc("TMA copies"), llvm::cl::init(false)};
  Option<bool> warpSpecialize{*this, "warp-specialize",
                              llvm::cl::desc("a TMA producer warpgroup"), llvm::cl::init(false)};
  Option<bool> pingpong{*this, "pingpong", llvm::cl::desc("consumer warpgroups take turns"),
                        llvm::cl::init(false)};
  Option<bool> intraWarpgroupOverlap{*this, "intra-warpgroup-overlap",
                                     llvm::cl::desc("last products one iteration later"),
                                     llvm::cl::init(false)};

  void runOnOperation() override {
    std::string reason = tessera::unsupportedChipReason(chip);
    if (reason.empty() && (minBlocks < 0 || minBlocks > 32))
      reason = "min_blocks must be in [0, 32] (blocks per SM), got " +
               std::to_string(int64_t(minBlocks));
    // The producer copies by TMA and hands registers over with setmaxnreg (sm_90a); its
    // block of 128 x (1 + consumer warpgroups) threads takes an SM's registers alone.
    if (reason.empty() && warpSpecialize && (chip != "sm_90a" || !tma))
      reason = "warp_specialize needs tma and sm_90a (Config(tma=True, warp_specialize=True) "
               "on sm_90a); got tma=" + std::string(tma ? "True" : "False") + " and chip " +
               chip.getValue();
    // Its turns are between warp_specialize's consumer warpgroups (tessera-tgpu-warp-
    // specialize refuses a grid without two).
    if (reason.empty() && pingpong && !warpSpecialize)
      reason = "pingpong needs warp_specialize (Config(tma=True, warp_specialize=True, "
               "pingpong=True), block_m 128 and num_warps 8: two consumer warpgroups)";
    // It rotates the consumers' loops, whose tiles the producer's ring hands out.
    if (reason.empty() && intraWarpgroupOverlap && !warpSpecialize)
      reason = "intra_warpgroup_overlap needs warp_specialize (Config(tma=True, "
               "warp_specialize=True, intra_warpgroup_overlap=True) on sm_90a)";
    if (reason.empty() && warpSpecialize && minBlocks > 1)
      reason = "warp_specialize runs one block per SM (its registers); min_blocks must be 0 "
               "or 1, got " + std::to_string(int64_t(minBlocks));
    if (!reason.empty()) {
      mlir::emitError(getOperation().getLoc(), reason);
      signalPassFailure();
    }
  }
};

/// What verifies but the GPU pipeline cannot compile, refused before distribution:
/// * a tile larger than an SM can hold: a tile is distributed over a block's threads
///   element by element, and one of megabytes (a head dim of 65536, a 1024 x 1024 tile)
///   ran the pipeline for minutes before failing;
/// * a memref.dim / tensor.dim whose constant index is outside its operand's rank: valid
///   IR (undefined at run time), but upstream canonicalization in the kernel module
///   crashed on it (a segfault, found by IR mutation fuzzing).
struct CheckGpuInputPass : PassWrapper<CheckGpuInputPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(CheckGpuInputPass)
  StringRef getArgument() const override { return "tessera-check-gpu-input"; }
  StringRef getDescription() const override {
    return "rejects tiles larger than a GPU block can hold and dims outside their operand";
  }

  static LogicalResult checkDim(Operation *op, std::optional<int64_t> index, Value source) {
    auto type = dyn_cast<ShapedType>(source.getType());
    if (!index || !type || !type.hasRank() || (*index >= 0 && *index < type.getRank()))
      return success();
    return op->emitError("dimension index ")
           << *index << " is outside the rank of " << type << " (0 .. "
           << type.getRank() - 1 << ")";
  }

  static LogicalResult checkTile(Operation *op) {
    for (Type t : op->getResultTypes()) {
      auto tile = dyn_cast<RankedTensorType>(t);
      if (!tile || !tile.hasStaticShape() || !tile.getElementType().isIntOrFloat())
        continue;
      // Bits rounded up to whole bytes per element, in 128 bits so nothing wraps.
      __int128 bytes = (tile.getElementType().getIntOrFloatBitWidth() + 7) / 8;
      for (int64_t d : tile.getShape())
        bytes *= d;
      if (bytes > tessera::kMaxGpuTileBytes)
        return op->emitError("tile ")
               << tile << " holds more than a GPU block can keep on chip (at most "
               << tessera::kMaxGpuTileBytes / 1024
               << " KiB a tile, an SM's register file); use smaller head dims or blocks";
    }
    return success();
  }

  void runOnOperation() override {
    WalkResult walk = getOperation().walk([](Operation *op) {
      LogicalResult ok = success();
      if (auto dim = dyn_cast<memref::DimOp>(op))
        ok = checkDim(op, dim.getConstantIndex(), dim.getSource());
      else if (auto dim = dyn_cast<tensor::DimOp>(op))
        ok = checkDim(op, dim.getConstantIndex(), dim.getSource());
      else if (op->getParentOfType<tessera::tile::GridOp>())
        ok = checkTile(op);
      return failed(ok) ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace

std::unique_ptr<Pass> tessera::createCheckGpuOptions(const std::string &chip,
                                                     int64_t minBlocks, bool tma,
                                                     bool warpSpecialize, bool pingpong,
                                                     bool intraWarpgroupOverlap) {
  auto pass = std::make_unique<CheckGpuOptionsPass>();
  pass->chip = chip;
  pass->minBlocks = minBlocks;
  pass->tma = tma;
  pass->warpSpecialize = warpSpecialize;
  pass->pingpong = pingpong;
  pass->intraWarpgroupOverlap = intraWarpgroupOverlap;
  return pass;
}

std::unique_ptr<Pass> tessera::createCheckGpuInput() {
  return std::make_unique<CheckGpuInputPass>();
}

void tessera::registerGpuChecks() {
  PassRegistration<CheckGpuOptionsPass>();
  PassRegistration<CheckGpuInputPass>();
}
