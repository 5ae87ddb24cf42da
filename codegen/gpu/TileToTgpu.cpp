//===- TileToTgpu.cpp - layout assignment as a type conversion ------------===//
//
// tessera-tile-to-tgpu: every tile of a tile.grid body gets the #tgpu encoding of the
// layout LayoutAssignment finds for it (its producer / consumer fixed point), so that
// the layouts are in the IR: printed, checked by the encodings' verifiers, read by the
// distributor (tessera-tile-to-gpu). Where an op needs its operands in the type of its
// result (element-wise ops, a product's accumulator, loop-carried and yielded values) a
// value of another layout goes through `tgpu.convert_layout`, and a splat constant is
// cloned in the layout wanted; a product's left operand computed as an accumulator (the
// FlashAttention-2 P) is converted to `#tgpu.dot_operand<a>` too. The grid records its
// accumulator layout (`tgpu.accumulator`), which names the product instruction:
// mma.sync, or wgmma where the option asks for it and the program fits it.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/Wgmma.h"
#include "passes/TilePrograms.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

#include <numeric>

namespace tessera::gpu {
#define GEN_PASS_DEF_TILETOTGPU
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

/// Why `grid` cannot use wgmma (empty when it can): warpgroups of 4 warps each owning 64
/// rows, 16-bit operands with contraction and column extents in multiples of 64 (of 16
/// where a head dim such as 80 or 96 takes a partial last swizzle block), memory-read
/// operands loaded whole with 16-byte copies, computed right operands
/// (written to a swizzled buffer from registers) filling whole 128-byte swizzle rows.
static std::string wgmmaMismatch(tile::GridOp grid, int64_t warps, int64_t mTiles,
                                 const DenseMap<Value, Layout> &layouts) {
  if (warps % 4 || mTiles != 1)
    return "needs num_warps % 4 == 0 and block_m = 16 x num_warps";
  // Kernels whose head dims (the rows operand tiles read whole) are 64 or 128 keep the
  // rule they were tuned under, K and N multiples of 64; other head dims (80, 96, 144,
  // 192, ...) and grids whose tile program asks narrow products (kNarrowProductsAttr)
  // take extents in multiples of 16 (32-key tiles, a partial last swizzle block).
  bool wholeBlocks = !grid->hasAttr(kNarrowProductsAttr);
  grid.walk([&](tile::LoadOp load) {
    auto type = cast<RankedTensorType>(load.getType());
    int64_t row = load.getSource().getType().getShape().back();
    if (type.getRank() == 2 && type.getElementType().getIntOrFloatBitWidth() == 16 &&
        type.getDimSize(1) == row && (row % kSwizzleCols || row > 128))
      wholeBlocks = false;
  });
  int64_t unit = wholeBlocks ? kSwizzleCols : 16;
  std::string reason;
  grid.walk([&](tile::DotOp dot) {
    auto lhs = cast<RankedTensorType>(dot.getLhs().getType());
    auto rhs = cast<RankedTensorType>(dot.getRhs().getType());
    int64_t k = lhs.getDimSize(1), n = rhs.getDimSize(1);
    if (!lhs.getElementType().isF16() && !lhs.getElementType().isBF16())
      reason = "needs f16/bf16 operands";
    else if (lhs.getDimSize(0) != 16 * warps)
      reason = "needs products of 16 x num_warps rows";
    else if (k % unit || n % unit || n > 256)
      reason = "needs K and N multiples of 64, or of 16 with a head dim that is not (N <= 256)";
    else if (!dot.getRhs().getDefiningOp<tile::LoadOp>() &&
             !dot.getRhs().getDefiningOp<tile::TransOp>() && (n % kSwizzleCols || k % 8) &&
             (k % kSwizzleCols || !grid->hasAttr(kNarrowProductsAttr))) // transposed: stageSwizzled
      reason = "needs a computed right operand with N a multiple of 64 (or K, in narrow "
               "products)";
  });
  grid.walk([&](tile::LoadOp load) {
    auto kind = layouts.lookup(load.getResult()).kind;
    if (kind != LayoutKind::A && kind != LayoutKind::B && kind != LayoutKind::BT)
      return;
    if (cast<RankedTensorType>(load.getType()).getElementType().getIntOrFloatBitWidth() != 16)
      return; // an f32 tile staged for a transpose (a state), not a product operand
    if (!vectorsPerThreadOf(TileCopy::of(load), 32 * warps))
      reason = "needs operand tiles spanning whole rows, 16-byte chunks spread evenly";
    if (kind == LayoutKind::A)
      for (Operation *user : load->getUsers())
        if (auto dot = dyn_cast<tile::DotOp>(user); !dot || dot.getLhs() != load.getResult())
          reason = "needs memory-read left operands used only by products";
  });
  return reason;
}

/// The kernel's accumulator layout: mma.sync m16n8k16, or wgmma m64nNk16 with N the
/// widest instruction dividing every accumulator and column slice of the kernel (one
/// parent for all its layouts, so element-wise work across products needs no conversion).
static tgpu::MmaEncodingAttr accumulatorLayout(MLIRContext *ctx, int64_t warps, bool wgmma,
                                               const DenseMap<Value, Layout> &layouts) {
  if (!wgmma)
    return tgpu::MmaEncodingAttr::get(ctx, tgpu::MmaVersion::mma_sync, {warps, 1},
                                      {16, 8, 16});
  int64_t columns = 0;
  // In the map's (pointer) order: a gcd does not depend on it.
  for (auto &[v, l] : layouts)
    if (l.kind == LayoutKind::Acc || l.kind == LayoutKind::Col)
      columns = std::gcd(columns, l.kind == LayoutKind::Acc ? l.cols : l.rows);
  int64_t n = 8;
  for (int64_t c = 256; c > 8; c -= 8)
    if (columns % c == 0) {
      n = c;
      break;
    }
  return tgpu::MmaEncodingAttr::get(ctx, tgpu::MmaVersion::wgmma, {warps, 1}, {64, n, 16});
}

namespace {
/// Writes the layouts of one grid body into its types.
class EncodingWriter {
public:
  EncodingWriter(const DenseMap<Value, Layout> &layouts, tgpu::MmaEncodingAttr acc)
      : layouts(layouts), acc(acc) {}

