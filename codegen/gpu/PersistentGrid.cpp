//===- PersistentGrid.cpp - one CTA per SM slot walks the grid's programs ---===//
//
// tessera-persistent-grid (Config.persistent, issue 25): a tile -> tile rewrite of each
// tile.grid holding products (the attention grids; classification and element-wise
// grids are short and keep their launch) into a one-dimensional grid over its work items
// whose body is a loop: item t = program id, t += number of programs, the old program
// ids derived from t. The launch record launches min(blocks per SM x #SMs, items)
// programs (TileToGpu.cpp, persistentGridExtent), so every program stays resident and
// pays its launch once. Items follow the hardware's launch order (query tile fastest)
// in mirrored pairs (MirroredItems): a program's two consecutive steps take query tiles j
// and T - 1 - j of one unit, so causal steps cost the same for every program and the
// programs running at once stay on neighbouring units, sharing their heads' K / V in L2;
// where the builder reverses program id 0 (causal / window) the heavier tile of a pair
// comes first. (Query tiles slowest — every head's heaviest tile first — had the programs
// at once read as many heads' K / V: causal D = 128, N = 4096 at 0.63x the kernel without
// the knob on an H100; launch order without pairs let them drift apart: 0.85x.)
//
// It lives in codegen/gpu, not passes/: its output names gpu.grid_dim and the tgpu
// schedule (the work loop is never pipelined: tgpu.prefetch_distance = 0), which only the
// GPU lowering reads; the CPU ignores the knob. The distributor keeps items apart
// (settleWorkItem): no copies or products in flight and a block barrier at each item
// boundary, since the next item's copies reuse the shared memory the last one read.
// With TMA fills (the tma knob) each thread fences its generic accesses against the
// async proxy first; warp-specialised, the barrier is the consumers' and the producer
// runs ahead: it fills the next item's Q (its own ring of two) and first K / V under
// this item's last key tiles.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/PersistentGrid.h"
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/StageAttrs.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_PERSISTENTGRID
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
struct PersistentGridPass : tessera::gpu::impl::PersistentGridBase<PersistentGridPass> {
  void runOnOperation() override;
};
} // namespace

/// The program ids of item `t` in the hardware's launch order (dim 0 fastest).
static SmallVector<Value> programIdsOf(OpBuilder &b, Location loc, Value t, ValueRange sizes) {
  auto narrow = [&](Value v) { return arith::IndexCastUIOp::create(b, loc, t.getType(), v); };
  SmallVector<Value> ids(sizes.size());
  Value rest = t;
  for (unsigned d = 0; d < sizes.size(); ++d) {
    if (d + 1 == sizes.size()) {
      ids[d] = rest; // the slowest: what is left
      break;
    }
    Value size = narrow(sizes[d]);
    ids[d] = arith::RemUIOp::create(b, loc, rest, size);
    rest = arith::DivUIOp::create(b, loc, rest, size);
  }
  for (Value &id : ids)
    id = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), id);
  return ids;
}

/// A permutation of the items [0, items) for the work loop's values t = program id + k x
/// programs: each program's steps 2m and 2m + 1 take mirrored dim-0 indices j and
/// size0 - 1 - j of one unit u = m x programs + program id (units in launch order: j
/// fastest). Causal items cost 1 .. size0 key tiles, so a mirrored pair costs the same
/// everywhere and the programs stay in step: those running at once walk neighbouring
/// units and share their heads' K / V in L2. (With t itself as the item, a program's
/// steps cycled through the query tiles of one residue modulo the programs — at N = 4096
/// some programs had 25 % more work than others — and the programs drifted apart: L2 hit
/// rate 47 % against 85 % without persistent, 4.7x the DRAM reads, on an H100.) Steps past
/// the last whole pair of steps take the remaining units' halves in order; with an odd
/// size0 the middle indices come last. The loop-invariant counts are made once, before
/// the work loop.
class MirroredItems {
public:
  MirroredItems(OpBuilder &b, Location loc, Value size0, Value items, Value programs)
      : b(b), loc(loc), size0(size0), programs(programs) {
    pairs = div(size0, c(2)); // units a (batch, head)
    paired = mul(c(2), mul(div(items, size0), pairs));
    Value group = mul(c(2), programs); // two steps of every program
    inGroups = mul(div(paired, group), group);
    unitsInGroups = div(inGroups, c(2));
    safePairs = arith::MaxUIOp::create(b, loc, pairs, c(1));
  }

