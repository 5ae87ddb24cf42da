//===- LoadStore.cpp - tile loads, stores and gathers -----------------------===//
//
// Global memory: 16-byte row copies (into registers or staging buffers, with bounds
// checks per chunk), per-slot loads and stores, stores of transposes and gathers.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

bool tessera::gpu::knownMultipleOf(Value v, int64_t w) {
  APInt c;
  if (matchPattern(v, m_ConstantInt(&c)))
    return c.getSExtValue() % w == 0;
  if (auto mul = v.getDefiningOp<arith::MulIOp>())
    return knownMultipleOf(mul.getLhs(), w) || knownMultipleOf(mul.getRhs(), w);
  if (auto add = v.getDefiningOp<arith::AddIOp>())
    return knownMultipleOf(add.getLhs(), w) && knownMultipleOf(add.getRhs(), w);
  return false;
}

TileCopy TileCopy::of(Operation *op) {
  TileCopy c;
  c.op = op;
  if (auto load = dyn_cast<tile::LoadOp>(op)) {
    auto type = cast<RankedTensorType>(load.getType());
    c.source = load.getSource();
    c.indices = load.getIndices();
    c.shape = type.getShape();
    c.elem = type.getElementType();
    c.target = type;
    c.staged = Distributor::isStaged(load);
    c.swizzled = Distributor::swizzles(load);
    return c;
  }
  auto copy = cast<tgpu::AsyncCopyOp>(op);
  tgpu::SharedBufferType type = copy.getBuffer().getType();
  c.source = copy.getSource();
  c.indices = copy.getIndices();
  c.shape = type.getShape();
  c.elem = type.getElementType();
  c.target = type;
  c.buffer = copy.getBuffer();
  c.staged = true;
  c.swizzled = type.getLayout().getKind() == tgpu::SwizzleKind::swizzle_128b;
  return c;
}

bool TileCopy::isCopy(Operation *op) { return isa<tile::LoadOp, tgpu::AsyncCopyOp>(op); }

int64_t tessera::gpu::vectorsPerThreadOf(const TileCopy &copy, int64_t numThreads) {
  auto buffer = cast<MemRefType>(copy.source.getType());
  if (copy.shape.size() != 2)
    return 0;
  int64_t rows = copy.shape[0], cols = copy.shape[1];
  int64_t width = 16 / (copy.elem.getIntOrFloatBitWidth() / 8);
  int64_t rowLength = buffer.getDimSize(buffer.getRank() - 1);
  bool wholeRows = rowLength == cols && matchPattern(copy.indices.back(), m_Zero());
  bool wholeChunks = !ShapedType::isDynamic(rowLength) && rowLength % width == 0 &&
                     knownMultipleOf(copy.indices.back(), width);
  if (!(wholeRows || wholeChunks) || cols % width || (rows * cols / width) % numThreads)
    return 0;
  return rows * cols / width / numThreads;
}

int64_t Distributor::vectorsPerThread(const TileCopy &copy) {
  return vectorsPerThreadOf(copy, numThreads);
}

/// Position (row, column) in the tile of this thread's `i`-th vector: consecutive threads
/// take consecutive vectors of a row, so a warp reads 512 contiguous bytes.
std::pair<Value, Value> Distributor::vectorPosition(const TileCopy &copy, int64_t i) {
  return vectorPosition(copy.shape[1], copy.elem.getIntOrFloatBitWidth(), i);
}

std::pair<Value, Value> Distributor::vectorPosition(int64_t cols, int64_t elemBits, int64_t i) {
  int64_t width = 16 / (elemBits / 8);
  int64_t perRow = cols / width;
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  if (numThreads % perRow == 0) {
    // Every pass of the threads covers whole rows: vector i is vector 0 moved down
    // i x numThreads / perRow rows (the same column), so its addresses (and swizzle, for
    // passes of a multiple of 8 rows) differ from vector 0's by constants and need no
    // register of their own.
    Value r = arith::AddIOp::create(b, arith::DivUIOp::create(b, threadId, c(perRow)),
                                    c(i * (numThreads / perRow)));
    return {r, arith::MulIOp::create(b, arith::RemUIOp::create(b, threadId, c(perRow)),
                                     c(width))};
  }
  Value linear = arith::AddIOp::create(b, threadId, c(i * numThreads));
  Value r = arith::DivUIOp::create(b, linear, c(perRow));
  Value col = arith::MulIOp::create(b, arith::RemUIOp::create(b, linear, c(perRow)), c(width));
  return {r, col};
}

