//===- ScatterAdd.cpp - tile.scatter_add as global atomic reductions -------===//
//
// Each thread adds the elements it holds: one `red.global.add.f32` per slot, under a
// branch on the mask and the table's bounds. A tile added at an offset (every index a
// splat or a range along the tile: the backward's dQ sums) takes one address per thread
// plus a constant per slot, and checks bounds only along ranges that may overrun. Entries several threads (or programs) add
// to sum in whatever order the memory system takes them: not the same bits every run.
// LLVM's atomicrmw fadd selects `atom` (which returns the old value) even when nothing
// reads it; `red` is the fire-and-forget form, so it is emitted directly (inline asm).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

/// The table's (generic) address converted to the global window the `.global` state
/// space names, then the reduction.
static constexpr const char *kReduceAsm = "{\n.reg .b64 g;\ncvta.to.global.u64 g, $0;\n"
                                          "red.global.add.f32 [g], $1;\n}";

/// Layouts in which every element of the tile lives in exactly one thread (the others
/// repeat elements across lanes or warps, and would add them more than once).
static bool hasOneOwnerPerElement(LayoutKind kind) {
  return kind == LayoutKind::Acc || kind == LayoutKind::A;
}

namespace {
/// An index tile of a tile added at an offset: one scalar everywhere (a splat; `axis`
/// -1) or `start` plus the position along tile axis `axis` (a broadcast tile.range).
struct OffsetIndex {
  Value start; // the splat's scalar or the range's start (index or i32)
  int axis = -1;
  int64_t extent = 0; // the range's length
};
} // namespace

/// `index` as an OffsetIndex, if it is one.
static std::optional<OffsetIndex> offsetIndex(Value index) {
  if (auto splat = index.getDefiningOp<tensor::SplatOp>())
    return OffsetIndex{splat.getInput()};
  auto broadcast = index.getDefiningOp<tile::BroadcastOp>();
  auto range = broadcast ? broadcast.getInput().getDefiningOp<tile::RangeOp>() : nullptr;
  if (!range || cast<RankedTensorType>(index.getType()).getRank() != 2)
    return std::nullopt;
  // The broadcast inserts axis `a`; the range runs along the other.
  return OffsetIndex{range.getStart(), broadcast.getAxis() == 0 ? 1 : 0,
                     cast<RankedTensorType>(range.getType()).getDimSize(0)};
}

/// Whether every index is an OffsetIndex and one at least runs along the tile: a tile
/// added at an offset (the backward's dQ sums), whose addresses are one base per thread
/// plus a constant per slot.
static bool addsAtAnOffset(tile::ScatterAddOp op) {
  bool along = false;
  for (Value index : op.getIndices()) {
    std::optional<OffsetIndex> o = offsetIndex(index);
    if (!o)
      return false;
    along |= o->axis >= 0;
  }
  return along && !op.getMask();
}

LogicalResult Distributor::lowerTileAddAtOffset(tile::ScatterAddOp op, const Layout &layout) {
  FailureOr<Slots> values = slotsOf(op.getValues(), layout);
  if (failed(values))
    return failure();
  Value table = scalars.lookup(op.getTable());
  auto meta = memref::ExtractStridedMetadataOp::create(b, table);
  auto index = [&](Value v) {
    return v.getType().isIndex() ? v : arith::IndexCastOp::create(b, b.getIndexType(), v);
  };
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  // Per thread: the offset of its position (row base, column base) in the tile, and
  // which dimensions need a bounds check per slot (those a range may overrun).
  Value threadOffset = meta.getOffset();
  Value uniformInside;
  SmallVector<std::pair<int64_t, OffsetIndex>> checked; // (dimension, index)
  std::array<Value, 2> axisStride{c(0), c(0)};
  SlotCoord first = slotCoord(layout, 0);
  std::array<Value, 2> laneBase{base(layout, first.rowBase), base(layout, first.colBase)};
  for (auto [d, tileOfIndices] : llvm::enumerate(op.getIndices())) {
    OffsetIndex o = *offsetIndex(tileOfIndices);
    Value stride = meta.getStrides()[d], size = meta.getSizes()[d];
    Value start = index(scalars.lookup(o.start));
    threadOffset = arith::AddIOp::create(b, threadOffset, arith::MulIOp::create(b, start, stride));
    if (o.axis < 0) {
      Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, start, size);
      uniformInside = uniformInside ? arith::AndIOp::create(b, uniformInside, inside).getResult()
                                    : inside;
      continue;
    }
    axisStride[o.axis] = arith::AddIOp::create(b, axisStride[o.axis], stride);
    threadOffset = arith::AddIOp::create(
        b, threadOffset, arith::MulIOp::create(b, laneBase[o.axis], stride));
    // A range of constant start that ends within a static dimension stays inside.
    int64_t staticSize = cast<MemRefType>(op.getTable().getType()).getDimSize(d);
    std::optional<int64_t> from = getConstantIntValue(o.start);
    if (!from || *from < 0 || ShapedType::isDynamic(staticSize) || *from + o.extent > staticSize)
      checked.push_back({int64_t(d), o});
  }
  // The table's global address once; each slot adds its constant offset to it.
  Value base = arith::IndexCastUIOp::create(
      b, b.getI64Type(), memref::ExtractAlignedPointerAsIndexOp::create(b, table));
  Value global = inlinePtx(b, b.getLoc(), b.getI64Type(), ValueRange{base},
                           "cvta.to.global.u64 $0, $1;", "=l,l");
  Value threadAddress = arith::AddIOp::create(
      b, global,
      arith::IndexCastUIOp::create(b, b.getI64Type(), arith::MulIOp::create(b, threadOffset, c(4))));
  // Opaque where used: LLVM would otherwise hoist each slot's lane position and offset
  // out of the loop around, one 64-bit register per slot held across it (spills).
  for (int axis = 0; axis < 2; ++axis) {
    laneBase[axis] = opaqueIndex(laneBase[axis]);
    axisStride[axis] = opaqueIndex(axisStride[axis]);
  }
  DenseMap<std::pair<int64_t, int64_t>, Value> insideAt; // (dimension, slot row / col)
  for (int64_t s = 0; s < numSlots(layout); ++s) {
    SlotCoord sc = slotCoord(layout, s);
    assert(sc.rowBase == first.rowBase && sc.colBase == first.colBase);
    std::array<int64_t, 2> at{sc.row, sc.col};
    Value add = uniformInside;
    for (auto &[d, o] : checked) {
      Value &inside = insideAt[{d, at[o.axis]}];
      if (!inside) {
        Value i = arith::AddIOp::create(
            b, index(scalars.lookup(o.start)),
            arith::AddIOp::create(b, laneBase[o.axis], c(at[o.axis])));
        inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, meta.getSizes()[d]);
      }
      add = add ? arith::AndIOp::create(b, add, inside).getResult() : inside;
    }
    Value elements = arith::AddIOp::create(
        b, arith::MulIOp::create(b, c(at[0]), axisStride[0]),
        arith::MulIOp::create(b, c(at[1]), axisStride[1]));
    Value address = arith::AddIOp::create(
        b, threadAddress,
        arith::IndexCastUIOp::create(b, b.getI64Type(), arith::MulIOp::create(b, elements, c(4))));
    Value value = (*values)[s];
    if (!add) {
      inlinePtx(b, b.getLoc(), Type(), ValueRange{address, value}, "red.global.add.f32 [$0], $1;",
                "l,f");
      continue;
    }
    // Predicated, not branched: the slots' reductions stay one straight-line block.
    Value predicate = arith::ExtUIOp::create(b, b.getI32Type(), add);
    inlinePtx(b, b.getLoc(), Type(), ValueRange{address, value, predicate},
              "{\n.reg .pred p;\nsetp.ne.b32 p, $2, 0;\n@p red.global.add.f32 [$0], $1;\n}",
              "l,f,r");
  }
  return success();
}

