//===- Distributor.cpp - the op dispatcher ----------------------------------===//
//
// lowerOp sends each op of a grid body to its lowering; lowerBlock walks a block and
// keeps the shared-memory bookkeeping (barriers owed, copies and products in flight)
// consistent at op boundaries.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/PersistentGrid.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

LogicalResult Distributor::lowerOp(Operation *op) {
  if (auto pid = dyn_cast<tile::ProgramIdOp>(op)) {
    static const ::mlir::gpu::Dimension dims[] = {
        ::mlir::gpu::Dimension::x, ::mlir::gpu::Dimension::y, ::mlir::gpu::Dimension::z};
    scalars.map(pid.getResult(), ::mlir::gpu::BlockIdOp::create(b, dims[pid.getDim()]));
    return success();
  }
  if (auto load = dyn_cast<tile::LoadOp>(op))
    return warpSpecialized && isStaged(load) && swizzles(load) ? acquireRingTile(load)
                                                               : lowerLoad(load);
  if (auto split = dyn_cast<tgpu::WarpSpecializeOp>(op))
    return lowerWarpSpecialize(split);
  if (auto alloc = dyn_cast<tgpu::LocalAllocOp>(op))
    return lowerLocalAlloc(alloc);
  if (auto read = dyn_cast<tgpu::LocalLoadOp>(op))
    return lowerLocalLoad(read);
  if (auto copy = dyn_cast<tgpu::AsyncCopyOp>(op))
    return lowerAsyncCopy(copy);
  // Waits, fences and barriers the IR writes (a software-pipelined loop's iteration
  // start, tessera-tgpu-insert-waits): each copy is a group of its own here. The IR's
  // wait is the wait alone; its proxy fence, where wgmma reads the copies, is the IR's
  // own op after it.
  if (auto wait = dyn_cast<tgpu::AsyncWaitOp>(op)) {
    if (!wait.getGroups().empty())
      return wait.emitError("the GPU lowering counts each copy as a group: give "
                            "`pending` alone");
    tgpu::AsyncWaitOp::create(b, tgpu::AsyncTokenType::get(b.getContext()), ValueRange(),
                              wait.getPending());
    landCopies(int(wait.getPending()));
    return success();
  }
  if (isa<tgpu::FenceAsyncSharedOp>(op)) {
    fenceAsyncProxy();
    return success();
  }
  if (isa<tgpu::BarrierOp>(op)) {
    irBarriers.insert(tgpu::BarrierOp::create(b));
    barrierPending = false;
    return success();
  }
  if (auto store = dyn_cast<tile::StoreOp>(op))
    return lowerStore(store);
  if (auto gather = dyn_cast<tile::GatherOp>(op))
    return lowerGather(gather);
  if (auto scatter = dyn_cast<tile::ScatterAddOp>(op))
    return lowerScatterAdd(scatter);
  if (auto dot = dyn_cast<tile::DotOp>(op))
    return wgmma ? lowerWarpgroupDot(dot) : lowerDot(dot);
  if (auto red = dyn_cast<tile::ReduceOp>(op))
    return lowerReduce(red);
  if (auto bc = dyn_cast<tile::BroadcastOp>(op))
    return lowerBroadcast(bc);
  if (auto range = dyn_cast<tile::RangeOp>(op))
    return lowerRange(range);
  if (auto trans = dyn_cast<tile::TransOp>(op)) {
    if (auto it = shared.find(trans.getInput()); it != shared.end()) {
      shared[trans.getResult()] = transposedView(it->second);
      return success();
    }
    Layout out = layoutOf(trans.getResult());
    if (relabelsRightOperand(trans)) {
      tiles[trans.getResult()] = tiles.lookup(trans.getInput());
      return success();
    }
    // Read whole by a product: tessera-tgpu-stage-operands stages it (local_alloc).
    if (out.kind == LayoutKind::B || out.kind == LayoutKind::BT)
      return trans.emitError("a transpose into a right operand's layout of a tile in "
                             "registers that no shared buffer holds");
    if (isStoredTranspose(trans) && tiles.count(trans.getInput()))
      return success(); // lowerStore writes the input transposed
    FailureOr<Slots> moved = convertThroughShared(trans.getInput(), out, /*transpose=*/true);
    if (failed(moved))
      return failure();
    tiles[trans.getResult()] = std::move(*moved);
    return success();
  }
  if (auto forOp = dyn_cast<scf::ForOp>(op))
    return forOp->hasAttr(kWorkItemsAttr) ? lowerWorkItems(forOp) : lowerFor(forOp);
  if (auto ifOp = dyn_cast<scf::IfOp>(op))
    return lowerIf(ifOp);
  if (auto whileOp = dyn_cast<scf::WhileOp>(op))
    return lowerWhile(whileOp);
  if (auto extract = dyn_cast<tensor::ExtractOp>(op);
      extract && extract.getTensor().getType().getRank() == 0) {
    scalars.map(extract.getResult(), scalars.lookup(extract.getTensor()));
    return success();
  }
  bool producesTile = llvm::any_of(op->getResultTypes(),
                                   [](Type t) { return isa<RankedTensorType>(t); });
  if (producesTile) {
    if (isSplat(op->getResult(0)))
      return success(); // materialized at each use
    StringRef ns = op->getDialect() ? op->getDialect()->getNamespace() : "";
    if (ns == "arith" || ns == "math")
      return lowerElementwise(op);
    return op->emitError("has no GPU lowering");
  }
  if (llvm::any_of(op->getOperandTypes(), [](Type t) { return isa<RankedTensorType>(t); }))
    return op->emitError("reads a tile in a way the GPU target cannot lower yet");
  // Uniform scalar code (sizes, loop bounds, scalar loads) is cloned as is.
  b.clone(*op, scalars);
  return success();
}