Distributor::VectorSource Distributor::vectorSource(const TileCopy &copy, ValueRange origin,
                                                    int64_t i, Value rowsInBuffer,
                                                    bool clampOutside) {
  auto [r, c] = vectorPosition(copy, i);
  int64_t rank = origin.size();
  VectorSource v{SmallVector<Value>(origin), Value(), r, c};
  v.indices[rank - 2] = arith::AddIOp::create(b, v.indices[rank - 2], r);
  v.indices[rank - 1] = arith::AddIOp::create(b, v.indices[rank - 1], c);
  // One past the buffer reads nothing (loads clamp its address to (0, 0); see
  // vectorsPerThreadOf for why a chunk is wholly inside or outside).
  v.inBounds = chunkInside(v.indices, scalars.lookup(copy.source), rowsInBuffer,
                           copy.shape[1], copy.indices.back());
  if (!clampOutside)
    return v;
  Value zero = arith::ConstantIndexOp::create(b, 0);
  for (int64_t d : {rank - 2, rank - 1})
    v.indices[d] = arith::SelectOp::create(b, v.inBounds, v.indices[d], zero);
  return v;
}

Value Distributor::chunkInside(ArrayRef<Value> idx, Value buffer, Value rowsInBuffer,
                               int64_t tileCols, Value tileCol) {
  int64_t rank = idx.size(), rowLength = cast<MemRefType>(buffer.getType()).getDimSize(rank - 1);
  Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 2], rowsInBuffer);
  if (rowLength != tileCols || !matchPattern(tileCol, m_Zero()))
    inside = arith::AndIOp::create(
        b, inside,
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 1],
                              arith::ConstantIndexOp::create(b, rowLength)));
  return inside;
}

SmallVector<Value> Distributor::loadRows(const TileCopy &copy, ValueRange origin) {
  Type elem = copy.elem;
  int64_t width = 16 / (elem.getIntOrFloatBitWidth() / 8);
  Value buffer = scalars.lookup(copy.source);
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  auto vecType = VectorType::get({width}, elem);
  Value zeros = arith::ConstantOp::create(b, vecType,
                                          DenseElementsAttr::get(vecType, b.getZeroAttr(elem)));
  Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
  SmallVector<Value> regs;
  for (int64_t i = 0; i < vectorsPerThread(copy); ++i) {
    // A row past the buffer reads row 0 and becomes zeros.
    VectorSource v = vectorSource(copy, origin, i, rowsInBuffer);
    Value x = vector::LoadOp::create(b, vecType, buffer, v.indices, /*nontemporal=*/false,
                                     b.getI64IntegerAttr(16));
    regs.push_back(arith::SelectOp::create(b, v.inBounds, x, zeros));
  }
  return regs;
}

void Distributor::storeRows(const TileCopy &copy, Value mem, ArrayRef<Value> regs) {
  for (auto [i, v] : llvm::enumerate(regs)) {
    auto [r, c] = vectorPosition(copy, i);
    vector::StoreOp::create(b, v, mem, ValueRange{r, c}, /*nontemporal=*/false,
                            b.getI64IntegerAttr(16));
  }
}

LogicalResult Distributor::lowerLoadToShared(tile::LoadOp op) {
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  // The previous iteration's readers must be done before the tile is overwritten.
  settleProducts();
  TileCopy copy = TileCopy::of(op);
  if (copy.swizzled)
    copyToSwizzled(copy, origin);
  else
    copyToPadded(copy, origin);
  return success();
}