  /// The item of loop value `t` (i32).
  Value at(Value t) {
    // Whole pairs of steps: step k = t / programs, unit (k / 2) x programs + program.
    Value step = div(t, programs);
    Value grouped = add(mul(div(step, c(2)), programs), rem(t, programs));
    // The tail: the remaining units' two halves in order.
    Value tail = sub(t, inGroups);
    Value inGroup = less(t, inGroups);
    Value unit = select(inGroup, grouped, add(unitsInGroups, div(tail, c(2))));
    Value second = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                         select(inGroup, rem(step, c(2)), rem(tail, c(2))), c(1));
    Value j = rem(unit, safePairs);
    Value index0 = select(second, sub(sub(size0, c(1)), j), j);
    Value pairedItem = add(mul(div(unit, safePairs), size0), index0);
    // An odd size0's middle index, one a (batch, head), after every unit.
    Value middleItem = add(mul(sub(t, paired), size0), pairs);
    return select(less(t, paired), pairedItem, middleItem);
  }

private:
  Value c(int64_t v) { return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivUIOp::create(b, loc, x, y); }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, loc, x, y); }
  Value less(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value select(Value cond, Value x, Value y) {
    return arith::SelectOp::create(b, loc, cond, x, y);
  }

  OpBuilder &b;
  Location loc;
  Value size0, programs, pairs, paired, inGroups, unitsInGroups, safePairs;
};

static void makePersistent(tile::GridOp grid) {
  MLIRContext *ctx = grid.getContext();
  Location loc = grid.getLoc();
  OpBuilder b(grid);
  ValueRange sizes = grid.getSizes();
  Value items = sizes.front();
  for (Value s : sizes.drop_front())
    items = arith::MulIOp::create(b, loc, items, s);
  auto persistent = tile::GridOp::create(b, loc, ValueRange{items}, grid.getConfig());
  for (NamedAttribute a : grid->getDiscardableAttrs())
    persistent->setAttr(a.getName(), a.getValue());
  persistent->setAttr(kPersistentAttr, UnitAttr::get(ctx));
  b.setInsertionPointToStart(&persistent.getBody().emplaceBlock());
  // Items are counted in 32 bits (a grid has fewer than 2^31 programs): the item
  // number and its bound are held through every item.
  auto narrow = [&](Value v) { return arith::IndexCastUIOp::create(b, loc, b.getI32Type(), v); };
  Value first = tile::ProgramIdOp::create(b, loc, b.getIndexType(), b.getI64IntegerAttr(0));
  Value programs = ::mlir::gpu::GridDimOp::create(b, loc, ::mlir::gpu::Dimension::x);
  Value from = narrow(first), to = narrow(items), step = narrow(programs);
  MirroredItems order(b, loc, narrow(sizes.front()), to, step);
  auto loop = scf::ForOp::create(b, loc, from, to, step);
  // Items are not software-pipelined into one another: the work loop has one stage.
  loop->setAttr(kPrefetchDistanceAttr, b.getI64IntegerAttr(0));
  loop->setAttr(kWorkItemsAttr, UnitAttr::get(ctx));
  b.setInsertionPointToStart(loop.getBody());
  SmallVector<Value> ids = programIdsOf(b, loc, order.at(loop.getInductionVar()), sizes);
  Block *body = loop.getBody();
  body->getOperations().splice(body->getTerminator()->getIterator(),
                               grid.getBody().front().getOperations());
  SmallVector<tile::ProgramIdOp> old;
  for (auto pid : body->getOps<tile::ProgramIdOp>())
    old.push_back(pid);
  for (tile::ProgramIdOp pid : old) {
    pid.getResult().replaceAllUsesWith(ids[pid.getDim()]);
    pid.erase();
  }
  grid.erase();
}

void PersistentGridPass::runOnOperation() {
  SmallVector<tile::GridOp> grids;
  getOperation().walk([&](tile::GridOp grid) {
    bool hasProducts = grid.getBody().walk([](tile::DotOp) {
                         return WalkResult::interrupt();
                       }).wasInterrupted();
    if (hasProducts && !grid->hasAttr(kPersistentAttr))
      grids.push_back(grid);
  });
  for (tile::GridOp grid : grids)
    makePersistent(grid);
}

