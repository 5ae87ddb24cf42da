//===- TensorMemory.cpp - TMA copies into the swizzled arena ----------------===//
//
// Hopper kernels compiled with `tma`: every swizzled operand tile (Q, K, V) is copied by
// `cp.async.bulk.tensor` from a CUtensorMap kernel parameter (encoded per call by the
// runtime, docs/LAUNCH_RECORD.md) into the same 128-byte-swizzled layout the cp.async
// path writes: a box of [rows, 64] 16-bit elements is one 64-column swizzle block. One
// elected thread issues a tile's boxes and arms an mbarrier per (buffer, stage) with the
// bytes to expect; readers wait on that barrier's phase. Rows past the tensor arrive as
// zeros (the descriptor's out-of-bounds fill), so no copy carries a predicate.
//
// Phases: each thread keeps one bit per barrier, flipped whenever a fill of that barrier
// is issued (every thread runs the issuing code; only the elected one waits for the
// previous fill, arms and copies). A reader waits for parity `bit ^ 1`, the phase the
// newest fill completes; waiting again, or for a barrier never filled, returns at once, so
// waits need no bookkeeping of their own. A parity names one of two phases, so no fill may
// complete while a thread still waits for the one before it: every fill is waited for by
// every thread before a block barrier that precedes the next fill of its barrier (a
// reader's wait in the loop; fills nobody read — prefetches past a walk's last tile — are
// drained at an item's or the kernel's end). Only the issuer waits before arming: were
// every thread to, the elected one could arm and the copy land before a slower warp's
// wait, which would then wait for the phase after (a hang a persistent grid met). The
// bits live in a one-word alloca that LLVM promotes to a register.
//
// The barriers and copies are tgpu ops on the addresses (mbarrierAt, the boxes cast to
// !tgpu.smem, the descriptor parameters to !tgpu.tma_desc), which
// tessera-convert-tgpu-async-to-nvvm makes PTX.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/TensorMemory.h"
#include "codegen/gpu/WarpSpecialize.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

/// Bits of the per-thread phase word: barriers a kernel may have.
static constexpr int kMaxBarriers = 32;
/// Columns of one box: a 128-byte swizzle block of 16-bit elements.
static constexpr int64_t kBoxCols = kSwizzleCols;

std::string tessera::gpu::tensorCopyRefusal(tile::LoadOp op, func::FuncOp func,
                                            int64_t numThreads) {
  auto tileType = cast<RankedTensorType>(op.getType());
  auto source = dyn_cast<BlockArgument>(op.getSource());
  auto buffer = cast<MemRefType>(op.getSource().getType());
  if (!source || source.getOwner() != &func.getBody().front())
    return "its source is not an argument of the kernel";
  if (buffer.getRank() < 2 || buffer.getRank() > 5)
    return "its source has rank outside TMA's 2 to 5";
  if (!tileType.getElementType().isBF16() && !tileType.getElementType().isF16())
    return "its elements are not bf16 or f16";
  // Boxes start on 1024-byte swizzle atoms: whole 8-row groups.
  if (tileType.getDimSize(1) % kBoxCols || tileType.getDimSize(0) > 256 ||
      tileType.getDimSize(0) % 8)
    return "its tile is not whole 64-column blocks of 8 to 256 rows in eights";
  if (vectorsPerThreadOf(TileCopy::of(op), numThreads) == 0)
    return "its tile is not whole 16-byte chunks of the source's rows";
  // Per-token block lists (a while loop over the union of a tile's lists) hung with TMA
  // copies on an H100 at N >= 4096, D = 64 (not at N <= 2049 or D = 128; cause not found
  // yet): they keep cp.async until that is understood.
  if (op->getParentOfType<scf::WhileOp>())
    return "it is loaded in a while loop (a per-token list walk), where TMA copies are "
           "not yet shown correct on a GPU";
  return "";
}