/// Whether lowering `op` may read or write shared memory. Scalar ops, splat constants
/// and transposes of staged tiles (a flag on the tile) do not, so they leave pending
/// copies in flight.
bool Distributor::touchesSharedMemory(Operation *op) {
  if (auto trans = dyn_cast<tile::TransOp>(op))
    return !shared.count(trans.getInput());
  if (isa<arith::ConstantOp>(op))
    return false;
  // A read of a copied buffer hands its readers the buffer (they access it).
  if (auto read = dyn_cast<tgpu::LocalLoadOp>(op))
    return !read.getBuffer().getType().getIsMutable();
  // Both branches of an if start from the copies in flight (lowerIf).
  if (auto ifOp = dyn_cast<scf::IfOp>(op); ifOp && wgmma && !ifOp.getElseRegion().empty())
    return false;
  auto isTile = [](Type t) { return isa<RankedTensorType>(t); };
  return op->getNumRegions() || llvm::any_of(op->getOperandTypes(), isTile) ||
         llvm::any_of(op->getResultTypes(), isTile);
}

/// Whether `op` may read or write shared memory (or wait for what does): anything with
/// effects but a scalar load from a global buffer (a list entry, a table).
static bool mayTouchShared(Operation *op) {
  if (isPure(op))
    return false;
  auto load = dyn_cast<memref::LoadOp>(op);
  return !load || ::mlir::gpu::GPUDialect::hasWorkgroupMemoryAddressSpace(load.getMemRefType());
}

Operation *Distributor::standingBarrier() {
  // Nothing has touched shared memory since the last barrier (only index arithmetic and
  // list reads: a pipelined loop's or iteration's before its copies): that barrier orders
  // what one here would.
  Block *block = b.getInsertionBlock();
  for (auto it = b.getInsertionPoint(); it != block->begin();) {
    Operation &op = *--it;
    if (isa<tgpu::BarrierOp>(op))
      return &op;
    if (mayTouchShared(&op))
      break;
  }
  return nullptr;
}

void Distributor::blockBarrier() {
  if (!standingBarrier())
    tgpu::BarrierOp::create(b);
}

void Distributor::barrierUnlessIrs() {
  if (!irBarriers.contains(standingBarrier()))
    tgpu::BarrierOp::create(b);
}

/// Whether only waits and barriers follow `op` in its block (up to its terminator).
static bool endsRegion(Operation &op) {
  for (Operation *next = op.getNextNode(); next; next = next->getNextNode())
    if (!isa<tgpu::AsyncWaitOp, tgpu::FenceAsyncSharedOp, tgpu::BarrierOp>(next) &&
        !next->hasTrait<OpTrait::IsTerminator>())
      return false;
  return true;
}

LogicalResult Distributor::lowerBlock(Block &block) {
  if (warpSpecialized)
    ringTaken.emplace_back(); // given back at the block's end
  for (Operation &op : block.without_terminator()) {
    if (preStaged.contains(&op))
      continue;
    llvm::SaveAndRestore<Operation *> current(lowering, &op); // shared buffers' owner
    llvm::SaveAndRestore<WaitPoint> here(waitPoint, {&block, &op, productWaits});
    auto load = dyn_cast<tile::LoadOp>(op);
    bool staged = load && shared.count(load.getResult()) == 0 && isStaged(load);
    // Loops decide themselves (a prefetching wgmma loop issues its copies first).
    if (isa<scf::ForOp, tgpu::AsyncCopyOp>(op))
      staged = true;
    // A region's end settles its products before anything else: the IR's waits there
    // (tessera-tgpu-insert-waits) come after them, as the lowering's own did.
    if (isa<tgpu::AsyncWaitOp>(op) && endsRegion(op))
      settleProducts();
    if (wgmma && isa<tile::DotOp>(op))
      flushForProduct(cast<tile::DotOp>(op));
    else if (!staged && touchesSharedMemory(&op))
      flushBarrier();
    if (warpSpecialized)
      beforeConsumerOp(op);
    if (failed(lowerOp(&op)))
      return failure();
    if (warpSpecialized)
      afterConsumerOp(op);
    if (afterOp.first == &op) {
      auto run = std::move(afterOp.second);
      afterOp = {};
      run();
    }
  }
  llvm::SaveAndRestore<WaitPoint> end(waitPoint, blockEnd(block));
  settleProducts();
  flushBarrier();
  if (warpSpecialized)
    giveBackRingTiles(/*lowered=*/nullptr);
  return success();
}
