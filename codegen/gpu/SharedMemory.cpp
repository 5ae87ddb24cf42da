//===- SharedMemory.cpp - layout conversions and staging buffers ------------===//
//
// Tiles in shared memory that are not swizzled: the dynamic arena's views, conversion
// scratch (a value used in a layout it was not computed in), the padded buffers a
// product's right operand is staged in, and slotsOf, which gives a tile's slots in any
// layout.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

/// Rows padded by 16 bytes so that the 8 rows one ldmatrix (or one column walk) reads
/// fall in different banks.
static SmallVector<int64_t> paddedShape(ArrayRef<int64_t> shape, Type elem) {
  SmallVector<int64_t> out(shape);
  if (out.size() == 2)
    out[1] += 16 / (elem.getIntOrFloatBitWidth() / 8);
  return out;
}

Value Distributor::splatScalar(Value v) {
  if (auto splat = v.getDefiningOp<tensor::SplatOp>())
    return scalars.lookup(splat.getInput());
  DenseElementsAttr dense;
  matchPattern(v, m_Constant(&dense));
  return arith::ConstantOp::create(b, cast<TypedAttr>(dense.getSplatValue<Attribute>()));
}

bool Distributor::visibleHere(Block *made) {
  for (Block *cur = b.getInsertionBlock(); cur;
       cur = cur->getParentOp() ? cur->getParentOp()->getBlock() : nullptr)
    if (cur == made)
      return true;
  return false;
}

Value Distributor::workgroupBuffer(ArrayRef<int64_t> shape, Type elem, StringRef kind,
                                   Operation *owner) {
  // A view of the dynamic shared memory arena: no 48 KiB cap on static allocations, and
  // 128-byte alignment for 16-byte vector copies and ldmatrix rows.
  int64_t bytes = elem.getIntOrFloatBitWidth() / 8;
  for (int64_t d : shape)
    bytes *= d;
  int64_t offset = sharedOffset(owner, kind, bytes, 128);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(arenaAnchor);
  auto workgroup = ::mlir::gpu::AddressSpaceAttr::get(
      b.getContext(), ::mlir::gpu::GPUDialect::getWorkgroupAddressSpace());
  Value shift = arith::AddIOp::create(b, arenaShift, arith::ConstantIndexOp::create(b, offset));
  Value view = memref::ViewOp::create(
      b, MemRefType::get(shape, elem, MemRefLayoutAttrInterface{}, workgroup), arena, shift,
      ValueRange{});
  noteSharedHandle(view);
  return view;
}

Value Distributor::scratchBuffer(ArrayRef<int64_t> shape, Type elem) {
  SmallVector<int64_t> padded = paddedShape(shape, elem);
  Value &mem = scratchBuffers[MemRefType::get(padded, elem)];
  if (!mem)
    mem = workgroupBuffer(padded, elem, "scratch");
  return mem;
}

void Distributor::writeSlots(Value mem, const Layout &have, ArrayRef<Value> slots,
                             bool transpose) {
  // Layouts that replicate a value (a quad's lanes, every warp) write it several times,
  // all the same.
  for (auto [s, v] : llvm::enumerate(slots)) {
    auto [r, c] = position(have, s);
    SmallVector<Value> idx{r};
    if (c)
      idx = transpose ? SmallVector<Value>{c, r} : SmallVector<Value>{r, c};
    memref::StoreOp::create(b, v, mem, idx);
  }
}

Slots Distributor::readSlots(Value mem, const Layout &want, bool transposed) {
  Slots out;
  for (int64_t s = 0; s < numSlots(want); ++s) {
    auto [r, c] = position(want, s);
    SmallVector<Value> idx{r};
    if (c)
      idx = transposed ? SmallVector<Value>{c, r} : SmallVector<Value>{r, c};
    out.push_back(memref::LoadOp::create(b, mem, idx));
  }
  return out;
}

FailureOr<Slots> Distributor::convertThroughShared(Value v, const Layout &want,
                                                   bool transpose) {
  auto type = cast<RankedTensorType>(v.getType());
  FailureOr<Slots> have = slotsOf(v, layoutOf(v));
  if (failed(have))
    return failure();
  SmallVector<int64_t> shape(type.getShape());
  if (transpose)
    std::swap(shape[0], shape[1]);
  Value mem = scratchBuffer(shape, type.getElementType());
  // Earlier readers of the scratch are done (and pending staged copies have landed).
  settleShared();
  writeSlots(mem, layoutOf(v), *have, transpose);
  tgpu::BarrierOp::create(b);
  return readSlots(mem, want, /*transposed=*/false);
}

LogicalResult Distributor::lowerLocalAlloc(tgpu::LocalAllocOp op) {
  Value v = op.getInit();
  // A buffer async copies fill is allocated at its first copy (swizzledBuffer).
  if (!v)
    return success();
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getRank() != 2 || type.getElementType().getIntOrFloatBitWidth() != 16)
    return emitError(v.getLoc(), "a product's right operand must be a 2-D 16-bit tile");
  tgpu::SharedLayoutAttr layout = op.getType().getLayout();
  bool swizzled = layout.getKind() == tgpu::SwizzleKind::swizzle_128b;
  if (swizzled != wgmma || (!wgmma && op.getTrans()))
    return op.emitError(wgmma ? "a computed operand of wgmma products is staged in "
                                "swizzled rows; got "
                              : "a computed operand of mma.sync products is staged "
                                "untransposed in padded rows; got ")
           << op.getType();
  FailureOr<SharedTile> t = wgmma ? stageSwizzled(v, op.getTrans()) : stageRegisters(v);
  if (failed(t))
    return failure();
  // The buffer holds the tile as stored: the value, or its transpose.
  shared[op.getResult()] = op.getTrans() ? transposedView(*t) : *t;
  return success();
}

