#include "passes/Passes.h"
#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace tessera {
#define GEN_PASS_DEF_ATTNTOTILE
#include "passes/Passes.h.inc"
} // namespace tessera

namespace {
struct AttnToTilePass : tessera::impl::AttnToTileBase<AttnToTilePass> {
  using AttnToTileBase::AttnToTileBase;
  void runOnOperation() override {}
};
} // namespace