SmallVector<TensorMapSpec> tessera::gpu::tensorMapsOf(tile::GridOp grid) {
  SmallVector<TensorMapSpec> maps;
  grid.getBody().walk([&](tile::LoadOp op) {
    if (!Distributor::isStaged(op) || !Distributor::swizzles(op))
      return;
    auto tileType = cast<RankedTensorType>(op.getType());
    unsigned argument = cast<BlockArgument>(op.getSource()).getArgNumber();
    int64_t rows = tileType.getDimSize(0);
    if (llvm::any_of(maps, [&](const TensorMapSpec &m) {
          return m.argument == argument && m.rows == rows;
        }))
      return;
    int64_t rank = cast<MemRefType>(op.getSource().getType()).getRank();
    SmallVector<int64_t> box(rank, 1);
    box[rank - 2] = rows;
    box[rank - 1] = kBoxCols;
    maps.push_back({argument, rows, box, tileType.getElementType()});
  });
  return maps;
}

LogicalResult Distributor::useTensorCopies(tile::GridOp grid) {
  bool otherStaging = false;
  grid.getBody().walk([&](tile::LoadOp op) {
    if (isStaged(op) && !swizzles(op))
      otherStaging = true;
  });
  SmallVector<TensorMapSpec> maps = tensorMapsOf(grid);
  if (maps.empty())
    return success();
  // The descriptors are the kernel's last parameters (tessera-tgpu-outline-kernels).
  auto params = kernel->getAttrOfType<IntegerAttr>(kTensorMapParamsAttr);
  if (!params || params.getInt() != int64_t(maps.size()) ||
      kernel.getNumArguments() < maps.size())
    return kernel.emitError("a tgpu.tensor_copies kernel takes its ")
           << maps.size() << " tensor maps as its last parameters ("
           << kTensorMapParamsAttr << "; tessera-tgpu-outline-kernels)";
  unsigned first = kernel.getNumArguments() - maps.size();
  for (auto [i, m] : llvm::enumerate(maps))
    tensorMapParam[{m.argument, m.rows}] = kernel.getArgument(first + i);
  tensorCopies = true;
  onlyTensorStaging = !otherStaging;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(arenaAnchor);
  // The barriers go after the last buffer, once its size is known (finishTensorCopies).
  barrierOffset = arith::ConstantIntOp::create(b, b.getI64Type(), 0);
  barrierArea = toI32(b, arith::AddIOp::create(b, arenaAddress, barrierOffset));
  phaseWord = memref::AllocaOp::create(b, MemRefType::get({1}, b.getI32Type()));
  memref::StoreOp::create(b, arith::ConstantIntOp::create(b, b.getI32Type(), 0), phaseWord,
                          ValueRange{arith::ConstantIndexOp::create(b, 0)});
  barrierInitAnchor = phaseWord.getDefiningOp();
  return success();
}

int Distributor::barriersOf(int buffer) {
  auto it = barrierBase.find(buffer);
  if (it != barrierBase.end())
    return it->second;
  barrierBase[buffer] = numBarriers;
  numBarriers += swizzledTiles[buffer].stages;
  barrierArrivals.append(swizzledTiles[buffer].stages, 1); // the issuer's arrive.expect_tx
  return barrierBase[buffer];
}

Value Distributor::barrierIndex(int buffer, Value stage) {
  return arith::AddIOp::create(b, arith::ConstantIndexOp::create(b, barriersOf(buffer)), stage);
}

Value Distributor::barrierAddress(Value index) {
  // 32-bit shared-window arithmetic: the addresses stay one register each.
  Value offset = arith::MulIOp::create(b, toI32(b, index),
                                       arith::ConstantIntOp::create(b, b.getI32Type(), 8));
  return arith::AddIOp::create(b, barrierArea, offset);
}

/// Parity of the phase the newest fill of barrier `index` completes.
Value Distributor::awaitedParity(Value index) {
  Value zero = arith::ConstantIndexOp::create(b, 0);
  return parityOfNewestFill(memref::LoadOp::create(b, phaseWord, ValueRange{zero}), index);
}

/// The parity a wait for barrier `index`'s newest fill names, given the phase bits `word`.
Value Distributor::parityOfNewestFill(Value word, Value index) {
  Value bit = arith::ShRUIOp::create(b, word, toI32(b, index));
  Value one = arith::ConstantIntOp::create(b, b.getI32Type(), 1);
  return arith::XOrIOp::create(b, arith::AndIOp::create(b, bit, one), one);
}