void Distributor::copyToPadded(const TileCopy &copy, ValueRange origin) {
  int64_t rows = copy.shape[0], cols = copy.shape[1];
  Type elem = copy.elem;
  Value buffer = scalars.lookup(copy.source);
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  if (!barrierPending)
    blockBarrier();
  Value mem = stagingBuffer(copy);
  if (vectorsPerThread(copy)) {
    storeRows(copy, mem, loadRows(copy, origin));
  } else {
    // Consecutive threads copy consecutive elements of a row: coalesced global reads.
    Value zero = arith::ConstantIndexOp::create(b, 0);
    Value pad = arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(elem)));
    Value colsC = arith::ConstantIndexOp::create(b, cols);
    Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
    Value colsInBuffer = memref::DimOp::create(b, buffer, rank - 1);
    auto loop = scf::ForOp::create(b, zero, arith::ConstantIndexOp::create(b, rows * cols),
                                   arith::ConstantIndexOp::create(b, numThreads));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value linear = arith::AddIOp::create(b, loop.getInductionVar(), threadId);
    Value r = arith::DivUIOp::create(b, linear, colsC);
    Value c = arith::RemUIOp::create(b, linear, colsC);
    SmallVector<Value> idx(origin);
    idx[rank - 2] = arith::AddIOp::create(b, idx[rank - 2], r);
    idx[rank - 1] = arith::AddIOp::create(b, idx[rank - 1], c);
    Value ok = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 2], rowsInBuffer),
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 1], colsInBuffer));
    idx[rank - 2] = arith::SelectOp::create(b, ok, idx[rank - 2], zero);
    idx[rank - 1] = arith::SelectOp::create(b, ok, idx[rank - 1], zero);
    Value v = memref::LoadOp::create(b, buffer, idx);
    memref::StoreOp::create(b, arith::SelectOp::create(b, ok, v, pad), mem, ValueRange{r, c});
  }
  barrierPending = true;
  setFill(copy, {mem, /*transposed=*/false});
}

void Distributor::copyToSwizzled(const TileCopy &copy, ValueRange origin) {
  int index = swizzledBuffer(copy);
  if (!barrierPending) {
    // No two copies in flight to the same bytes: wait for the newest earlier copy into
    // this buffer (a prefetch, -1, may target any; a next-stage copy, either stage).
    waitForGroup([&](int group) {
      return group == index || group == -1 || group == nextStageGroup(index);
    });
    blockBarrier();
  }
  Value first = arith::ConstantIndexOp::create(b, 0);
  issueCopies(copy, swizzledTiles[index], first, origin, index);
  barrierPending = true;
  setFill(copy, {Value(), false, index, first});
}

LogicalResult Distributor::lowerAsyncCopy(tgpu::AsyncCopyOp op) {
  if (op.getStage())
    return lowerPipelinedCopy(op);
  TileCopy copy = TileCopy::of(op);
  tgpu::SwizzleKind kind = op.getBuffer().getType().getLayout().getKind();
  if ((copy.swizzled && !wgmma) || kind == tgpu::SwizzleKind::none)
    return op.emitError("the GPU lowering copies into swizzled buffers (wgmma) or padded "
                        "rows");
  if (copy.swizzled && !vectorsPerThread(copy))
    return op.emitError("the tile is not whole 16-byte vectors of its rows spread evenly "
                        "over the block's threads");
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  settleProducts(); // the previous iteration's readers are done
  if (copy.swizzled)
    copyToSwizzled(copy, origin);
  else
    copyToPadded(copy, origin); // through registers: ld.global, then st.shared
  return success();
}

/// The software-pipelined loop `op` copies for: the loop it is in, or the first after it
/// in its block (its prologue).
static scf::ForOp pipelinedLoopOf(tgpu::AsyncCopyOp op) {
  auto parent = dyn_cast<scf::ForOp>(op->getParentOp());
  if (parent && parent->hasAttr(kPipelinedAttr))
    return parent;
  for (Operation *next = op->getNextNode(); next; next = next->getNextNode())
    if (auto loop = dyn_cast<scf::ForOp>(next); loop && loop->hasAttr(kPipelinedAttr))
      return loop;
  return {};
}

LogicalResult Distributor::lowerPipelinedCopy(tgpu::AsyncCopyOp op) {
  TileCopy copy = TileCopy::of(op);
  scf::ForOp loop = pipelinedLoopOf(op);
  if (!loop || !wgmma || !copy.swizzled)
    return op.emitError("a copy into an explicit stage belongs to a software-pipelined "
                        "loop of a wgmma kernel (tessera-tgpu-pipeline-loops), in its body "
                        "or before it, into swizzled rows");
  if (!vectorsPerThread(copy))
    return op.emitError("the tile is not whole 16-byte vectors of its rows spread evenly "
                        "over the block's threads");
  bool inLoop = loop == op->getParentOp();
  auto mode = loop->getAttrOfType<StringAttr>(kPipelineAttr);
  bool firstOnly = mode && mode.getValue() == "cp_async_first_product";
  settleProducts(); // readers of the stage it fills are done
  if (!inLoop && !prologueOpen) {
    // The prologue's buffers first, then the stages free.
    for (Operation *x = op; x != loop.getOperation(); x = x->getNextNode())
      if (auto c = dyn_cast<tgpu::AsyncCopyOp>(x); c && c.getStage())
        swizzledBuffer(TileCopy::of(c));
    freeFirstStages();
    prologueOpen = true;
  }
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  // First-product loops wait for a copy by buffer: the prologue's is the first
  // iteration's, the body's the next iteration's (waited for there).
  int index = swizzledBuffer(copy);
  int group = !firstOnly ? -1 : inLoop ? nextStageGroup(index) : index;
  issueCopies(copy, swizzledTiles[index], scalars.lookup(op.getStage()), origin, group);
  return success();
}

