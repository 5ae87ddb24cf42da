//===- AsyncCopies.cpp - the swizzled arena, cp.async and wgmma waits -------===//
//
// Hopper kernels: operands in 128-byte swizzled buffers of the dynamic arena, filled by
// cp.async in commit groups that each reader waits for by name, warpgroup products
// waited for before their registers are read, and outputs stored through a swizzled
// buffer.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/AsyncWaits.h"
#include "codegen/gpu/Distributor.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

void Distributor::beginSharedArena() {
  MLIRContext *ctx = b.getContext();
  auto workgroup = ::mlir::gpu::AddressSpaceAttr::get(
      ctx, ::mlir::gpu::GPUDialect::getWorkgroupAddressSpace());
  arena = ::mlir::gpu::DynamicSharedMemoryOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(), MemRefLayoutAttrInterface{},
                         workgroup));
  // Swizzle atoms must start on 1024-byte boundaries of the shared window: shift the
  // arena's start up to the next one (the launch reserves the slack).
  Value raw = memref::ExtractAlignedPointerAsIndexOp::create(b, arena);
  Value atom = arith::ConstantIndexOp::create(b, kSwizzleAtomBytes);
  arenaShift = arith::RemUIOp::create(
      b, arith::SubIOp::create(b, atom, arith::RemUIOp::create(b, raw, atom)), atom);
  Value aligned = arith::AddIOp::create(b, raw, arenaShift);
  arenaAddress = arith::IndexCastUIOp::create(b, b.getI64Type(), aligned);
  arenaAnchor = arenaAddress.getDefiningOp();
}

int Distributor::allocateSwizzled(int64_t rows, int64_t cols, int64_t stages, Type elem,
                                  StringRef kind, Operation *owner) {
  // Whole 64-column swizzle blocks: a partial block's chunks land anywhere in its rows.
  cols = llvm::alignTo(cols, kSwizzleCols);
  int64_t elements = rows * cols * stages;
  int64_t offset = sharedOffset(owner, kind, llvm::alignTo(elements * 2, kSwizzleAtomBytes),
                                kSwizzleAtomBytes);
  // The plan gave it the bytes of an earlier buffer of its shape (an output stored
  // through a tile nothing reads any more): the same view.
  for (auto [index, t] : llvm::enumerate(swizzledTiles))
    if (t.offset == offset && t.rows == rows && t.cols == cols && t.stages == stages &&
        getElementTypeOrSelf(t.view.getType()) == elem) {
      noteSharedHandle(t.view);
      noteSharedHandle(t.address);
      return index;
    }
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(arenaAnchor);
  auto workgroup = ::mlir::gpu::AddressSpaceAttr::get(
      b.getContext(), ::mlir::gpu::GPUDialect::getWorkgroupAddressSpace());
  Value shift = arith::AddIOp::create(b, arenaShift, arith::ConstantIndexOp::create(b, offset));
  Value view = memref::ViewOp::create(
      b, MemRefType::get({elements}, elem, MemRefLayoutAttrInterface{}, workgroup), arena,
      shift, ValueRange{});
  Value address = arith::AddIOp::create(
      b, arenaAddress, arith::ConstantIntOp::create(b, b.getI64Type(), offset));
  noteSharedHandle(view);
  noteSharedHandle(address);
  swizzledTiles.push_back({view, address, rows, cols, stages, offset});
  return swizzledTiles.size() - 1;
}

int64_t Distributor::bufferStages(const TileCopy &copy) {
  if (copy.buffer)
    return cast<tgpu::SharedBufferType>(copy.target).getStages();
  return plannedBufferStages(cast<tile::LoadOp>(copy.op));
}

int Distributor::swizzledBuffer(const TileCopy &copy) {
  // A copy's buffer is its tgpu.local_alloc (the owner of its offset); loads of one
  // source, tile type and column share one.
  BufferKey key = copy.buffer ? BufferKey{copy.buffer, Type(), -1}
                              : bufferKey(cast<tile::LoadOp>(copy.op),
                                          scalars.lookup(copy.source));
  auto it = swizzledBuffers.find(key);
  if (it != swizzledBuffers.end())
    return it->second;
  Operation *owner = copy.buffer ? copy.buffer.getDefiningOp() : copy.op;
  int index = allocateSwizzled(copy.shape[0], copy.shape[1], bufferStages(copy), copy.elem,
                               "tile", owner);
  swizzledBuffers[key] = index;
  return index;
}