void Distributor::waitBarrier(Value index) {
  Value address = barrierAddress(index);
  waitParity(address, awaitedParity(index));
}

void Distributor::fenceAsyncProxy() { tgpu::FenceAsyncSharedOp::create(b); }

Value Distributor::mbarrierAt(Value address) {
  return UnrealizedConversionCastOp::create(b, tgpu::MbarrierType::get(b.getContext(), 1), address)
      .getResult(0);
}

void Distributor::waitParity(Value address, Value parity) {
  // One after the other: argument order would leave the IR to the C++ compiler.
  Value phase = arith::TruncIOp::create(b, b.getI1Type(), parity);
  Value barrier = mbarrierAt(address);
  tgpu::MbarrierWaitOp::create(b, barrier, Value(), phase);
}

void Distributor::issueTensorCopies(tile::LoadOp op, int buffer, Value stage,
                                    ValueRange origin) {
  Value index = barrierIndex(buffer, stage);
  Value barrier = barrierAddress(index);
  // Only the issuer waits for the stage's previous fill (a barrier takes one fill a
  // phase); the other threads saw it land before the block barrier this issue follows
  // (file header). Every thread flips the barrier's bit: the phase its readers wait for.
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value word = memref::LoadOp::create(b, phaseWord, ValueRange{zero});
  Value bit = arith::ShLIOp::create(b, arith::ConstantIntOp::create(b, b.getI32Type(), 1),
                                    toI32(b, index));
  memref::StoreOp::create(b, arith::XOrIOp::create(b, word, bit), phaseWord, ValueRange{zero});
  Value elected = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, threadId,
                                        arith::ConstantIndexOp::create(b, 0));
  scf::IfOp::create(b, elected, [&](OpBuilder &nb, Location) {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
    // The previous fill: the newest one of the bits before this flip.
    waitParity(barrier, parityOfNewestFill(word, index));
    // Generic-proxy accesses before this point are ordered before the copy's writes.
    fenceAsyncProxy();
    armTensorCopy(op, buffer, tensorCopyTarget(buffer, stage, origin), barrier);
    scf::YieldOp::create(b);
  });
}

Distributor::TensorCopyTarget Distributor::tensorCopyTarget(int buffer, Value stage,
                                                            ValueRange origin) {
  const SwizzledTile &t = swizzledTiles[buffer];
  // The stage's bytes in shared memory: stage 0's address plus the stage's elements.
  Value stageBytes = arith::MulIOp::create(
      b, arith::IndexCastUIOp::create(b, b.getI64Type(), stage),
      arith::ConstantIntOp::create(b, b.getI64Type(), t.rows * t.cols * 2));
  TensorCopyTarget target;
  target.dst = arith::AddIOp::create(b, t.address, stageBytes);
  for (int64_t d = int64_t(origin.size()) - 1; d >= 0; --d)
    target.coords.push_back(toI32(b, origin[d])); // innermost first, as the descriptor
  return target;
}

