//===- OperandStaging.cpp - which product operands go through shared memory -===//
//
// tessera-tgpu-stage-operands: the tile.loads whose tile is staged in shared memory
// before the products read it, and in which shared layout, written as
// `tgpu.staged = #tgpu.shared<...>` on each such load (StageAttrs.h). Stage assignment,
// warp specialisation and tessera-tile-to-gpu read the decision from there; a user may
// change it where the lowering can follow (a left operand of mma.sync products staged
// or read into registers), which the pass checks on a grid staged already. With `tma`,
// the first grid of each function whose swizzled tiles TMA can all copy is marked
// `tgpu.tensor_copies`: the lowering copies them by TMA, warp specialisation splits it.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/StageAttrs.h"
#include "codegen/gpu/WarpSpecialize.h"
#include "codegen/gpu/Wgmma.h"

#include "mlir/IR/Dominance.h"
#include "llvm/ADT/MapVector.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUSTAGEOPERANDS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
struct TgpuStageOperandsPass
    : tessera::gpu::impl::TgpuStageOperandsBase<TgpuStageOperandsPass> {
  using TgpuStageOperandsBase::TgpuStageOperandsBase;
  void runOnOperation() override;
};
} // namespace

/// Bytes after each row of a padded staging buffer: the 8 rows one ldmatrix reads fall
/// in different banks.
static constexpr int64_t kStagingPadBytes = 16;

/// `v` with its conversions folded (tessera-tile-to-gpu folds them into their uses).
static Value folded(Value v) {
  while (auto convert = v.getDefiningOp<tgpu::ConvertLayoutOp>())
    v = convert.getSource();
  return v;
}

/// Whether every reader of `load`'s tile (conversions looked through) is a product
/// taking it as its left operand.
static bool readOnlyAsLeftOperand(tile::LoadOp load) {
  SmallVector<Value> values{load.getResult()};
  while (!values.empty()) {
    Value v = values.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (auto convert = dyn_cast<tgpu::ConvertLayoutOp>(user)) {
        values.push_back(convert.getResult());
        continue;
      }
      auto dot = dyn_cast<tile::DotOp>(user);
      if (!dot || folded(dot.getLhs()) != load.getResult())
        return false;
    }
  }
  return true;
}

/// The shared layout a staged tile of `elem` takes: swizzled for wgmma's descriptors
/// (16-bit tiles of wgmma kernels), rows padded for ldmatrix otherwise (an f32 state of
/// a wgmma kernel too).
static tgpu::SharedLayoutAttr stagingLayout(MLIRContext *ctx, Type elem, bool wgmma) {
  if (wgmma && elem.getIntOrFloatBitWidth() == 16)
    return tgpu::SharedLayoutAttr::get(ctx, tgpu::SwizzleKind::swizzle_128b, 0);
  return tgpu::SharedLayoutAttr::get(ctx, tgpu::SwizzleKind::padded_rows, kStagingPadBytes);
}

/// The staging the lowering gives `load` by default (null: read into registers).
/// Right operands (every warp reads them whole) are always staged; left operands are
/// with wgmma (read from shared memory by descriptor), and with mma.sync where only
/// products read them and they are loaded per use (in a loop, or in a grid that asks
/// it: kLeftOperandsPerUseAttr) in 16-byte vectors: copied once and read by ldmatrix,
/// far fewer memory instructions than loading each warp's fragments.
static tgpu::SharedLayoutAttr defaultStaging(tile::LoadOp load, tile::GridOp grid, bool wgmma,
                                             int64_t threads) {
  std::optional<Layout> layout = layoutOfType(load.getType());
  if (!layout)
    return {};
  Type elem = getElementTypeOrSelf(load.getType());
  MLIRContext *ctx = load.getContext();
  if (layout->kind == LayoutKind::B || layout->kind == LayoutKind::BT)
    return stagingLayout(ctx, elem, wgmma);
  if (layout->kind != LayoutKind::A)
    return {};
  bool perUse = isa<scf::ForOp>(load->getParentOp()) || grid->hasAttr(kLeftOperandsPerUseAttr);
  if (wgmma || (readOnlyAsLeftOperand(load) && perUse &&
                vectorsPerThreadOf(TileCopy::of(load), threads) > 0))
    return stagingLayout(ctx, elem, wgmma);
  return {};
}