void Distributor::setFill(const TileCopy &copy, SharedTile tile) {
  shared[copy.buffer ? copy.buffer : copy.op->getResult(0)] = tile;
}

LogicalResult Distributor::lowerLoad(tile::LoadOp op) {
  if (isStaged(op))
    return lowerLoadToShared(op);
  Layout l = layoutOf(op.getResult());
  Value buffer = scalars.lookup(op.getSource());
  auto type = cast<MemRefType>(buffer.getType());
  int64_t rank = type.getRank(), tileRank = l.cols ? 2 : 1;
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  SmallVector<Value> dims;
  for (int64_t d = rank - tileRank; d < rank; ++d)
    dims.push_back(memref::DimOp::create(b, buffer, d));
  Type elem = type.getElementType();
  TypedAttr padAttr = op.getPaddingAttr() ? op.getPaddingAttr()
                                          : cast<TypedAttr>(b.getZeroAttr(elem));
  Value pad = arith::ConstantOp::create(b, padAttr);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SlotCoord c = slotCoord(l, s);
    SmallVector<Value> idx(origin);
    Value inBounds;
    for (int64_t k = 0; k < tileRank; ++k) {
      Value local = k == 0 ? coord(l, c.rowBase, c.row) : coord(l, c.colBase, c.col);
      Value &i = idx[rank - tileRank + k];
      i = arith::AddIOp::create(b, i, local);
      Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, dims[k]);
      inBounds = inBounds ? arith::AndIOp::create(b, inBounds, ok).getResult() : ok;
      // Out-of-bounds slots read element 0 and are replaced by the padding: no branch.
      i = arith::SelectOp::create(b, ok, i, zero);
    }
    Value v = memref::LoadOp::create(b, buffer, idx);
    out.push_back(arith::SelectOp::create(b, inBounds, v, pad));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

bool tessera::gpu::isStoredTranspose(tile::TransOp t) {
  return llvm::all_of(t->getUsers(), [](Operation *u) { return isa<tile::StoreOp>(u); });
}

