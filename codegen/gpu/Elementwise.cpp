//===- Elementwise.cpp - element-wise ops, reductions, broadcasts -----------===//
//
// Work that needs no tensor core: reductions across warps (lane shuffles, then a shared
// scratch), ranges, the row rescale that skips a warp whose factors are all 1, and the
// flattening of tiles into loop-carried scalars. Element-wise ops, broadcasts and
// reductions within a warp's rows are handed to their conversion patterns
// (tessera-convert-tgpu-to-nvvm) on tiles cast from their operands' slots (`handOff`).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/TgpuToNvvm.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

Slots Distributor::combineWarps(tile::Combiner kind, ArrayRef<Value> values,
                                function_ref<Value(int64_t)> column, int64_t columns) {
  Value mem = scratchBuffer({numWarps, columns}, values.front().getType());
  settleShared(); // earlier readers of the scratch are done
  for (auto [i, v] : llvm::enumerate(values))
    memref::StoreOp::create(b, v, mem, ValueRange{warp, column(i)});
  tgpu::BarrierOp::create(b);
  Slots out;
  for (size_t i = 0; i < values.size(); ++i) {
    Value acc;
    for (int64_t w = 0; w < numWarps; ++w) {
      Value x = memref::LoadOp::create(b, mem,
                                       ValueRange{arith::ConstantIndexOp::create(b, w), column(i)});
      acc = acc ? combineValues(b, b.getLoc(), kind, acc, x) : x;
    }
    out.push_back(acc);
  }
  barrierPending = true; // before the scratch is written again
  return out;
}

LogicalResult Distributor::lowerReduce(tile::ReduceOp op) {
  Layout in = layoutOf(op.getInput());
  FailureOr<Slots> values = slotsOf(op.getInput(), in);
  if (failed(values))
    return failure();
  // Along the rows a warp holds: tessera-convert-tgpu-to-nvvm's (TgpuReduceToNvvm.cpp).
  if (reducesWithinWarp(in, op.getAxis())) {
    IRMapping operands;
    operands.map(op.getInput(), tileOf(*values, op.getInput().getType(), in));
    tiles[op.getResult()] = handOff(op, operands);
    return success();
  }
  if (in.kind != LayoutKind::Acc && in.kind != LayoutKind::Row && in.kind != LayoutKind::Col)
    return op.emitError("the GPU target reduces accumulator, row and column tiles (and "
                        "narrow tiles along their rows) only");
  // Across warps: through a shared scratch.
  tile::Combiner kind = op.getCombiner();
  auto fold = [&](Value acc, Value v) {
    return acc ? combineValues(b, b.getLoc(), kind, acc, v) : v;
  };
  if (in.kind != LayoutKind::Acc) {
    // To one value: a column tile's quads hold different columns (every warp all of
    // them); a row tile's 8 quads hold different rows and so do its warps.
    Value acc;
    for (Value v : *values)
      acc = fold(acc, v);
    if (in.kind == LayoutKind::Col) {
      acc = combineLanes(b, b.getLoc(), kind, acc, {1, 2});
    } else {
      acc = combineLanes(b, b.getLoc(), kind, acc, {4, 8, 16});
      acc = combineWarps(
          kind, {acc}, [&](int64_t) { return arith::ConstantIndexOp::create(b, 0); }, 1)[0];
    }
    scalars.map(op.getResult(), acc);
    return success();
  }
  // Over rows: each thread's rows (both halves of every m-tile) per column slot, then
  // the 8 quads of a warp, then the warps.
  int64_t perTile = in.cols / 2;
  Layout out{LayoutKind::Col, in.cols, 0, 1};
  Slots acc(numSlots(out));
  for (int64_t s = 0; s < numSlots(in); ++s) {
    int64_t r = s % perTile, c = 2 * (r / 4) + (r % 2);
    acc[c] = fold(acc[c], (*values)[s]);
  }
  for (Value &v : acc)
    v = combineLanes(b, b.getLoc(), kind, v, {4, 8, 16});
  tiles[op.getResult()] = combineWarps(
      kind, acc, [&](int64_t c) { return position(out, c).first; }, in.cols);
  return success();
}

LogicalResult Distributor::lowerBroadcast(tile::BroadcastOp op) {
  std::optional<Layout> in = broadcastSource(layoutOf(op.getResult()), op.getAxis());
  if (!in)
    return op.emitError("the GPU target broadcasts into accumulator and row-span tiles only");
  FailureOr<Slots> slots = slotsOf(op.getInput(), *in);
  if (failed(slots))
    return failure();
  IRMapping operands;
  operands.map(op.getInput(), tileOf(*slots, op.getInput().getType(), *in));
  tiles[op.getResult()] = handOff(op, operands);
  return success();
}