tgpu::SharedLayoutAttr tessera::gpu::stagingOf(tile::LoadOp load) {
  return load->getAttrOfType<tgpu::SharedLayoutAttr>(kStagedAttr);
}

/// Whether the lowering can follow `load`'s staging (its own or its absence); the
/// diagnostic is located at the load.
static LogicalResult checkStaging(tile::LoadOp load, bool wgmma) {
  Attribute attr = load->getAttr(kStagedAttr);
  if (attr && !isa<tgpu::SharedLayoutAttr>(attr))
    return load.emitError(kStagedAttr) << " is a #tgpu.shared layout, got " << attr;
  tgpu::SharedLayoutAttr staged = stagingOf(load);
  std::optional<Layout> layout = layoutOfType(load.getType());
  bool right = layout && (layout->kind == LayoutKind::B || layout->kind == LayoutKind::BT);
  bool left = layout && layout->kind == LayoutKind::A;
  Type elem = getElementTypeOrSelf(load.getType());
  if (!staged) {
    if (right)
      return load.emitError("a right operand every warp reads whole "
                            "(#tgpu.shared_operand) needs a ")
             << kStagedAttr << " buffer";
    if (left && wgmma)
      return load.emitError("a wgmma left operand is read from shared memory: it needs a ")
             << kStagedAttr << " buffer";
    return success();
  }
  if (!right && !left)
    return load.emitError("only product operands (#tgpu.dot_operand<a>, "
                          "#tgpu.shared_operand) are staged; this tile is read in registers");
  if (cast<RankedTensorType>(load.getType()).getRank() != 2)
    return load.emitError("a staged operand is a 2-D tile");
  tgpu::SharedLayoutAttr expected = stagingLayout(load.getContext(), elem, wgmma);
  if (staged != expected)
    return load.emitError("a ")
           << elem << " operand of " << (wgmma ? "wgmma" : "mma.sync")
           << " products is staged as " << expected << ", not " << staged;
  if (left && !wgmma && !readOnlyAsLeftOperand(load))
    return load.emitError("a left operand staged for mma.sync products is read by "
                          "products only (as their left operand)");
  return success();
}

/// A tile.trans into a right operand's layout (every warp reads it whole), other than
/// one between the two right-operand layouts (BT -> B: the same slots, a relabeling).
static bool transposesIntoRightOperand(tile::TransOp trans) {
  std::optional<Layout> out = layoutOfType(trans.getType());
  bool rightOperand = out && (out->kind == LayoutKind::B || out->kind == LayoutKind::BT);
  return rightOperand && !relabelsRightOperand(trans);
}

/// Whether the lowering reads `v` from shared memory: a staged load, a tile read from a
/// buffer, a transpose of either or into a right operand's layout (its input staged if
/// it is in registers); conversions looked through (tessera-tile-to-gpu folds them).
static bool readFromShared(Value v) {
  v = folded(v);
  if (auto load = v.getDefiningOp<tile::LoadOp>())
    return bool(stagingOf(load));
  if (auto trans = v.getDefiningOp<tile::TransOp>())
    return transposesIntoRightOperand(trans) || readFromShared(trans.getInput());
  return bool(v.getDefiningOp<tgpu::LocalLoadOp>());
}

