//===- CombineTilePrograms.cpp - merges and gated sums of partial outputs -===//
//
// attn.merge (log-sum-exp merge of two partial softmax results, SEMANTICS.md §6) and
// attn.gate (NSA's gated sum of branches): one program per tile of block_m rows of a
// (head, batch); both are element-wise over rows, so a tile is read and written once.
//
//===----------------------------------------------------------------------===//
#include "passes/TilePrograms.h"

#include "passes/TileBuilder.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace tessera;

/// The static last dim of a rank-4 buffer (tiles have static shapes).
static FailureOr<int64_t> staticRowWidth(Operation *op, Value buffer) {
  int64_t w = cast<MemRefType>(buffer.getType()).getDimSize(3);
  if (ShapedType::isDynamic(w))
    return op->emitError("needs a static last dim (head or value dim) to be tiled");
  return w;
}

/// A grid of one program per tile of `bm` rows of each (head, batch) of `out`
/// ([B, H, N, ...]); `body` gets the tile's first row, head and batch.
static void forEachRowTile(TileBuilder &t, Value out, int64_t bm, tile::ConfigAttr config,
                           llvm::function_ref<void(Value, Value, Value)> body) {
  t.grid({t.ceilDiv(t.dim(out, 2), bm), t.dim(out, 1), t.dim(out, 0)}, config,
         [&](ArrayRef<Value> id) {
           body(arith::MulIOp::create(t.b, id[0], t.cIndex(bm)), id[1], id[2]);
         });
}

LogicalResult tessera::buildMergeTileProgram(ImplicitLocOpBuilder &b, attn::MergeOp op,
                                             const IRMapping &buffers,
                                             tile::ConfigAttr config) {
  TileBuilder t(b);
  Value oa = buffers.lookup(op.getOutA()), la = buffers.lookup(op.getLseA());
  Value ob = buffers.lookup(op.getOutB()), lb = buffers.lookup(op.getLseB());
  Value out = buffers.lookup(op.getOutput()), lse = buffers.lookup(op.getLse());
  FailureOr<int64_t> dv = staticRowWidth(op, out);
  if (failed(dv))
    return failure();
  int64_t bm = config.getBlockM();
  forEachRowTile(t, out, bm, config, [&](Value m0, Value h, Value bb) {
           Value c0 = t.cIndex(0);
           Value lA = t.loadF32(la, {bm}, {bb, h, m0}), lB = t.loadF32(lb, {bm}, {bb, h, m0});
           // L = m + log(e^(La - m) + e^(Lb - m)); a row empty on both sides (m = -inf)
           // keeps L = -inf and O = 0 instead of NaN.
           Value negInf = t.splatF32({bm}, -std::numeric_limits<float>::infinity());
           Value zero = t.splatF32({bm}, 0.0f);
           Value m = arith::MaxNumFOp::create(b, lA, lB);
           Value empty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, m, negInf);
           Value base = t.select(empty, zero, m);
           Value eA = math::ExpOp::create(b, arith::SubFOp::create(b, lA, base));
           Value eB = math::ExpOp::create(b, arith::SubFOp::create(b, lB, base));
           Value sum = arith::AddFOp::create(b, eA, eB);
           Value l = t.select(empty, negInf,
                              arith::AddFOp::create(b, base, math::LogOp::create(b, sum)));
           Value safeSum = t.select(empty, t.splatF32({bm}, 1.0f), sum);
           Value wA = arith::DivFOp::create(b, eA, safeSum);
           Value wB = arith::DivFOp::create(b, eB, safeSum);
           Value o = arith::AddFOp::create(
               b,
               arith::MulFOp::create(b, t.broadcast(wA, 1, *dv),
                                     t.loadF32(oa, {bm, *dv}, {bb, h, m0, c0})),
               arith::MulFOp::create(b, t.broadcast(wB, 1, *dv),
                                     t.loadF32(ob, {bm, *dv}, {bb, h, m0, c0})));
           t.storeAs(o, out, {bb, h, m0, c0});
           t.storeAs(l, lse, {bb, h, m0});
         });
  return success();
}

LogicalResult tessera::buildGateTileProgram(ImplicitLocOpBuilder &b, attn::GateOp op,
                                            const IRMapping &buffers,
                                            tile::ConfigAttr config) {
  TileBuilder t(b);
  Value gates = buffers.lookup(op.getGates()), out = buffers.lookup(op.getOutput());
  FailureOr<int64_t> dv = staticRowWidth(op, out);
  if (failed(dv))
    return failure();
  int64_t bm = config.getBlockM();
  forEachRowTile(t, out, bm, config, [&](Value m0, Value h, Value bb) {
           Value c0 = t.cIndex(0);
           Value acc = t.splatF32({bm, *dv}, 0.0f);
           for (auto [i, partial] : llvm::enumerate(op.getPartials())) {
             // Gate column i as a [bm, 1] tile, widened over the value columns.
             Value g = t.reduce(tile::Combiner::sum,
                                t.loadF32(gates, {bm, 1}, {bb, h, m0, t.cIndex(i)}), 1);
             Value part = t.loadF32(buffers.lookup(partial), {bm, *dv}, {bb, h, m0, c0});
             acc = arith::AddFOp::create(
                 b, acc, arith::MulFOp::create(b, t.broadcast(g, 1, *dv), part));
           }
           t.storeAs(acc, out, {bb, h, m0, c0});
         });
  return success();
}
