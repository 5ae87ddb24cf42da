//===- Passes.h - target-independent Tessera passes -------------*- C++ -*-===//
#ifndef TESSERA_PASSES_PASSES_H
#define TESSERA_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
namespace arith { class ArithDialect; }
namespace math { class MathDialect; }
namespace scf { class SCFDialect; }
namespace tensor { class TensorDialect; }
namespace memref { class MemRefDialect; }
namespace func { class FuncDialect; }
} // namespace mlir
namespace tessera::tile { class TileDialect; }

namespace tessera {
#define GEN_PASS_DECL
#include "passes/Passes.h.inc"
#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"
} // namespace tessera

#endif