LogicalResult Distributor::lowerStore(tile::StoreOp op) {
  Value value = op.getValue();
  bool transposed = false;
  if (auto t = value.getDefiningOp<tile::TransOp>();
      t && isStoredTranspose(t) && tiles.count(t.getInput())) {
    value = t.getInput();
    transposed = true;
  }
  Layout l = layoutOf(value);
  FailureOr<Slots> values = slotsOf(value, l);
  if (failed(values))
    return failure();
  Value buffer = scalars.lookup(op.getDest());
  auto type = cast<MemRefType>(buffer.getType());
  int64_t rank = type.getRank(), tileRank = l.cols ? 2 : 1;
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  if (int index = transposed ? -1 : throughSharedBuffer(op, l); index >= 0) {
    storeThroughShared(op, l, *values, index);
    return success();
  }
  // An accumulator tile of 16-bit elements at an even column of rows of even length:
  // each thread's neighbouring columns (2t, 2t + 1) go out as one 32-bit store.
  Type elem = type.getElementType();
  int64_t rowLength = type.getDimSize(rank - 1);
  bool wholeRows = rowLength == l.cols && matchPattern(op.getIndices().back(), m_Zero());
  if (!transposed && l.kind == LayoutKind::Acc && tileRank == 2 &&
      elem.getIntOrFloatBitWidth() == 16 &&
      !ShapedType::isDynamic(rowLength) && rowLength % 2 == 0 &&
      knownMultipleOf(op.getIndices().back(), 2)) {
    Value rows = memref::DimOp::create(b, buffer, rank - 2);
    auto pairType = VectorType::get({2}, elem);
    // One bounds branch per row this thread holds, around all of that row's pairs: a
    // branch per pair would repeat the row test and the buffer's address arithmetic.
    llvm::MapVector<std::pair<int64_t, int64_t>, SmallVector<int64_t>> pairsOfRow;
    for (int64_t s = 0; s < numSlots(l); s += 2) {
      SlotCoord c = slotCoord(l, s);
      pairsOfRow[{int64_t(c.rowBase), c.row}].push_back(s);
    }
    for (auto &[row, slots] : pairsOfRow) {
      SlotCoord first = slotCoord(l, slots.front());
      Value r = arith::AddIOp::create(b, origin[rank - 2],
                                      coord(l, first.rowBase, first.row));
      Value rowOk = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, r, rows);
      scf::IfOp::create(b, rowOk, [&](OpBuilder &nb, Location loc) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        for (int64_t s : slots) {
          SlotCoord c = slotCoord(l, s);
          SmallVector<Value> idx(origin);
          idx[rank - 2] = r;
          idx[rank - 1] = arith::AddIOp::create(b, idx[rank - 1], coord(l, c.colBase, c.col));
          Value pair = vector::FromElementsOp::create(
              b, pairType, ValueRange{(*values)[s], (*values)[s + 1]});
          auto store = [&] {
            vector::StoreOp::create(b, pair, buffer, idx, /*nontemporal=*/false,
                                    b.getI64IntegerAttr(4));
          };
          if (wholeRows) {
            store();
            continue;
          }
          Value colOk = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 1],
                                              arith::ConstantIndexOp::create(b, rowLength));
          scf::IfOp::create(b, colOk, [&](OpBuilder &cb, Location) {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPoint(cb.getInsertionBlock(), cb.getInsertionPoint());
            store();
            scf::YieldOp::create(b);
          });
        }
        scf::YieldOp::create(b);
      });
    }
    return success();
  }
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SlotCoord c = slotCoord(l, s);
    SmallVector<Value> idx(origin);
    // Row and RowSpan values are replicated over the 4 lanes of a quad: one writes them;
    // a Whole value is held by every thread: the first writes it.
    bool quadReplicated = l.kind == LayoutKind::Row || l.kind == LayoutKind::RowSpan;
    Value inBounds = quadReplicated ? isQuadLeader : Value();
    if (l.kind == LayoutKind::Whole)
      inBounds = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, threadId,
                                       arith::ConstantIndexOp::create(b, 0));
    for (int64_t k = 0; k < tileRank; ++k) {
      Value local = (k == 0) != transposed ? coord(l, c.rowBase, c.row)
                                           : coord(l, c.colBase, c.col);
      Value &i = idx[rank - tileRank + k];
      i = arith::AddIOp::create(b, i, local);
      Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i,
                                       memref::DimOp::create(b, buffer, rank - tileRank + k));
      inBounds = inBounds ? arith::AndIOp::create(b, inBounds, ok).getResult() : ok;
    }
    Value v = (*values)[s];
    scf::IfOp::create(b, inBounds, [&](OpBuilder &nb, Location loc) {
      memref::StoreOp::create(nb, loc, v, buffer, idx);
      scf::YieldOp::create(nb, loc);
    });
  }
  return success();
}

LogicalResult Distributor::lowerGather(tile::GatherOp op) {
  Layout l = layoutOf(op.getResult());
  SmallVector<Slots> indices;
  for (Value tileOfIndices : op.getIndices()) {
    FailureOr<Slots> s = slotsOf(tileOfIndices, l);
    if (failed(s))
      return failure();
    indices.push_back(std::move(*s));
  }
  Value table = scalars.lookup(op.getSource());
  SmallVector<Value> sizes;
  for (int64_t d = 0; d < int64_t(indices.size()); ++d)
    sizes.push_back(memref::DimOp::create(b, table, d));
  Type elem = cast<MemRefType>(table.getType()).getElementType();
  TypedAttr padAttr = op.getPaddingAttr() ? op.getPaddingAttr()
                                          : cast<TypedAttr>(b.getZeroAttr(elem));
  Value pad = arith::ConstantOp::create(b, padAttr);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    // Outside any dimension: read element 0 (always there) and give the padding.
    Value ok;
    SmallVector<Value> at;
    for (auto [slots, size] : llvm::zip(indices, sizes)) {
      Value i = arith::IndexCastOp::create(b, b.getIndexType(), slots[s]);
      Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, size);
      ok = ok ? arith::AndIOp::create(b, ok, inside).getResult() : inside;
      at.push_back(i);
    }
    for (Value &i : at)
      i = arith::SelectOp::create(b, ok, i, zero);
    Value v = memref::LoadOp::create(b, table, at);
    out.push_back(arith::SelectOp::create(b, ok, v, pad));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}