Value Distributor::stageOffset(const SwizzledTile &t, Value stage) {
  return arith::MulIOp::create(b, stage, arith::ConstantIndexOp::create(b, t.rows * t.cols));
}

void Distributor::issueCopies(const TileCopy &copy, const SwizzledTile &t, Value stage,
                              ValueRange origin, int group) {
  // TMA: readers wait on the stage's barrier, not on a group (TensorMemory.cpp).
  if (tensorCopies)
    return issueTensorCopies(cast<tile::LoadOp>(copy.op), int(&t - swizzledTiles.data()),
                             stage, origin);
  Value buffer = scalars.lookup(copy.source);
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value full = arith::ConstantIndexOp::create(b, 8), none = zero;
  Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
  Value base = stageOffset(t, stage);
  auto token = nvgpu::DeviceAsyncTokenType::get(b.getContext());
  for (int64_t i = 0; i < vectorsPerThread(copy); ++i) {
    // Rows past the buffer copy nothing: cp.async fills the 16 bytes with zeros without
    // reading its source, so the address needs no clamp and stays an affine function of
    // the tile origin (a few instructions per copy once LLVM shares the common terms).
    VectorSource v = vectorSource(copy, origin, i, rowsInBuffer, /*clampOutside=*/false);
    Value dst = arith::AddIOp::create(b, base, swizzledOffset(b, v.row, v.col, t.rows));
    nvgpu::DeviceAsyncCopyOp::create(b, token, t.view, ValueRange{dst}, buffer, v.indices,
                                     b.getIndexAttr(8),
                                     arith::SelectOp::create(b, v.inBounds, full, none),
                                     b.getUnitAttr());
  }
  tgpu::AsyncCommitGroupOp::create(b, tgpu::AsyncTokenType::get(b.getContext()), ValueRange());
  pendingCopies.push_back(group);
}

void Distributor::waitForCopies(int newerGroupsLeft) {
  if (tensorCopies || waitMode == WaitMode::follow) {
    // TMA: no cp.async groups, what a loop records as in flight is waited for by its
    // readers. Waits as ops: the IR's came before, or a copy may still be in flight.
    if (!tensorCopies && newerGroupsLeft < int(pendingCopies.size()) && !waitsBroken) {
      waitsBroken = true;
      Operation *at = waitPoint.before ? waitPoint.before : waitPoint.block->getParentOp();
      at->emitError("a cp.async copy may still be in flight here, where the lowering needs "
                    "all but ")
          << newerGroupsLeft << " of the " << pendingCopies.size()
          << " copy groups landed: no tgpu.async_wait comes before it in this "
          << kWaitsPlacedAttr << " grid (tessera-tgpu-insert-waits)";
    }
    landCopies(newerGroupsLeft);
    return;
  }
  Operation *wait = emitCopyWait(newerGroupsLeft);
  if (waitMode == WaitMode::record)
    waitRecords.push_back({waitPoint, newerGroupsLeft, wait,
                           waitPoint.productWaits >= 0 && productWaits != waitPoint.productWaits});
}

Operation *Distributor::emitCopyWait(int newerGroupsLeft) {
  auto wait = tgpu::AsyncWaitOp::create(b, tgpu::AsyncTokenType::get(b.getContext()),
                                        ValueRange(), newerGroupsLeft);
  // cp.async writes through the generic proxy; wgmma reads through the async one.
  fenceAsyncProxy();
  landCopies(newerGroupsLeft);
  return wait;
}

void Distributor::landCopies(int newerGroupsLeft) {
  pendingCopies.erase(pendingCopies.begin(),
                      pendingCopies.end() -
                          std::min<int>(newerGroupsLeft, pendingCopies.size()));
}

bool Distributor::waitForGroup(function_ref<bool(int)> needed) {
  for (int i = int(pendingCopies.size()) - 1; i >= 0; --i)
    if (needed(pendingCopies[i])) {
      waitForCopies(int(pendingCopies.size()) - 1 - i);
      return true;
    }
  return false;
}