void Distributor::armTensorCopy(tile::LoadOp op, int buffer, const TensorCopyTarget &target,
                                Value barrier) {
  auto tileType = cast<RankedTensorType>(op.getType());
  const SwizzledTile &t = swizzledTiles[buffer];
  Value descriptor = tensorMapParam.lookup(
      {cast<BlockArgument>(op.getSource()).getArgNumber(), tileType.getDimSize(0)});
  ArrayRef<Value> coords = target.coords;
  int64_t boxes = tileType.getDimSize(1) / kBoxCols;
  int64_t boxBytes = tileType.getDimSize(0) * kBoxCols * 2;
  tgpu::MbarrierExpectTxOp::create(b, mbarrierAt(barrier), Value(), boxes * boxBytes);
  // One op a box, each a 64-column swizzle block of the tile's buffer.
  MLIRContext *ctx = b.getContext();
  auto swizzled = tgpu::SharedLayoutAttr::get(ctx, tgpu::SwizzleKind::swizzle_128b, 0);
  auto boxType = tgpu::SharedBufferType::get(ctx, {tileType.getDimSize(0), kBoxCols},
                                             tileType.getElementType(), swizzled, 1, true);
  auto descriptorType = tgpu::TmaDescriptorType::get(ctx, {tileType.getDimSize(0), kBoxCols},
                                                     tileType.getElementType(), swizzled);
  Value descriptorOp =
      UnrealizedConversionCastOp::create(b, descriptorType, descriptor).getResult(0);
  for (int64_t box = 0; box < boxes; ++box) {
    // Box k fills swizzle block k: [rows][64] elements after the k blocks before it.
    Value boxDst = arith::AddIOp::create(
        b, target.dst,
        arith::ConstantIntOp::create(b, b.getI64Type(), box * t.rows * kBoxCols * 2));
    Value boxBuffer = UnrealizedConversionCastOp::create(b, boxType, toI32(b, boxDst)).getResult(0);
    // The op's coordinates run as the tile's indices, innermost last.
    SmallVector<Value> coordinates{arith::AddIOp::create(
        b, coords[0], arith::ConstantIntOp::create(b, b.getI32Type(), box * kBoxCols))};
    llvm::append_range(coordinates, coords.drop_front());
    std::reverse(coordinates.begin(), coordinates.end());
    tgpu::TmaLoadOp::create(b, descriptorOp, coordinates, boxBuffer, Value(),
                            mbarrierAt(barrier), Value());
  }
}

void Distributor::awaitTensorCopies(const SharedTile &t) {
  if (warpSpecialized) {
    // A ring tile: its reader waits for the fill it took (acquireRingTile).
    if (t.parity)
      waitParity(barrierAddress(barrierIndex(t.swizzled, t.stage)), t.parity);
    return;
  }
  if (!tensorCopies || t.swizzled < 0 || !barrierBase.count(t.swizzled))
    return;
  waitBarrier(barrierIndex(t.swizzled, t.stage));
}

bool Distributor::tensorCopiesVisible(ArrayRef<int> buffers) {
  return tensorCopies && onlyTensorStaging && !buffers.empty() &&
         llvm::all_of(buffers, [&](int buffer) { return barrierBase.count(buffer) > 0; });
}

void Distributor::drainTensorCopies(ArrayRef<int> buffers) {
  // Warp-specialised: every fill the producer issues, a consumer waits for.
  if (warpSpecialized)
    return;
  for (int buffer : buffers) {
    if (!barrierBase.count(buffer))
      continue;
    for (int64_t s = 0; s < swizzledTiles[buffer].stages; ++s)
      waitBarrier(barrierIndex(buffer, arith::ConstantIndexOp::create(b, s)));
  }
}

void Distributor::drainAllTensorCopies() {
  SmallVector<int> all;
  for (auto &[buffer, base] : barrierBase)
    all.push_back(buffer);
  llvm::sort(all);
  drainTensorCopies(all);
}

LogicalResult Distributor::finishTensorCopies() {
  if (!tensorCopies)
    return success();
  if (numBarriers > kMaxBarriers)
    return kernel.emitError("tma: the kernel needs ")
           << numBarriers << " mbarriers, more than the " << kMaxBarriers
           << " its phase word tracks; use fewer stages";
  // No copy may still be landing when the block exits (a prefetch past the last tile).
  drainAllTensorCopies();
  int64_t offset = sharedOffset(sharedGrid, "mbarriers", 8 * numBarriers, 8);
  barrierOffset.setValueAttr(b.getI64IntegerAttr(offset));
  {
    // One thread initialises every barrier (one arrival a phase: the elected issuer's
    // arrive.expect_tx; a ring's empty barriers: one per consumer warp), before any
    // thread can use one.
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointAfter(barrierInitAnchor);
    Value elected = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, threadId,
                                          arith::ConstantIndexOp::create(b, 0));
    scf::IfOp::create(b, elected, [&](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      for (int i = 0; i < numBarriers; ++i)
        tgpu::MbarrierInitOp::create(
            b, mbarrierAt(barrierAddress(arith::ConstantIndexOp::create(b, i))),
            barrierArrivals[i]);
      tgpu::FenceMbarrierInitOp::create(b);
      scf::YieldOp::create(b);
    });
    tgpu::BarrierOp::create(b);
  }
  return success();
}