LogicalResult Distributor::lowerRange(tile::RangeOp op) {
  Layout l = layoutOf(op.getResult());
  Value start = scalars.lookup(op.getStart());
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SlotCoord c = slotCoord(l, s);
    Value i = arith::AddIOp::create(b, start, coord(l, c.rowBase, c.row));
    out.push_back(arith::IndexCastOp::create(b, b.getI32Type(), i));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

/// The row vector `op` multiplies an accumulator by along its rows (an online softmax's
/// rescale), with the accumulator in `scaled`; null otherwise.
static Value rowFactor(arith::MulFOp op, Value &scaled) {
  for (int i = 0; i < 2; ++i) {
    auto broadcast = op->getOperand(i).getDefiningOp<tile::BroadcastOp>();
    if (broadcast && broadcast.getAxis() == 1) {
      scaled = op->getOperand(1 - i);
      return broadcast.getInput();
    }
  }
  return {};
}

/// A warp whose rows are all scaled by exactly 1 skips the multiplies: one vote and a
/// branch instead of a product per element. An online softmax's factor is 1 for every
/// key tile that moves no row's maximum (most of them, see SoftmaxTileProgram's kMaxLag).
LogicalResult Distributor::lowerRowScale(arith::MulFOp op, Value scaled, Value factor) {
  Layout l = layoutOf(op.getResult());
  Value broadcast = op.getLhs() == scaled ? op.getRhs() : op.getLhs();
  FailureOr<Slots> rows = slotsOf(factor, {LayoutKind::Row, l.rows, 0, l.mTiles});
  FailureOr<Slots> in = slotsOf(scaled, l);
  FailureOr<Slots> factors = slotsOf(broadcast, l);
  if (failed(rows) || failed(in) || failed(factors))
    return failure();
  Type elem = getElementTypeOrSelf(op.getType());
  Value one = arith::ConstantOp::create(b, b.getFloatAttr(elem, 1.0));
  Value allOne = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
  for (Value r : *rows)
    allOne = arith::AndIOp::create(
        b, allOne, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, r, one));
  Value warpAllOne = NVVM::VoteSyncOp::create(
      b, b.getI1Type(), arith::ConstantIntOp::create(b, b.getI32Type(), -1), allOne,
      NVVM::VoteSyncKind::all);
  auto ifOp = scf::IfOp::create(b, SmallVector<Type>(in->size(), elem), warpAllOne,
                                /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    scf::YieldOp::create(b, *in);
    b.setInsertionPointToStart(ifOp.elseBlock());
    Slots out;
    for (auto [x, f] : llvm::zip(*in, *factors))
      out.push_back(arith::MulFOp::create(b, x, f, op.getFastmathAttr()));
    scf::YieldOp::create(b, out);
  }
  tiles[op.getResult()] = Slots(ifOp.getResults().begin(), ifOp.getResults().end());
  return success();
}

LogicalResult Distributor::lowerElementwise(Operation *op) {
  Value result = op->getResult(0);
  Layout l = layoutOf(result);
  // Worth a branch only where a thread holds many elements per row factor.
  constexpr int64_t kMinSlotsPerFactor = 8;
  if (auto mul = dyn_cast<arith::MulFOp>(op);
      mul && l.kind == LayoutKind::Acc && l.cols / 2 >= kMinSlotsPerFactor) {
    Value scaled;
    if (Value factor = rowFactor(mul, scaled))
      return lowerRowScale(mul, scaled, factor);
  }
  IRMapping operands;
  for (Value v : op->getOperands()) {
    if (!isa<RankedTensorType>(v.getType())) {
      operands.map(v, scalars.lookup(v));
      continue;
    }
    FailureOr<Slots> s = slotsOf(v, l);
    if (failed(s))
      return failure();
    operands.map(v, tileOf(*s, v.getType(), l));
  }
  tiles[result] = handOff(op, operands);
  return success();
}

Value Distributor::tileOf(ArrayRef<Value> slots, Type like, const Layout &l) {
  auto tile = cast<RankedTensorType>(like);
  auto type = RankedTensorType::get(tile.getShape(), tile.getElementType(),
                                    encodingOf(l, accumulator));
  return UnrealizedConversionCastOp::create(b, type, slots).getResult(0);
}

Slots Distributor::handOff(Operation *op, IRMapping &operands) {
  return slotsOfTile(b.clone(*op, operands)->getResult(0));
}

Slots Distributor::slotsOfTile(Value tile) {
  auto type = cast<RankedTensorType>(tile.getType());
  auto slots = UnrealizedConversionCastOp::create(
      b, SmallVector<Type>(numSlots(layoutOf(tile)), type.getElementType()), tile);
  return Slots(slots.getResults().begin(), slots.getResults().end());
}

LogicalResult Distributor::flatten(ValueRange values, ValueRange like,
                                   SmallVectorImpl<Value> &out) {
  for (auto [v, l] : llvm::zip(values, like)) {
    if (!isa<RankedTensorType>(v.getType())) {
      out.push_back(scalars.lookup(v));
      continue;
    }
    FailureOr<Slots> s = slotsOf(v, layoutOf(l));
    if (failed(s))
      return failure();
    if (!pairedSlots(v.getType(), layoutOf(l))) {
      out.append(s->begin(), s->end());
      continue;
    }
    for (size_t i = 0; i < s->size(); i += 2)
      out.push_back(packHalves(b, (*s)[i], (*s)[i + 1]));
  }
  return success();
}

bool Distributor::pairedSlots(Type type, const Layout &layout) {
  auto tile = dyn_cast<RankedTensorType>(type);
  return tile && isa<FloatType>(tile.getElementType()) &&
         tile.getElementType().getIntOrFloatBitWidth() == 16 && numSlots(layout) % 2 == 0;
}

void Distributor::unflatten(ValueRange values, ValueRange flat) {
  size_t pos = 0;
  for (Value v : values) {
    if (!isa<RankedTensorType>(v.getType())) {
      scalars.map(v, flat[pos++]);
      continue;
    }
    int64_t n = numSlots(layoutOf(v));
    if (pairedSlots(v.getType(), layoutOf(v))) {
      Type elem = cast<RankedTensorType>(v.getType()).getElementType();
      Slots slots;
      for (int64_t i = 0; i < n / 2; ++i) {
        auto [lo, hi] = unpackHalves(b, flat[pos++], elem);
        slots.push_back(lo);
        slots.push_back(hi);
      }
      tiles[v] = std::move(slots);
      continue;
    }
    tiles[v] = Slots(flat.begin() + pos, flat.begin() + pos + n);
    pos += n;
  }
}