void Distributor::settleCopies() {
  flushBarrier();
  if (copiesPending()) {
    waitForCopies(0);
    tgpu::BarrierOp::create(b);
  }
}

void Distributor::waitProducts(int64_t newerLeft, int64_t upTo) {
  SmallVector<Value> done;
  for (auto &[v, group] : productsInFlight)
    if (group <= upTo)
      done.push_back(v);
  // In issue order, not the map's (pointer) order: the registers' order must not depend
  // on where values were allocated.
  llvm::sort(done, [&](Value a, Value b) {
    return productsInFlight.lookup(a) < productsInFlight.lookup(b);
  });
  // The products' registers pass through the wait, so no use of them moves above it.
  SmallVector<Value> registers;
  for (Value v : done)
    llvm::append_range(registers, tiles[v]);
  auto wait = tgpu::WarpgroupWaitOp::create(b, registers, Value(), newerLeft);
  ++productWaits;
  unsigned next = 0;
  for (Value v : done) {
    for (Value &slot : tiles[v])
      slot = wait.getResult(next++);
    productsInFlight.erase(v);
  }
}

void Distributor::awaitProduct(Value v) {
  int64_t group = productsInFlight.lookup(v);
  waitProducts(productGroups - group, group);
}

void Distributor::settleProducts() {
  if (!productsInFlight.empty())
    waitProducts(0, productGroups);
}

void Distributor::flushForProduct(tile::DotOp op) {
  SmallVector<int> operandBuffers;
  for (Value operand : {op.getLhs(), op.getRhs()})
    if (auto it = shared.find(operand); it != shared.end() && it->second.swizzled >= 0) {
      operandBuffers.push_back(it->second.swizzled);
      awaitTensorCopies(it->second);
    }
  awaitSwizzled(operandBuffers);
}

void Distributor::awaitSwizzled(ArrayRef<int> buffers) {
  if (tensorCopiesVisible(buffers)) {
    // Each reader waited on the barriers of the TMA copies it reads: no block barrier.
    barrierPending = false;
    return;
  }
  if (!waitForGroup([&](int group) { return llvm::is_contained(buffers, group); })) {
    flushBarrier();
    return;
  }
  tgpu::BarrierOp::create(b);
  barrierPending = false;
}

Slots Distributor::readSwizzled(const SharedTile &t, const Layout &want) {
  awaitTensorCopies(t);
  awaitSwizzled({t.swizzled});
  const SwizzledTile &st = swizzledTiles[t.swizzled];
  Value base = stageOffset(st, t.stage);
  Slots out;
  for (int64_t s = 0; s < numSlots(want); ++s) {
    auto [r, c] = position(want, s);
    if (t.transposed)
      std::swap(r, c);
    Value at = arith::AddIOp::create(b, base, swizzledOffset(b, r, c, st.rows));
    out.push_back(memref::LoadOp::create(b, st.view, ValueRange{at}));
  }
  return out;
}

FailureOr<Distributor::SharedTile> Distributor::stageSwizzled(Value v, bool transposed) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t rows = type.getDimSize(0), cols = type.getDimSize(1);
  // A right operand narrower than a swizzle row ([K, N], N < 64: the backward's dSᵀ of
  // 16 or 32 queries) is written transposed, [N][K], and read K-major.
  if (transposed)
    std::swap(rows, cols);
  if (rows % 8 || cols % kSwizzleCols)
    return emitError(v.getLoc(), "a computed warpgroup operand needs rows in multiples of 8 "
                                 "and columns in multiples of 64");
  Layout have = layoutOf(v);
  FailureOr<Slots> slots = slotsOf(v, have);
  if (failed(slots))
    return failure();
  int index = allocateSwizzled(rows, cols, /*stages=*/1, type.getElementType(), "operand");
  const SwizzledTile &st = swizzledTiles[index];
  // Earlier readers of the buffer (last iteration's products) are done; copies in flight
  // elsewhere keep flying.
  blockBarrier();
  if (transposed) {
    // Lane positions opaque: LLVM would otherwise hoist every slot's swizzled offset out
    // of the loop around, a register each.
    SlotCoord first = slotCoord(have, 0);
    Value rowBase = opaqueIndex(base(have, first.rowBase));
    Value colBase = opaqueIndex(base(have, first.colBase));
    for (int64_t s = 0; s < int64_t(slots->size()); ++s) {
      SlotCoord sc = slotCoord(have, s);
      Value r = arith::AddIOp::create(b, rowBase, arith::ConstantIndexOp::create(b, sc.row));
      Value c = arith::AddIOp::create(b, colBase, arith::ConstantIndexOp::create(b, sc.col));
      memref::StoreOp::create(b, (*slots)[s], st.view, ValueRange{swizzledOffset(b, c, r, rows)});
    }
  } else if (have.kind == LayoutKind::Acc) {
    writeAccumulatorPairs(have, *slots, index, type.getElementType());
  } else {
    for (int64_t s = 0; s < int64_t(slots->size()); ++s) {
      auto [r, c] = position(have, s);
      memref::StoreOp::create(b, (*slots)[s], st.view, ValueRange{swizzledOffset(b, r, c, rows)});
    }
  }
  // Written through the generic proxy, read by wgmma through the async one.
  fenceAsyncProxy();
  tgpu::BarrierOp::create(b);
  SharedTile t{Value(), transposed, index, arith::ConstantIndexOp::create(b, 0)};
  shared[v] = t;
  return t;
}

