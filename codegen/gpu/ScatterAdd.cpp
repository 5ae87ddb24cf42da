//===- ScatterAdd.cpp - tile.scatter_add as global atomic reductions -------===//
//
// Each thread adds the elements it holds: one `red.global.add.f32` per slot, under a
// branch on the mask and the table's bounds. Entries several threads (or programs) add
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