  void run(Block &body) {
    body.walk([&](Operation *op) {
      for (Value r : op->getResults())
        retype(r);
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            retype(arg);
    });
    // Operands second: every value has its final type by now.
    body.walk([&](Operation *op) { matchOperands(op); });
    for (Operation *op : llvm::make_early_inc_range(replacedSplats))
      if (op->use_empty())
        op->erase();
  }

private:
  const DenseMap<Value, Layout> &layouts;
  tgpu::MmaEncodingAttr acc;
  /// Splats cloned into another layout, per (splat, type): one clone serves every use.
  DenseMap<std::pair<Value, Type>, Value> splatClones;
  SetVector<Operation *> replacedSplats;

  RankedTensorType encoded(RankedTensorType type, const Layout &l) {
    return RankedTensorType::get(type.getShape(), type.getElementType(), encodingOf(l, acc));
  }

  void retype(Value v) {
    auto it = layouts.find(v);
    if (it == layouts.end())
      return;
    auto type = encoded(cast<RankedTensorType>(v.getType()), it->second);
    v.setType(type);
    // A constant's value carries its type.
    if (auto constant = v.getDefiningOp<arith::ConstantOp>())
      if (auto dense = dyn_cast<DenseElementsAttr>(constant.getValue()))
        constant.setValueAttr(dense.reshape(type));
  }

  /// `v` in type `want`: itself, a clone of a splat, or a conversion placed before `at`.
  Value as(Value v, Type want, Operation *at) {
    if (v.getType() == want)
      return v;
    if (isSplat(v)) {
      Value &clone = splatClones[{v, want}];
      if (!clone) {
        // Right after the splat: where the distributor met the original.
        Operation *def = v.getDefiningOp();
        OpBuilder b(def->getContext());
        b.setInsertionPointAfter(def);
        Operation *copy = b.clone(*def);
        copy->getResult(0).setType(want);
        if (auto constant = dyn_cast<arith::ConstantOp>(copy))
          constant.setValueAttr(cast<DenseElementsAttr>(constant.getValue())
                                    .reshape(cast<ShapedType>(want)));
        clone = copy->getResult(0);
        replacedSplats.insert(def);
      }
      return clone;
    }
    OpBuilder b(at);
    return tgpu::ConvertLayoutOp::create(b, at->getLoc(), want, v);
  }

  void matchOperand(Operation *op, unsigned i, Type want) {
    if (isa<RankedTensorType>(want))
      op->setOperand(i, as(op->getOperand(i), want, op));
  }

