//===- Passes.h - GPU code generation passes --------------------*- C++ -*-===//
#ifndef TESSERA_CODEGEN_GPU_PASSES_H
#define TESSERA_CODEGEN_GPU_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
namespace arith { class ArithDialect; }
namespace gpu { class GPUDialect; }
namespace LLVM { class LLVMDialect; }
namespace NVVM { class NVVMDialect; }
namespace nvgpu { class NVGPUDialect; }
namespace memref { class MemRefDialect; }
namespace scf { class SCFDialect; }
namespace vector { class VectorDialect; }
} // namespace mlir
namespace tessera::tgpu { class TgpuDialect; }

namespace tessera::gpu {
#define GEN_PASS_DECL
#include "codegen/gpu/Passes.h.inc"
#define GEN_PASS_REGISTRATION
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

#endif
