//===- GpuChecks.cpp - what the GPU pipelines refuse up front -------------===//
#include "codegen/GpuChecks.h"

#include "dialect/tile/TileDialect.h"

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

  void runOnOperation() override {
    std::string reason = tessera::unsupportedChipReason(chip);
    if (reason.empty() && (minBlocks < 0 || minBlocks > 32))
      reason = "min_blocks must be in [0, 32] (blocks per SM), got " +
               std::to_string(int64_t(minBlocks));
    if (!reason.empty()) {
      mlir::emitError(getOperation().getLoc(), reason);
      signalPassFailure();
    }
  }
};

/// A tile is distributed over a block's threads element by element: one of megabytes
/// (a head dim of 65536, a 1024 x 1024 tile) made the GPU pipeline run for minutes
/// before failing, though no SM could hold it.
struct CheckGpuTilesPass : PassWrapper<CheckGpuTilesPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(CheckGpuTilesPass)
  StringRef getArgument() const override { return "tessera-check-gpu-tiles"; }
  StringRef getDescription() const override {
    return "rejects tiles larger than a GPU block can hold on chip";
  }

  void runOnOperation() override {
    WalkResult walk = getOperation().walk([](tessera::tile::GridOp grid) {
      WalkResult inner = grid.getBody().walk([](Operation *op) {
        for (Type t : op->getResultTypes()) {
          auto tile = dyn_cast<RankedTensorType>(t);
          if (!tile || !tile.hasStaticShape() || !tile.getElementType().isIntOrFloat())
            continue;
          // Bits rounded up to whole bytes per element, in 128 bits so nothing wraps.
          unsigned elementBytes = (tile.getElementType().getIntOrFloatBitWidth() + 7) / 8;
          __int128 bytes = elementBytes;
          for (int64_t d : tile.getShape())
            bytes *= d;
          if (bytes > tessera::kMaxGpuTileBytes) {
            op->emitError("tile ")
                << tile << " holds more than a GPU block can keep on chip (at most "
                << tessera::kMaxGpuTileBytes / 1024
                << " KiB a tile, an SM's register file); use smaller head dims or blocks";
            return WalkResult::interrupt();
          }
        }
        return WalkResult::advance();
      });
      return inner;
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace

std::unique_ptr<Pass> tessera::createCheckGpuOptions(const std::string &chip,
                                                     int64_t minBlocks) {
  auto pass = std::make_unique<CheckGpuOptionsPass>();
  pass->chip = chip;
  pass->minBlocks = minBlocks;
  return pass;
}

std::unique_ptr<Pass> tessera::createCheckGpuTiles() {
  return std::make_unique<CheckGpuTilesPass>();
}

void tessera::registerGpuChecks() {
  PassRegistration<CheckGpuOptionsPass>();
  PassRegistration<CheckGpuTilesPass>();
}
