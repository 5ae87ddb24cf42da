//===- CleanupConversions.cpp - each layout conversion once, from its origin ===//
//
// tessera-tgpu-cleanup-conversions: tessera-tile-to-tgpu puts a tgpu.convert_layout in
// front of every use that needs another layout. This pass leaves the conversions the
// kernel makes, each once and from the value's own layout, as tessera-tile-to-gpu's
// distributor makes them (it converts a value at its first use in a block and reuses the
// result there and in the blocks nested in it):
//   - a conversion of a conversion converts the original value (an accumulator read
//     as a left operand after a detour becomes the in-register Acc -> dot_operand<a>);
//   - a conversion to the value's own layout is the value;
//   - a conversion that an equal one (same value, same layout) dominates is that one.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"
#include "dialect/tgpu/TgpuDialect.h"

#include "mlir/IR/Dominance.h"
#include "llvm/ADT/MapVector.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUCLEANUPCONVERSIONS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;

namespace {
struct TgpuCleanupConversionsPass
    : tessera::gpu::impl::TgpuCleanupConversionsBase<TgpuCleanupConversionsPass> {
  void runOnOperation() override;
};
} // namespace

void TgpuCleanupConversionsPass::runOnOperation() {
  // Program order: a chain's first conversion is rewritten before the ones reading it.
  SmallVector<tgpu::ConvertLayoutOp> converts;
  getOperation().walk([&](tgpu::ConvertLayoutOp c) { converts.push_back(c); });
  DominanceInfo dominance(getOperation());
  // (source, layout) -> the conversions kept so far, in program order.
  llvm::MapVector<std::pair<Value, Type>, SmallVector<tgpu::ConvertLayoutOp>> kept;
  SmallVector<Operation *> dead;
  for (tgpu::ConvertLayoutOp c : converts) {
    Value source = c.getSource();
    while (auto inner = source.getDefiningOp<tgpu::ConvertLayoutOp>())
      source = inner.getSource();
    c.getSourceMutable().assign(source);
    if (source.getType() == c.getType()) {
      c.getResult().replaceAllUsesWith(source);
      dead.push_back(c);
      continue;
    }
    SmallVector<tgpu::ConvertLayoutOp> &same = kept[{source, c.getType()}];
    auto earlier = llvm::find_if(same, [&](tgpu::ConvertLayoutOp e) {
      return dominance.properlyDominates(e.getOperation(), c.getOperation());
    });
    if (earlier != same.end()) {
      c.getResult().replaceAllUsesWith(earlier->getResult());
      dead.push_back(c);
      continue;
    }
    same.push_back(c);
  }
  // Conversions only other conversions read are left without uses: dropped too, last
  // first (a chain's inner links after the outer ones).
  for (tgpu::ConvertLayoutOp c : llvm::reverse(converts))
    if (c->use_empty() && !llvm::is_contained(dead, c.getOperation()))
      dead.push_back(c);
  for (Operation *op : dead)
    op->erase();
}