Attribute tessera::gpu::persistentGridExtent(Attribute items, int64_t blocksPerSM) {
  // [-6, n, f1 (n entries)..., f2...]: min(f1, f2); [-5, k]: k x the SM count.
  ArrayRef<int64_t> f = cast<DenseI64ArrayAttr>(items).asArrayRef();
  SmallVector<int64_t> formula{-6, int64_t(f.size())};
  formula.append(f.begin(), f.end());
  formula.append({-5, blocksPerSM});
  return DenseI64ArrayAttr::get(items.getContext(), formula);
}

int64_t tessera::gpu::persistentBlocksPerSM(int64_t userBlocks, int64_t planBlocks,
                                            int64_t smemBytes, int64_t numWarps,
                                            int64_t accumulatorSlots, bool wgmma) {
  int64_t sharedBound = kSharedPerSM / (smemBytes + 1024);
  int64_t blocks = userBlocks;
  if (!blocks) {
    // Registers beside the accumulators in these kernels with the work loop (ptxas 13,
    // softmax forwards at D = 64 / 128): 82-150 with wgmma, ~140 with mma.sync; the
    // stage plan's count was made for the kernel without the loop.
    int64_t perThread = llvm::alignTo(accumulatorSlots + (wgmma ? 104 : 140), 8);
    blocks = std::max<int64_t>(1, 65536 / (32 * numWarps * std::min<int64_t>(perThread, 256)));
    if (planBlocks > 0)
      blocks = std::min(blocks, planBlocks);
  }
  return std::clamp<int64_t>(std::min(blocks, sharedBound), 1, 64);
}

void Distributor::settleWorkItem(bool itemEnd) {
  settleProducts();
  flushBarrier();
  if (!itemEnd && !copiesPending())
    return;
  // After an item, every cp.async group of a warpgroup kernel (a prefetch past its last
  // key tile included) whether the bookkeeping still counts it or not: the next item
  // copies into the same stages.
  if (copiesPending() || (itemEnd && wgmma))
    waitForCopies(0);
  // The next item's TMA fills (async proxy) must not overtake this item's generic
  // accesses to shared memory: each thread orders its own before the barrier. Fills this
  // item issued and nobody read (a prefetch past its last key tile) are waited for by
  // every thread first: the next item's fill of the same barrier may land before a slower
  // thread's wait, whose parity would then name the phase after it (TensorMemory.cpp).
  if (itemEnd && tensorCopies) {
    drainAllTensorCopies();
    fenceAsyncProxy();
  }
  barrierUnlessIrs();
}

LogicalResult Distributor::lowerWorkItems(scf::ForOp op) {
  auto mode = op->getAttrOfType<StringAttr>(kPipelineAttr);
  if (!mode || mode.getValue() != "none" || op.getNumRegionIterArgs() != 0)
    return op.emitError("a work loop (")
           << kWorkItemsAttr << ") carries nothing and is not pipelined: "
           << kPipelineAttr << " = \"none\" (tessera-persistent-grid sets "
           << kPrefetchDistanceAttr << " = 0 before tessera-tgpu-assign-stages)";
  settleWorkItem(/*itemEnd=*/false);
  auto loop = scf::ForOp::create(b, scalars.lookup(op.getLowerBound()),
                                 scalars.lookup(op.getUpperBound()),
                                 scalars.lookup(op.getStep()));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  scalars.map(op.getInductionVar(), loop.getInductionVar());
  // Lane arithmetic made in this item stays in it (restored for what follows the loop).
  llvm::SaveAndRestore<Value> savedThread(threadId), savedLane(lane), savedWarp(warp),
      savedGroup(warpgroup), savedG(g), savedT2(t2), savedLeader(isQuadLeader);
  llvm::SaveAndRestore<Operation *> savedAnchor(laneAnchor);
  llvm::SaveAndRestore<DenseMap<int64_t, Value>> savedRows(warpRows,
                                                            DenseMap<int64_t, Value>());
  llvm::SaveAndRestore<std::optional<LdmatrixLane>> savedLdmatrix(ldmatrixLanes,
                                                                  std::nullopt);
  deriveWarpIndices(opaqueIndex(threadId));
  deriveLaneIndices();
  if (failed(lowerBlock(*op.getBody())))
    return failure();
  llvm::SaveAndRestore<WaitPoint> end(waitPoint, blockEnd(*op.getBody()));
  settleWorkItem(/*itemEnd=*/true);
  return success();
}
