//===- GpuChecks.h - what the GPU pipelines refuse up front -----*- C++ -*-===//
//
// Inputs that would otherwise abort inside LLVM (an unknown chip), crash upstream
// canonicalization (a dim index outside its operand) or run the GPU pipeline for minutes
// (a tile no SM can hold) are rejected by two small passes that run before the passes
// they would break, each with a located diagnostic.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPUCHECKS_H
#define TESSERA_CODEGEN_GPUCHECKS_H

#include <cstdint>
#include <memory>
#include <string>

namespace mlir {
class Pass;
}

namespace tessera {

/// Why `chip` cannot be compiled for ("" when it can). The GPU pipelines emit PTX for
/// these NVIDIA targets only; anything else (an older sm_XX, an AMD gfx name, SM_90A)
/// would abort inside LLVM's instruction selection.
std::string unsupportedChipReason(const std::string &chip);

/// Bytes one tile value of a GPU program may hold: an SM's register file (64 Ki 32-bit
/// registers). A larger tile fits neither registers nor shared memory (227 KiB).
constexpr int64_t kMaxGpuTileBytes = 256 * 1024;

/// `tessera-check-gpu-options{chip= min-blocks=}`: first in the GPU pipelines.
std::unique_ptr<mlir::Pass> createCheckGpuOptions(const std::string &chip, int64_t minBlocks,
                                                  bool tma = false, bool warpSpecialize = false,
                                                  bool pingpong = false,
                                                  bool intraWarpgroupOverlap = false);
/// `tessera-check-gpu-input`: before tile programs are distributed over threads.
std::unique_ptr<mlir::Pass> createCheckGpuInput();

void registerGpuChecks();

} // namespace tessera

#endif