void Distributor::writeAccumulatorPairs(const Layout &have, ArrayRef<Value> slots, int buffer,
                                        Type elem) {
  const SwizzledTile &st = swizzledTiles[buffer];
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  // Slots 2i and 2i + 1 are neighbouring columns of one row: one 32-bit store. They sit
  // at rows warpRow + dr (dr a multiple of 8, so row % 8 is g) and columns 2t + dc: the
  // swizzled offset is rowBase ^ (16-byte chunk) plus a constant, one base per thread
  // for every store instead of one address register per store (ptxas spilled those,
  // and reloaded them every block).
  Value rowBase = arith::AddIOp::create(
      b, arith::MulIOp::create(b, base(have, LaneBase::WarpRow), c(kSwizzleCols)),
      arith::AddIOp::create(b, t2, arith::MulIOp::create(b, g, c(8))));
  for (int64_t s = 0; s < int64_t(slots.size()); s += 2) {
    SlotCoord sc = slotCoord(have, s);
    int64_t block = sc.col / kSwizzleCols, chunk = sc.col % kSwizzleCols / 8;
    Value swizzled = arith::XOrIOp::create(b, rowBase, c(chunk * 8));
    Value at = arith::AddIOp::create(
        b, swizzled, c(block * st.rows * kSwizzleCols + sc.row * kSwizzleCols));
    Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, elem),
                                                ValueRange{slots[s], slots[s + 1]});
    vector::StoreOp::create(b, pair, st.view, ValueRange{at});
  }
}

int Distributor::throughSharedBuffer(tile::StoreOp op, const Layout &l) {
  auto tileType = dyn_cast<RankedTensorType>(op.getValue().getType());
  auto type = cast<MemRefType>(op.getDest().getType());
  bool inLoop = isa<scf::ForOp>(op->getParentOp());
  if (!wgmma || l.kind != LayoutKind::Acc || !tileType || tileType.getRank() != 2 ||
      !(inLoop || isa<tile::GridOp, tgpu::WarpSpecializeOp>(op->getParentOp())))
    return -1;
  Type elem = type.getElementType();
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  int64_t rowLength = type.getDimSize(type.getRank() - 1);
  if (elem.getIntOrFloatBitWidth() != 16 || rows % 8 || cols % kSwizzleCols ||
      numThreads % (cols / 8) || (rows * cols / 8) % numThreads ||
      ShapedType::isDynamic(rowLength) || rowLength % 8 ||
      !knownMultipleOf(op.getIndices().back(), 8))
    return -1;
  // Stored once, after the loops (a softmax's O): only where a buffer of its shape is
  // free by then (Q's), so that shared memory, and blocks per SM, stay as they are (the
  // allocation gives it those bytes).
  if (!inLoop && bufferFreeAfter(op, rows, cols, elem) < 0)
    return -1;
  return allocateSwizzled(rows, cols, /*stages=*/1, elem, "output", op);
}