LogicalResult Distributor::lowerLocalLoad(tgpu::LocalLoadOp op) {
  if (Value stage = op.getStage()) {
    // A software-pipelined loop's read: the stage its iteration's copies filled.
    auto buffer = swizzledBuffers.find({op.getBuffer(), Type(), -1});
    if (!wgmma || buffer == swizzledBuffers.end())
      return op.emitError("reads a stage of a buffer no copy of a software-pipelined "
                          "loop fills (swizzled rows of a wgmma kernel)");
    SharedTile t{Value(), false, buffer->second, scalars.lookup(stage)};
    shared[op.getResult()] = op.getTrans() ? transposedView(t) : t;
    return success();
  }
  // A copied buffer holds its newest fill, in the stage the loop's schedule gave it.
  auto it = shared.find(op.getBuffer());
  if (it == shared.end())
    return op.emitError("reads a buffer that neither a value nor a copy has filled here");
  shared[op.getResult()] = op.getTrans() ? transposedView(it->second) : it->second;
  return success();
}

FailureOr<Distributor::SharedTile> Distributor::stageRegisters(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  FailureOr<Slots> have = slotsOf(v, layoutOf(v));
  if (failed(have))
    return failure();
  // Its own buffer: the operand stays readable for as long as the value lives.
  Value mem = workgroupBuffer(paddedShape(type.getShape(), type.getElementType()),
                              type.getElementType(), "operand");
  settleShared(); // the previous iteration's readers are done
  writeSlots(mem, layoutOf(v), *have, /*transpose=*/false);
  tgpu::BarrierOp::create(b);
  SharedTile t{mem, /*transposed=*/false};
  shared[v] = t;
  return t;
}

FailureOr<Slots> Distributor::slotsOf(Value v, const Layout &want) {
  if (isSplat(v))
    return Slots(numSlots(want), splatScalar(v));
  if (productsInFlight.count(v))
    awaitProduct(v);
  for (const Conversion &c : conversions.lookup(v))
    if (c.layout == want && visibleHere(c.block))
      return c.slots;
  auto remember = [&](Slots slots) {
    conversions[v].push_back({want, slots, b.getInsertionBlock()});
    return slots;
  };
  auto it = tiles.find(v);
  if (it == tiles.end()) {
    // A tile staged in shared memory for a product, used elsewhere too.
    auto sh = shared.find(v);
    if (sh == shared.end())
      return emitError(v.getLoc(), "tile used before it was distributed");
    auto type = cast<RankedTensorType>(v.getType());
    Type elem = type.getElementType();
    bool fragments = (want.kind == LayoutKind::A || want.kind == LayoutKind::Acc) &&
                     (elem.isBF16() || elem.isF16()) && want.cols % 16 == 0;
    if (!sh->second.mem) {
      if (!fragments)
        return remember(readSwizzled(sh->second, want));
      awaitTensorCopies(sh->second);
      awaitSwizzled({sh->second.swizzled});
    } else {
      flushBarrier();
      if (!fragments)
        return remember(readSlots(sh->second.mem, want, sh->second.transposed));
    }
    // A and Acc hold the same elements per thread in another order: read A fragments
    // with ldmatrix (one per 16 x 16 block instead of 8 scalar loads), then reorder.
    Slots a;
    for (int64_t mt = 0; mt < want.mTiles; ++mt)
      for (int64_t kb = 0; kb < want.cols / 16; ++kb)
        for (Value word : aFragment(sh->second, want.mTiles, mt, kb, elem)) {
          Value pair = elem.isF16() ? word
                                    : Value(vector::BitCastOp::create(
                                          b, VectorType::get({2}, elem),
                                          vector::FromElementsOp::create(
                                              b, VectorType::get({1}, b.getI32Type()), word)));
          for (int64_t i = 0; i < 2; ++i)
            a.push_back(vector::ExtractOp::create(b, pair, ArrayRef<int64_t>{i}));
        }
    if (want.kind == LayoutKind::A)
      return remember(a);
    Slots acc(a.size());
    for (int64_t s = 0; s < int64_t(a.size()); ++s)
      acc[accSlotForOperandA(s, want.cols)] = a[s];
    return remember(acc);
  }
  Layout have = layoutOf(v);
  if (have == want)
    return it->second;
  // The one conversion that needs no data movement: an accumulator read as a left
  // operand (FlashAttention-2's P, straight from registers into the second product),
  // tessera-convert-tgpu-to-nvvm's (TgpuConvertLayoutToNvvm.cpp).
  if (convertsInRegisters(have, want)) {
    auto type = cast<RankedTensorType>(v.getType());
    Value source = tileOf(it->second, type, have);
    auto operandType = RankedTensorType::get(type.getShape(), type.getElementType(),
                                             encodingOf(want, accumulator));
    return slotsOfTile(tgpu::ConvertLayoutOp::create(b, operandType, source));
  }
  FailureOr<Slots> converted = convertThroughShared(v, want, /*transpose=*/false);
  if (failed(converted))
    return failure();
  return remember(*converted);
}

Value Distributor::stagingBuffer(const TileCopy &copy) {
  SmallVector<int64_t> shape = paddedShape(copy.shape, copy.elem);
  // A copy's buffer is its tgpu.local_alloc (the owner of its offset); loads of one
  // source and tile type share one.
  Value &mem = stagingBuffers[copy.buffer ? std::pair<Value, Type>{copy.buffer, Type()}
                                          : std::pair<Value, Type>{
                                                scalars.lookup(copy.source),
                                                MemRefType::get(shape, copy.elem)}];
  if (!mem)
    mem = workgroupBuffer(shape, copy.elem, "staging",
                          copy.buffer ? copy.buffer.getDefiningOp() : copy.op);
  return mem;
}