LogicalResult Distributor::lowerScatterAdd(tile::ScatterAddOp op) {
  std::optional<Layout> layout;
  SmallVector<Value> operands{op.getValues()};
  llvm::append_range(operands, op.getIndices());
  if (op.getMask())
    operands.push_back(op.getMask());
  for (Value v : operands)
    if (!layout && !isSplat(v))
      layout = layoutOf(v);
  if (!layout || !hasOneOwnerPerElement(layout->kind))
    return op.emitError("scatter_add on the GPU needs a tile spread as an mma accumulator "
                        "or left operand (one thread per element)");
  if (addsAtAnOffset(op))
    return lowerTileAddAtOffset(op, *layout);
  FailureOr<Slots> values = slotsOf(op.getValues(), *layout);
  if (failed(values))
    return failure();
  SmallVector<Slots> indices;
  for (Value tileOfIndices : op.getIndices()) {
    FailureOr<Slots> s = slotsOf(tileOfIndices, *layout);
    if (failed(s))
      return failure();
    indices.push_back(std::move(*s));
  }
  Slots mask;
  if (op.getMask()) {
    FailureOr<Slots> s = slotsOf(op.getMask(), *layout);
    if (failed(s))
      return failure();
    mask = std::move(*s);
  }

  // The table's address, offset and strides (any strided layout).
  Value table = scalars.lookup(op.getTable());
  auto meta = memref::ExtractStridedMetadataOp::create(b, table);
  Value base = arith::IndexCastUIOp::create(
      b, b.getI64Type(), memref::ExtractAlignedPointerAsIndexOp::create(b, table));
  Value elementBytes = arith::ConstantIndexOp::create(b, 4);
  for (int64_t s = 0; s < numSlots(*layout); ++s) {
    Value add = mask.empty() ? Value() : mask[s];
    Value offset = meta.getOffset();
    for (auto [d, slots] : llvm::enumerate(indices)) {
      Value i = arith::IndexCastOp::create(b, b.getIndexType(), slots[s]);
      // Unsigned: a negative index is outside too.
      Value inside =
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, meta.getSizes()[d]);
      add = add ? arith::AndIOp::create(b, add, inside).getResult() : inside;
      offset = arith::AddIOp::create(b, offset,
                                     arith::MulIOp::create(b, i, meta.getStrides()[d]));
    }
    Value bytes = arith::IndexCastUIOp::create(
        b, b.getI64Type(), arith::MulIOp::create(b, offset, elementBytes));
    Value address = arith::AddIOp::create(b, base, bytes);
    Value value = (*values)[s];
    auto reduce = [&](OpBuilder &nb, Location loc) {
      inlinePtx(nb, loc, Type(), ValueRange{address, value}, kReduceAsm, "l,f");
    };
    if (!add) { // a 0-d table without a mask
      reduce(b, b.getLoc());
      continue;
    }
    scf::IfOp::create(b, add, [&](OpBuilder &nb, Location loc) {
      reduce(nb, loc);
      scf::YieldOp::create(nb, loc);
    });
  }
  return success();
}