/// The buffer a computed right operand of `type` is staged in: wgmma's swizzled rows
/// (one narrower than a swizzle row, [K, N] with N < 64 and whole 64-row columns, stored
/// transposed: the backward's dSᵀ of 16 or 32 queries), mma.sync's padded rows. Null
/// where no buffer holds it (the lowering reports the product).
static std::pair<tgpu::SharedBufferType, bool> computedBuffer(RankedTensorType type,
                                                               bool wgmma) {
  if (type.getRank() != 2)
    return {};
  MLIRContext *ctx = type.getContext();
  Type elem = type.getElementType();
  SmallVector<int64_t> shape(type.getShape());
  bool transposed = wgmma && shape[1] % kSwizzleCols && shape[0] % kSwizzleCols == 0 &&
                    shape[1] % 8 == 0;
  if (transposed)
    std::swap(shape[0], shape[1]);
  // The type's verifier is the rule: swizzled rows in atoms of 8 rows of 128 bytes.
  auto quiet = [] { return InFlightDiagnostic(); };
  auto buffer = tgpu::SharedBufferType::getChecked(quiet, ctx, ArrayRef<int64_t>(shape), elem,
                                                   stagingLayout(ctx, elem, wgmma),
                                                   int64_t(1), false);
  return {buffer, transposed};
}

/// A tile.trans of a tile in registers into a right operand's layout: its input is
/// staged.
static bool stagesItsInput(tile::TransOp trans) {
  return transposesIntoRightOperand(trans) && !readFromShared(trans.getInput());
}

/// Computed tiles the products read whole (a right operand in registers: a
/// linear-attention state, a feature-mapped key, the backward's dSᵀ), each written once
/// to a buffer of its own (tgpu.local_alloc of the value) and read back whole
/// (tgpu.local_load) by each reader: a product taking it as its right operand, or a
/// tile.trans of it into a right operand's layout (read transposed). The buffer is made
/// before the first reader where that dominates the others, else after the value.
static void stageComputedOperands(tile::GridOp grid, bool wgmma) {
  MLIRContext *ctx = grid.getContext();
  llvm::MapVector<Value, SmallVector<Operation *>> readers; // in program order
  grid.getBody().walk([&](Operation *op) {
    if (auto trans = dyn_cast<tile::TransOp>(op); trans && stagesItsInput(trans))
      readers[folded(trans.getInput())].push_back(op);
    if (auto dot = dyn_cast<tile::DotOp>(op); dot && !readFromShared(dot.getRhs()))
      readers[folded(dot.getRhs())].push_back(op);
  });
  DominanceInfo dominance(grid);
  for (auto &[value, ops] : readers) {
    auto [buffer, stored] = computedBuffer(cast<RankedTensorType>(value.getType()), wgmma);
    if (!buffer)
      continue; // the lowering reports the product
    Operation *first = ops.front();
    OpBuilder b(ctx);
    if (llvm::all_of(ops, [&](Operation *op) { return dominance.dominates(first, op); }))
      b.setInsertionPoint(first);
    else if (Operation *def = value.getDefiningOp())
      b.setInsertionPointAfter(def);
    else
      b.setInsertionPointToStart(cast<BlockArgument>(value).getOwner());
    auto alloc = tgpu::LocalAllocOp::create(b, first->getLoc(), buffer, value, stored);
    for (Operation *op : ops) {
      b.setInsertionPoint(op);
      if (auto trans = dyn_cast<tile::TransOp>(op)) {
        // Its transpose: a transposed store read as it is stored.
        Value read = tgpu::LocalLoadOp::create(b, op->getLoc(), trans.getType(), alloc,
                                               Value(), !stored);
        trans.getResult().replaceAllUsesWith(read);
        trans.erase();
        continue;
      }
      auto dot = cast<tile::DotOp>(op);
      auto type = cast<RankedTensorType>(dot.getRhs().getType());
      auto shared = RankedTensorType::get(
          type.getShape(), type.getElementType(),
          tgpu::SharedOperandEncodingAttr::get(ctx, accumulatorOf(grid), false));
      Value read = tgpu::LocalLoadOp::create(b, op->getLoc(), shared, alloc, Value(), stored);
      dot.getRhsMutable().assign(read);
    }
  }
}

