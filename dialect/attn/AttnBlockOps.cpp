//===- AttnBlockOps.cpp - block-structure op verifiers --------------------===//
#include "dialect/attn/AttnDialect.h"

#include <cmath>

using namespace mlir;
using namespace tessera::attn;

static LogicalResult verifyFloat(Operation *op, StringRef name, RankedTensorType t) {
  if (!isFloatTensorElement(t.getElementType()))
    return op->emitOpError() << name << " element type must be f32, f16 or bf16, got "
                             << t.getElementType();
  return success();
}

static LogicalResult verifyI32(Operation *op, StringRef name, RankedTensorType t) {
  if (!t.getElementType().isInteger(32))
    return op->emitOpError() << name << " element type must be i32, got "
                             << t.getElementType();
  return success();
}

static LogicalResult verifyAtLeastOne(Operation *op, StringRef name, int64_t x) {
  if (x < 1)
    return op->emitOpError() << name << " must be >= 1, got " << x;
  return success();
}

static std::string dimName(StringRef what, int i) { return (what + Twine(i)).str(); }

//===----------------------------------------------------------------------===//
// CompressOp
//===----------------------------------------------------------------------===//

LogicalResult CompressOp::verify() {
  Operation *op = getOperation();
  auto in = getInput().getType(), out = getOutput().getType();
  int64_t l = getBlock(), d = getStride();
  if (failed(verifyRank(op, "input", in, 4)) || failed(verifyRank(op, "output", out, 4)) ||
      failed(verifyFloat(op, "input", in)) || failed(verifyAtLeastOne(op, "block", l)) ||
      failed(verifyAtLeastOne(op, "stride", d)))
    return failure();
  if (out.getElementType() != in.getElementType())
    return emitOpError("output element type must match the input's");
  for (int i : {0, 1, 3})
    if (failed(verifyDimsMatch(op, dimName("output dim ", i), out.getDimSize(i),
                               in.getDimSize(i))))
      return failure();
  int64_t n = in.getDimSize(2), nb = out.getDimSize(2);
  if (!ShapedType::isDynamic(n) && !ShapedType::isDynamic(nb)) {
    int64_t expected = n < l ? 0 : (n - l) / d + 1;
    if (nb != expected)
      return emitOpError("output dim 2 must be floor((N - block) / stride) + 1 = ")
             << expected << ", got " << nb;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// BlockTopKOp
//===----------------------------------------------------------------------===//

LogicalResult BlockTopKOp::verify() {
  Operation *op = getOperation();
  auto q = getQuery().getType(), kb = getBlockKeys().getType();
  auto idx = getIndices().getType();
  if (failed(verifyRank(op, "query", q, 4)) || failed(verifyRank(op, "block_keys", kb, 4)) ||
      failed(verifyRank(op, "indices", idx, 4)) || failed(verifyFloat(op, "query", q)) ||
      failed(verifyFloat(op, "block_keys", kb)) || failed(verifyI32(op, "indices", idx)))
    return failure();
  int64_t bq = getBlockQ(), bk = getBlockK(), k = getK();
  if (failed(verifyAtLeastOne(op, "block_q", bq)) ||
      failed(verifyAtLeastOne(op, "block_k", bk)) || failed(verifyAtLeastOne(op, "k", k)))
    return failure();
  if (getCausal() && bk % bq)
    return emitOpError("causal needs block_q (")
           << bq << ") to divide block_k (" << bk << ")";
  if (auto s = getScaleAttr()) {
    if (getScore() != BlockScore::softmax)
      return emitOpError("scale applies only to the softmax score");
    double x = s.getValueAsDouble();
    if (!(x > 0.0) || !std::isfinite(x))
      return emitOpError("scale must be positive and finite, got ") << x;
  }
  if (failed(verifyDimsMatch(op, "batch of block_keys", q.getDimSize(0), kb.getDimSize(0))) ||
      failed(verifyDimsMatch(op, "query/block_keys head dim", q.getDimSize(3),
                             kb.getDimSize(3))))
    return failure();
  int64_t h = q.getDimSize(1), hk = kb.getDimSize(1);
  if (!ShapedType::isDynamic(h) && !ShapedType::isDynamic(hk) && (hk == 0 || h % hk))
    return emitOpError("query heads (")
           << h << ") must be a multiple of block_keys heads (" << hk << ")";
  int64_t nq = q.getDimSize(2);
  int64_t expected[4] = {q.getDimSize(0), h,
                         ShapedType::isDynamic(nq) ? nq : (nq + bq - 1) / bq, k};
  for (int i = 0; i < 4; ++i)
    if (failed(verifyDimsMatch(op, dimName("indices dim ", i), idx.getDimSize(i),
                               expected[i])))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// LshSortOp
//===----------------------------------------------------------------------===//

LogicalResult LshSortOp::verify() {
  Operation *op = getOperation();
  auto in = getInput().getType(), r = getProjection().getType();
  auto perm = getPerm().getType();
  if (failed(verifyRank(op, "input", in, 4)) || failed(verifyRank(op, "projection", r, 2)) ||
      failed(verifyRank(op, "perm", perm, 3)) || failed(verifyFloat(op, "input", in)) ||
      failed(verifyI32(op, "perm", perm)))
    return failure();
  if (!r.getElementType().isF32())
    return emitOpError("projection element type must be f32");
  if (failed(verifyDimsMatch(op, "projection rows and head dim", r.getDimSize(0),
                             in.getDimSize(3))))
    return failure();
  int64_t bits = r.getDimSize(1);
  if (!ShapedType::isDynamic(bits) && (bits < 1 || bits > 16))
    return emitOpError("hash bits (projection dim 1) must be in [1, 16], got ") << bits;
  for (int i = 0; i < 3; ++i)
    if (failed(verifyDimsMatch(op, dimName("perm dim ", i), perm.getDimSize(i),
                               in.getDimSize(i))))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// GatherRowsOp / ScatterRowsOp
//===----------------------------------------------------------------------===//

/// `wide` has N rows (dim 2), `narrow` has M rows, `idx` is i32 [B or 1, H or 1, M] or
/// [M] (shared by every batch and head); all other dims of `wide` and `narrow` agree.
static LogicalResult verifyRows(Operation *op, RankedTensorType wide, StringRef wideName,
                                RankedTensorType narrow, StringRef narrowName,
                                RankedTensorType idx) {
  for (auto [name, t] : {std::pair{wideName, wide}, {narrowName, narrow}})
    if (t.getRank() != 3 && t.getRank() != 4)
      return op->emitOpError() << name << " must have rank 3 or 4, got " << t;
  if (idx.getRank() != 1 && idx.getRank() != 3)
    return op->emitOpError() << "indices must have rank 1 or 3, got " << idx;
  if (failed(verifyI32(op, "indices", idx)))
    return failure();
  if (narrow.getRank() != wide.getRank() ||
      narrow.getElementType() != wide.getElementType())
    return op->emitOpError() << narrowName << " and " << wideName
                             << " must share rank and element type";
  for (int i = 0; i < wide.getRank(); ++i)
    if (i != 2 && failed(verifyDimsMatch(op, dimName("row shape dim ", i),
                                         narrow.getDimSize(i), wide.getDimSize(i))))
      return failure();
  for (int i = 0; i < 2 && idx.getRank() == 3; ++i)
    if (idx.getDimSize(i) != 1 &&
        failed(verifyDimsMatch(op, dimName("indices dim ", i), idx.getDimSize(i),
                               wide.getDimSize(i))))
      return failure();
  return verifyDimsMatch(op, "index count and " + narrowName.str() + " rows",
                         idx.getDimSize(idx.getRank() - 1), narrow.getDimSize(2));
}

LogicalResult GatherRowsOp::verify() {
  return verifyRows(*this, getInput().getType(), "input", getOutput().getType(), "output",
                    getIndices().getType());
}

LogicalResult ScatterRowsOp::verify() {
  auto in = getInput().getType(), out = getOutput().getType();
  if (failed(verifyRows(*this, out, "output", in, "input", getIndices().getType())))
    return failure();
  if (!in.isDynamicDim(2) && !out.isDynamicDim(2) && in.getDimSize(2) > out.getDimSize(2))
    return emitOpError("scatters ") << in.getDimSize(2) << " distinct rows into "
                                    << out.getDimSize(2);
  return success();
}

//===----------------------------------------------------------------------===//
// GateOp
//===----------------------------------------------------------------------===//

LogicalResult GateOp::verify() {
  Operation *op = getOperation();
  auto g = getGates().getType(), out = getOutput().getType();
  if (getPartials().empty())
    return emitOpError("needs at least one partial output");
  auto p = cast<RankedTensorType>(getPartials().front().getType());
  for (Value other : getPartials())
    if (other.getType() != p)
      return emitOpError("partial outputs must share one type");
  if (failed(verifyRank(op, "partial output", p, 4)) || failed(verifyRank(op, "gates", g, 4)) ||
      failed(verifyFloat(op, "partial output", p)) || failed(verifyFloat(op, "gates", g)))
    return failure();
  if (out != p)
    return emitOpError("output type must equal the partial outputs' type");
  for (int i = 0; i < 3; ++i)
    if (failed(verifyDimsMatch(op, dimName("gates dim ", i), g.getDimSize(i),
                               p.getDimSize(i))))
      return failure();
  return verifyDimsMatch(op, "gate count and partial outputs", g.getDimSize(3),
                         int64_t(getPartials().size()));
}
