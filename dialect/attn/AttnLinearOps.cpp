//===- AttnLinearOps.cpp - linear attention verifiers ---------------------===//
#include "dialect/attn/AttnDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include <cmath>

using namespace mlir;
using namespace tessera::attn;

/// Checks what linear attention and its decode step share: q [B,H,N,D], k [B,Hk,N,D],
/// v [B,Hk,N,Dv] of one float type, H % Hk == 0, out [B,H,N,Dv] of that type, static
/// head dims, a decay [H] f32 with constant values in (0, 1], and a positive scale.
static LogicalResult verifyLinearCommon(Operation *op, RankedTensorType q,
                                        RankedTensorType k, RankedTensorType v,
                                        RankedTensorType out, Value decay,
                                        std::optional<APFloat> scale) {
  if (failed(verifyRank(op, "query", q, 4)) || failed(verifyRank(op, "key", k, 4)) ||
      failed(verifyRank(op, "value", v, 4)) || failed(verifyRank(op, "output", out, 4)))
    return failure();
  if (!isFloatTensorElement(q.getElementType()))
    return op->emitOpError("query element type must be f32, f16 or bf16, got ")
           << q.getElementType();
  if (k.getElementType() != q.getElementType() || v.getElementType() != q.getElementType())
    return op->emitOpError("query, key and value must share one element type");
  if (out.getElementType() != q.getElementType())
    return op->emitOpError("output element type must match the query's");
  if (q.isDynamicDim(3) || v.isDynamicDim(3))
    return op->emitOpError("head dims (query dim 3, value dim 3) must be static");
  if (failed(verifyDimsMatch(op, "batch of key", q.getDimSize(0), k.getDimSize(0))) ||
      failed(verifyDimsMatch(op, "batch of value", q.getDimSize(0), v.getDimSize(0))) ||
      failed(verifyDimsMatch(op, "key/value heads", k.getDimSize(1), v.getDimSize(1))) ||
      failed(verifyDimsMatch(op, "query/key length", q.getDimSize(2), k.getDimSize(2))) ||
      failed(verifyDimsMatch(op, "key/value length", k.getDimSize(2), v.getDimSize(2))) ||
      failed(verifyDimsMatch(op, "query/key head dim", q.getDimSize(3), k.getDimSize(3))))
    return failure();
  int64_t h = q.getDimSize(1), hk = k.getDimSize(1);
  if (!ShapedType::isDynamic(h) && !ShapedType::isDynamic(hk) && (hk == 0 || h % hk))
    return op->emitOpError("query heads (")
           << h << ") must be a multiple of key/value heads (" << hk << ")";
  for (int i = 0; i < 3; ++i)
    if (failed(verifyDimsMatch(op, "output dim " + std::to_string(i), out.getDimSize(i),
                               q.getDimSize(i))))
      return failure();
  if (failed(verifyDimsMatch(op, "output head dim", out.getDimSize(3), v.getDimSize(3))))
    return failure();

  if (scale) {
    double x = scale->convertToDouble();
    if (!(x > 0.0) || !std::isfinite(x))
      return op->emitOpError("scale must be positive and finite, got ") << x;
  }
  if (!decay)
    return success();
  auto d = cast<RankedTensorType>(decay.getType());
  if (failed(verifyRank(op, "decay", d, 1)))
    return failure();
  if (!d.getElementType().isF32())
    return op->emitOpError("decay element type must be f32");
  if (failed(verifyDimsMatch(op, "decay length and query heads", d.getDimSize(0), h)))
    return failure();
  DenseFPElementsAttr values;
  if (matchPattern(decay, m_Constant(&values)))
    for (APFloat x : values.getValues<APFloat>()) {
      double lambda = x.convertToDouble();
      if (!(lambda > 0.0 && lambda <= 1.0))
        return op->emitOpError("decay values must lie in (0, 1], got ") << lambda;
    }
  return success();
}

/// A recurrent state: [B, H, D, Dv] f32 for query q and value v.
static LogicalResult verifyState(Operation *op, StringRef name, RankedTensorType s,
                                 RankedTensorType q, RankedTensorType v) {
  if (failed(verifyRank(op, name, s, 4)))
    return failure();
  if (!s.getElementType().isF32())
    return op->emitOpError() << name << " element type must be f32";
  int64_t expected[4] = {q.getDimSize(0), q.getDimSize(1), q.getDimSize(3), v.getDimSize(3)};
  for (int i = 0; i < 4; ++i)
    if (failed(verifyDimsMatch(op, (name + " dim " + Twine(i)).str(), s.getDimSize(i),
                               expected[i])))
      return failure();
  return success();
}

LogicalResult LinearAttentionOp::verify() {
  Operation *op = getOperation();
  auto q = getQuery().getType(), v = getValue().getType();
  if (failed(verifyLinearCommon(op, q, getKey().getType(), v, getOutput().getType(),
                                getDecay(), getScale())) ||
      failed(verifyState(op, "final_state", getFinalState().getType(), q, v)))
    return failure();
  if (getInitialState() &&
      failed(verifyState(op, "initial_state", getInitialState().getType(), q, v)))
    return failure();
  if (getDecay() && !getCausal())
    return emitOpError("decay requires causal");
  if (getNormalize() && getInitialState())
    return emitOpError("normalize cannot be combined with initial_state: the state "
                       "carries no normaliser");
  return success();
}

LogicalResult LinearDecodeOp::verify() {
  Operation *op = getOperation();
  auto q = getQuery().getType(), v = getValue().getType();
  if (failed(verifyLinearCommon(op, q, getKey().getType(), v, getOutput().getType(),
                                getDecay(), getScale())) ||
      failed(verifyState(op, "state", getState().getType(), q, v)) ||
      failed(verifyState(op, "new_state", getNewState().getType(), q, v)))
    return failure();
  if (!q.isDynamicDim(2) && q.getDimSize(2) != 1)
    return emitOpError("decodes one token: query dim 2 must be 1, got ") << q.getDimSize(2);
  return success();
}

LogicalResult LinearAttentionGradOp::verify() {
  auto q = cast<RankedTensorType>(getQuery().getType());
  auto v = cast<RankedTensorType>(getValue().getType());
  std::optional<APFloat> scale;
  if (auto a = getScaleAttr())
    scale = a.getValue();
  if (failed(verifyLinearCommon(*this, q, cast<RankedTensorType>(getKey().getType()), v,
                                cast<RankedTensorType>(getGradOutput().getType()),
                                getDecay(), scale)))
    return failure();
  if (getDecay() && !getCausal())
    return emitOpError("decay requires causal");
  if (auto s = getInitialState())
    return verifyState(*this, "initial_state", cast<RankedTensorType>(s.getType()), q, v);
  return success();
}
