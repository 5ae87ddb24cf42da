#include "codegen/cpu/Passes.h"
#include "dialect/tile/TileDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace tessera::cpu {
#define GEN_PASS_DEF_TILETOLINALG
#include "codegen/cpu/Passes.h.inc"
} // namespace tessera::cpu

namespace {
struct TileToLinalgPass : tessera::cpu::impl::TileToLinalgBase<TileToLinalgPass> {
  void runOnOperation() override {}
};
} // namespace