LogicalResult tessera::gpu::stageOperands(tile::GridOp grid) {
  tgpu::MmaEncodingAttr accumulator = accumulatorOf(grid);
  if (!accumulator)
    return grid.emitError("the tile program has no GPU layouts: run tessera-tile-to-tgpu "
                          "before tessera-tgpu-stage-operands");
  bool wgmma = accumulator.getVersion() == tgpu::MmaVersion::wgmma;
  // A grid staged already keeps its loads' staging (a user's edits included); in one not
  // staged yet a load a user marked keeps its mark. Either way, checked.
  if (!grid->hasAttr(kOperandsStagedAttr)) {
    int64_t threads = 32 * grid.getConfig().getNumWarps();
    grid.getBody().walk([&](tile::LoadOp load) {
      if (load->hasAttr(kStagedAttr))
        return;
      if (tgpu::SharedLayoutAttr staged = defaultStaging(load, grid, wgmma, threads))
        load->setAttr(kStagedAttr, staged);
    });
    stageComputedOperands(grid, wgmma);
    grid->setAttr(kOperandsStagedAttr, UnitAttr::get(grid.getContext()));
  }
  WalkResult walk = grid.getBody().walk([&](tile::LoadOp load) {
    return failed(checkStaging(load, wgmma)) ? WalkResult::interrupt() : WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

/// The loads of `grid` staged in swizzled buffers: what TMA would copy.
static SmallVector<tile::LoadOp> swizzledLoads(tile::GridOp grid) {
  SmallVector<tile::LoadOp> loads;
  grid.getBody().walk([&](tile::LoadOp load) {
    if (tgpu::SharedLayoutAttr staged = stagingOf(load);
        staged && staged.getKind() == tgpu::SwizzleKind::swizzle_128b)
      loads.push_back(load);
  });
  return loads;
}

/// The first of `loads` TMA cannot copy, with why (all or none: cp.async groups and
/// mbarrier phases are waited for differently).
static std::optional<std::pair<tile::LoadOp, std::string>>
tensorCopyRefused(ArrayRef<tile::LoadOp> loads, tile::GridOp grid, func::FuncOp func) {
  int64_t threads = 32 * grid.getConfig().getNumWarps();
  for (tile::LoadOp load : loads)
    if (std::string why = tensorCopyRefusal(load, func, threads); !why.empty())
      return std::make_pair(load, why);
  return std::nullopt;
}

LogicalResult tessera::gpu::stageTensorCopies(func::FuncOp func, bool choose) {
  SmallVector<tile::GridOp> grids(func.getBody().getOps<tile::GridOp>());
  tile::GridOp marked;
  for (tile::GridOp grid : grids) {
    if (!grid->hasAttr(kTensorCopiesAttr))
      continue;
    // The function's descriptors are one list, which its kernels share.
    if (marked)
      return grid.emitError("one grid of a function copies by TMA (")
             << kTensorCopiesAttr << "): its kernels share the function's descriptors";
    marked = grid;
    if (failed(stageOperands(grid)))
      return failure();
    SmallVector<tile::LoadOp> loads = swizzledLoads(grid);
    if (loads.empty())
      return grid.emitError(kTensorCopiesAttr)
             << " on a grid with no operand tile staged swizzled (wgmma, 16-bit)";
    if (auto refused = tensorCopyRefused(loads, grid, func))
      return refused->first.emitError("a ")
             << kTensorCopiesAttr << " grid copies this tile by TMA, which it cannot: "
             << refused->second;
  }
  if (marked || !choose)
    return success();
  for (tile::GridOp grid : grids) {
    SmallVector<tile::LoadOp> loads = swizzledLoads(grid);
    if (!loads.empty() && !tensorCopyRefused(loads, grid, func)) {
      grid->setAttr(kTensorCopiesAttr, UnitAttr::get(grid.getContext()));
      break;
    }
  }
  return success();
}

void TgpuStageOperandsPass::runOnOperation() {
  WalkResult walk = getOperation().walk([](tile::GridOp grid) {
    return failed(stageOperands(grid)) ? WalkResult::interrupt() : WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return signalPassFailure();
  for (auto func : getOperation().getOps<func::FuncOp>())
    if (failed(stageTensorCopies(func, tma)))
      return signalPassFailure();
}
