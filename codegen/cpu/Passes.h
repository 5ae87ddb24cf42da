//===- Passes.h - CPU code generation passes --------------------*- C++ -*-===//
#ifndef TESSERA_CODEGEN_CPU_PASSES_H
#define TESSERA_CODEGEN_CPU_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
namespace arith { class ArithDialect; }
namespace linalg { class LinalgDialect; }
namespace scf { class SCFDialect; }
namespace tensor { class TensorDialect; }
namespace memref { class MemRefDialect; }
} // namespace mlir

namespace tessera::cpu {
#define GEN_PASS_DECL
#include "codegen/cpu/Passes.h.inc"
#define GEN_PASS_REGISTRATION
#include "codegen/cpu/Passes.h.inc"
} // namespace tessera::cpu

#endif