Value Distributor::opaqueIndex(Value v) {
  Value word = arith::IndexCastUIOp::create(b, b.getI32Type(), v);
  Value same = inlinePtx(b, b.getLoc(), b.getI32Type(), ValueRange{word}, "", "=r,0");
  return arith::IndexCastUIOp::create(b, b.getIndexType(), same);
}

/// A swizzled buffer of rows x cols `elem`s that no op after `op` can touch: the ops
/// after it load, multiply and branch nothing, and read no tile staged in it.
int Distributor::bufferFreeAfter(tile::StoreOp op, int64_t rows, int64_t cols, Type elem) {
  llvm::SmallDenseSet<int> readLater;
  for (Operation *later = op->getNextNode(); later; later = later->getNextNode()) {
    if (later->getNumRegions() ||
        isa<tile::LoadOp, tgpu::AsyncCopyOp, tile::DotOp, tile::GatherOp>(later))
      return -1;
    for (Value v : later->getOperands())
      if (auto it = shared.find(v); it != shared.end())
        readLater.insert(it->second.swizzled);
  }
  for (auto [index, t] : llvm::enumerate(swizzledTiles))
    if (t.rows == rows && t.cols == cols && getElementTypeOrSelf(t.view.getType()) == elem &&
        !readLater.contains(int(index)))
      return index;
  return -1;
}

/// A block's output stored every iteration goes out through shared memory: its pairs
/// into a swizzled buffer, then 16-byte rows, a quarter of the global store instructions
/// of 32-bit pairs (each holding its address and data registers until the store drains)
/// and whole 32-byte sectors. Not from a branch (two branches' stores, as the grouped
/// gradient sweeps had before they became a grid per case, spilled).
void Distributor::storeThroughShared(tile::StoreOp op, const Layout &l, ArrayRef<Value> slots,
                                     int index) {
  auto tileType = cast<RankedTensorType>(op.getValue().getType());
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  Value buffer = scalars.lookup(op.getDest());
  auto type = cast<MemRefType>(buffer.getType());
  Type elem = type.getElementType();
  int64_t rank = type.getRank();
  const SwizzledTile &st = swizzledTiles[index];
  // The buffer's last readers (the last iteration's, or a reused buffer's) are done; a
  // reused buffer's copies still landing (a prefetch past the last iteration) too.
  bool reused = !isa<scf::ForOp>(op->getParentOp());
  if (reused && copiesPending())
    waitForCopies();
  if (reused)
    drainTensorCopies(overlappingSwizzled(index));
  blockBarrier();
  // After the loops, positions from a thread index LLVM cannot equate with the entry's:
  // it would otherwise reuse the reused buffer's copy addresses, computed at the entry,
  // and keep them in registers through every loop (26 more at D = 128).
  llvm::SaveAndRestore<Value> localThreadId(threadId);
  if (reused) {
    barrierPending = false;
    threadId = opaqueIndex(threadId);
  }
  writeAccumulatorPairs(l, slots, index, elem);
  tgpu::BarrierOp::create(b);
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
  auto vecType = VectorType::get({8}, elem);
  for (int64_t i = 0; i < rows * cols / 8 / numThreads; ++i) {
    auto [r, c] = vectorPosition(cols, 16, i);
    Value v = vector::LoadOp::create(b, vecType, st.view, ValueRange{swizzledOffset(b, r, c, rows)},
                                     /*nontemporal=*/false, b.getI64IntegerAttr(16));
    SmallVector<Value> idx(origin);
    idx[rank - 2] = arith::AddIOp::create(b, idx[rank - 2], r);
    idx[rank - 1] = arith::AddIOp::create(b, idx[rank - 1], c);
    Value inside = chunkInside(idx, buffer, rowsInBuffer, cols, op.getIndices().back());
    scf::IfOp::create(b, inside, [&](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      vector::StoreOp::create(b, v, buffer, idx, /*nontemporal=*/false, b.getI64IntegerAttr(16));
      scf::YieldOp::create(b);
    });
  }
}

SmallVector<int> Distributor::overlappingSwizzled(int index) {
  const SwizzledTile &mine = swizzledTiles[index];
  SmallVector<int> out;
  for (auto [i, t] : llvm::enumerate(swizzledTiles))
    if (t.offset < mine.offset + mine.bytes() && mine.offset < t.offset + t.bytes())
      out.push_back(i);
  return out;
}