  void matchOperands(Operation *op) {
    if (auto dot = dyn_cast<tile::DotOp>(op)) {
      matchOperand(op, dot.getAccMutable().getOperandNumber(), dot.getType());
      // P: an accumulator read as the next product's left operand.
      auto lhs = cast<RankedTensorType>(dot.getLhs().getType());
      std::optional<Layout> have = layoutOfType(lhs);
      if (have && have->kind == LayoutKind::Acc) {
        Layout a = *have;
        a.kind = LayoutKind::A;
        matchOperand(op, dot.getLhsMutable().getOperandNumber(), encoded(lhs, a));
      }
    } else if (auto forOp = dyn_cast<scf::ForOp>(op)) {
      for (auto [i, arg] : llvm::enumerate(forOp.getRegionIterArgs()))
        matchOperand(op, forOp.getNumControlOperands() + i, arg.getType());
    } else if (auto whileOp = dyn_cast<scf::WhileOp>(op)) {
      for (auto [i, arg] : llvm::enumerate(whileOp.getBeforeArguments()))
        matchOperand(op, i, arg.getType());
    } else if (auto yield = dyn_cast<scf::YieldOp>(op)) {
      Operation *parent = op->getParentOp();
      ValueRange targets = parent->getResults();
      if (auto whileOp = dyn_cast<scf::WhileOp>(parent))
        targets = whileOp.getBeforeArguments();
      for (auto [i, target] : llvm::enumerate(targets))
        matchOperand(op, i, target.getType());
    } else if (auto condition = dyn_cast<scf::ConditionOp>(op)) {
      auto whileOp = cast<scf::WhileOp>(op->getParentOp());
      for (auto [i, arg] : llvm::enumerate(whileOp.getAfterArguments()))
        matchOperand(op, condition.getArgs().getBeginOperandIndex() + i, arg.getType());
    } else if (isElementwiseTile(op)) {
      auto result = cast<RankedTensorType>(op->getResult(0).getType());
      for (OpOperand &operand : op->getOpOperands())
        if (auto type = dyn_cast<RankedTensorType>(operand.get().getType()))
          matchOperand(op, operand.getOperandNumber(),
                       RankedTensorType::get(type.getShape(), type.getElementType(),
                                             result.getEncoding()));
    }
  }

  /// arith / math ops on tiles: operands and result in one layout.
  static bool isElementwiseTile(Operation *op) {
    if (op->getNumResults() != 1 || !isa<RankedTensorType>(op->getResult(0).getType()) ||
        isa<arith::ConstantOp>(op))
      return false;
    StringRef ns = op->getDialect() ? op->getDialect()->getNamespace() : "";
    return ns == "arith" || ns == "math";
  }
};

/// Splat tiles made outside the grid (a zero fill's constant) are cloned at the start
/// of its body, where their types can carry the layouts the body uses them in.
static void bringSplatsInside(tile::GridOp grid) {
  Block &body = grid.getBody().front();
  DenseMap<Value, Value> inside;
  grid.getBody().walk([&](Operation *op) {
    for (OpOperand &operand : op->getOpOperands()) {
      Value v = operand.get();
      if (!isa<RankedTensorType>(v.getType()) || !isSplat(v) ||
          grid->isAncestor(v.getParentRegion()->getParentOp()))
        continue;
      Value &clone = inside[v];
      if (!clone) {
        OpBuilder b = OpBuilder::atBlockBegin(&body);
        clone = b.clone(*v.getDefiningOp())->getResult(0);
      }
      operand.set(clone);
    }
  });
}

struct TileToTgpuPass : tessera::gpu::impl::TileToTgpuBase<TileToTgpuPass> {
  using TileToTgpuBase::TileToTgpuBase;

  void runOnOperation() override {
    WalkResult result = getOperation().walk([&](tile::GridOp grid) {
      return failed(convert(grid)) ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }

  LogicalResult convert(tile::GridOp grid) {
    tile::ConfigAttr config = grid.getConfig();
    int64_t warps = config.getNumWarps();
    int64_t mTiles = config.getBlockM() / (16 * warps);
    if (config.getBlockM() % (16 * warps) || mTiles > 4)
      return grid.emitError("the GPU target needs block_m = 16 x num_warps x (1, 2 or 4), "
                            "got block_m = ")
             << config.getBlockM() << ", num_warps = " << warps;
    bringSplatsInside(grid);
    DenseMap<Value, Layout> layouts;
    if (failed(assignLayouts(grid, warps, layouts)))
      return failure();
    bool useWgmma = wgmma && wgmmaMismatch(grid, warps, mTiles, layouts).empty();
    tgpu::MmaEncodingAttr acc = accumulatorLayout(&getContext(), warps, useWgmma, layouts);
    EncodingWriter(layouts, acc).run(grid.getBody().front());
    grid->setAttr(kAccumulatorAttr, acc);
    return success();
  }
};
} // namespace
