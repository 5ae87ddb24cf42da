//===- AttnOps.cpp - softmax attention and combiner verifiers -------------===//
#include "dialect/attn/AttnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include <cmath>

using namespace mlir;
using namespace tessera::attn;

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

/// The softmax scale: the `scale` attribute, else D^-1/2 (forward and gradient alike).
template <typename OpT>
static double effectiveScale(OpT op) {
  if (auto s = op.getScaleAttr())
    return s.getValueAsDouble();
  return 1.0 / std::sqrt(double(op.getQuery().getType().getDimSize(3)));
}
double AttentionOp::getEffectiveScale() { return effectiveScale(*this); }
double AttentionGradOp::getEffectiveScale() { return effectiveScale(*this); }

/// The checks attn.attention and attn.attention_grad share: q, k, v, the forward's
/// output `o` and lse `l`, the masks, scale and block lists.
template <typename OpT>
static LogicalResult verifyAttentionSignature(OpT self, RankedTensorType o,
                                              RankedTensorType l) {
  Operation *op = self.getOperation();
  auto q = self.getQuery().getType(), k = self.getKey().getType(),
       v = self.getValue().getType();
  if (failed(verifyRank(op, "query", q, 4)) || failed(verifyRank(op, "key", k, 4)) ||
      failed(verifyRank(op, "value", v, 4)) || failed(verifyRank(op, "output", o, 4)) ||
      failed(verifyRank(op, "lse", l, 3)))
    return failure();
  if (!isFloatTensorElement(q.getElementType()))
    return self.emitOpError("query element type must be f32, f16 or bf16, got ")
           << q.getElementType();
  if (k.getElementType() != q.getElementType() ||
      v.getElementType() != q.getElementType())
    return self.emitOpError("query, key and value must share one element type");
  if (o.getElementType() != q.getElementType())
    return self.emitOpError("output element type must match the query's");
  if (!l.getElementType().isF32())
    return self.emitOpError("lse element type must be f32");
  if (q.isDynamicDim(3) || v.isDynamicDim(3))
    return self.emitOpError("head dims (query dim 3, value dim 3) must be static");
  // Batch, heads, sequence and head-dim agreement.
  if (failed(verifyDimsMatch(op, "batch of key", q.getDimSize(0), k.getDimSize(0))) ||
      failed(verifyDimsMatch(op, "batch of value", q.getDimSize(0), v.getDimSize(0))) ||
      failed(verifyDimsMatch(op, "key/value heads", k.getDimSize(1), v.getDimSize(1))) ||
      failed(verifyDimsMatch(op, "key/value length", k.getDimSize(2), v.getDimSize(2))) ||
      failed(verifyDimsMatch(op, "query/key head dim", q.getDimSize(3), k.getDimSize(3))))
    return failure();
  int64_t h = q.getDimSize(1), hk = k.getDimSize(1);
  if (!ShapedType::isDynamic(h) && !ShapedType::isDynamic(hk) && (hk == 0 || h % hk))
    return self.emitOpError("query heads (") << h << ") must be a multiple of key/value heads ("
                                        << hk << ")";
  for (int i = 0; i < 3; ++i)
    if (failed(verifyDimsMatch(op, "output dim " + std::to_string(i), o.getDimSize(i),
                               q.getDimSize(i))) ||
        failed(verifyDimsMatch(op, "lse dim " + std::to_string(i), l.getDimSize(i),
                               q.getDimSize(i))))
      return failure();
  if (failed(verifyDimsMatch(op, "output head dim", o.getDimSize(3), v.getDimSize(3))))
    return failure();
  if (auto s = self.getScaleAttr()) {
    double x = s.getValueAsDouble();
    if (!(x > 0.0) || !std::isfinite(x))
      return self.emitOpError("scale must be positive and finite, got ") << x;
  }
  if (auto w = self.getWindowAttr()) {
    // A window without causality keeps |j - (i + Nk - Nq)| < w.
    if (w.getInt() < 1)
      return self.emitOpError("window must be >= 1, got ") << w.getInt();
  }
  bool hasBlocks = static_cast<bool>(self.getBlockIndices());
  if (hasBlocks != bool(self.getBlockQAttr()) || hasBlocks != bool(self.getBlockKAttr()))
    return self.emitOpError("block_indices requires block_q and block_k, and they require it");
  if (hasBlocks) {
    auto bi = cast<RankedTensorType>(self.getBlockIndices().getType());
    if (failed(verifyRank(op, "block_indices", bi, 4)))
      return failure();
    if (!bi.getElementType().isInteger(32))
      return self.emitOpError("block_indices element type must be i32");
    if (failed(verifyDimsMatch(op, "block_indices batch", bi.getDimSize(0), q.getDimSize(0))))
      return failure();
    for (int64_t b : {self.getBlockQAttr().getInt(), self.getBlockKAttr().getInt()})
      if (b < 1)
        return self.emitOpError("block sizes must be >= 1, got ") << b;
    if (!bi.isDynamicDim(1) && bi.getDimSize(1) != 1 &&
        failed(verifyDimsMatch(op, "block_indices heads", bi.getDimSize(1), h)))
      return failure();
    if (!q.isDynamicDim(2) && !bi.isDynamicDim(2)) {
      int64_t bq = self.getBlockQAttr().getInt();
      if (bi.getDimSize(2) != (q.getDimSize(2) + bq - 1) / bq)
        return self.emitOpError("block_indices dim 2 must be ceil(Nq / block_q)");
    }
  }
  return success();
}

LogicalResult AttentionOp::verify() {
  return verifyAttentionSignature(*this, getOutput().getType(), getLse().getType());
}

LogicalResult AttentionGradOp::verify() {
  // grad_output and the gradients match their primal's types (AllTypesMatch).
  if (failed(verifyAttentionSignature(*this, cast<RankedTensorType>(getOutput().getType()),
                                      cast<RankedTensorType>(getLse().getType()))))
    return failure();
  if (getGradTables().size() != getTableGrads().size())
    return emitOpError("needs one table gradient result per table in table_grads, got ")
           << getTableGrads().size() << " for " << getGradTables().size();
  for (auto [i, table, grad] : llvm::enumerate(getGradTables(), getTableGrads())) {
    if (!cast<ShapedType>(table.getType()).getElementType().isF32())
      return emitOpError("table_grads #") << i << " must be an f32 table (an integer table "
                                          << "has no gradient), got " << table.getType();
    if (grad.getType() != table.getType())
      return emitOpError("table gradient #") << i << " must have its table's type "
                                             << table.getType();
    bool readByScoreMod = hasScoreMod() && llvm::any_of(table.getUsers(), [&](Operation *u) {
      return getScoreMod().isAncestor(u->getParentRegion());
    });
    if (!readByScoreMod)
      return emitOpError("table_grads #") << i << " is not read by score_mod";
  }
  return success();
}

// The modifier regions' syntax, `(score_mod region)? (mask_mod region)?`, as a custom
// directive rather than ODS optional region groups. Works around an upstream MLIR
// (22) parser bug: an ODS-generated parser parses each region into a local
// std::unique_ptr<Region> and moves it into the OperationState only once every region
// has parsed, so on a parse error inside a region the locals are destroyed (mask_mod
// before score_mod) without the cleanup that the generic parser gives regions already
// in the OperationState (dropping the uses of every value they define). A name used
// before its definition resolves to whatever later defines it, in the same op or out
// of it: score_mod's forward references to a mask_mod block argument (fuzzer mutant
// 41:191), or an op before this one using a value score_mod defines, point into the
// freed region, and destroying the user writes to freed memory (heap corruption,
// valgrind: Region::~Region in AttentionGradOp::parse). On an error this directive
// drops the uses of every value both regions define before returning, so the parser
// reports the error and the regions are freed without dangling uses. On success the
// generated parser moves both regions into the OperationState before anything else
// can fail, and the parser's own cleanup covers them from there.
ParseResult tessera::attn::parseModRegions(OpAsmParser &parser, Region &scoreMod,
                                           Region &maskMod) {
  auto fail = [&]() -> ParseResult {
    for (Region *region : {&scoreMod, &maskMod})
      for (Block &block : *region)
        block.dropAllDefinedValueUses();
    return failure();
  };
  if (succeeded(parser.parseOptionalKeyword("score_mod")) && parser.parseRegion(scoreMod))
    return fail();
  if (succeeded(parser.parseOptionalKeyword("mask_mod")) && parser.parseRegion(maskMod))
    return fail();
  return success();
}

/// Prints what parseModRegions reads, as the ODS optional groups printed it.
void tessera::attn::printModRegions(OpAsmPrinter &printer, Operation *,
                                    Region &scoreMod, Region &maskMod) {
  if (!scoreMod.empty()) {
    printer << " score_mod ";
    printer.printRegion(scoreMod);
  }
  if (!maskMod.empty()) {
    printer << " mask_mod ";
    printer.printRegion(maskMod);
  }
}

/// A modifier region holds scalar arith/math ops, reads of i32 / f32 tensors (any rank)
/// defined outside the op, and ends in one attn.yield of `resultType`.
static LogicalResult verifyModifierRegion(Operation *op, Region &region, StringRef name,
                                          ArrayRef<Type> argTypes, Type resultType) {
  if (region.empty())
    return success();
  if (!region.hasOneBlock())
    return op->emitOpError() << name << " must have exactly one block";
  Block &block = region.front();
  if (block.getNumArguments() != argTypes.size())
    return op->emitOpError() << name << " must take " << argTypes.size() << " arguments";
  for (auto [i, arg] : llvm::enumerate(block.getArguments()))
    if (arg.getType() != argTypes[i])
      return op->emitOpError() << name << " argument #" << i << " must be " << argTypes[i]
                              << ", got " << arg.getType();
  for (Operation &inner : block.without_terminator()) {
    if (auto extract = dyn_cast<tensor::ExtractOp>(inner)) {
      auto t = extract.getTensor().getType();
      Type elem = t.getElementType();
      if (t.getRank() < 1 || !(elem.isInteger(32) || elem.isF32()) ||
          region.isAncestor(extract.getTensor().getParentRegion()))
        return inner.emitOpError("in ")
               << name << ": only i32 or f32 tensors defined outside may be read";
      continue;
    }
    Dialect *d = inner.getDialect();
    if (!d || (d->getNamespace() != "arith" && d->getNamespace() != "math") ||
        inner.getNumRegions() != 0)
      return inner.emitOpError("is not allowed in ")
             << name << ": only scalar arith/math ops and tensor.extract";
    for (Type t : inner.getResultTypes())
      if (!t.isIntOrIndexOrFloat())
        return inner.emitOpError("in ") << name << " must produce a scalar";
  }
  auto yield = dyn_cast<YieldOp>(block.getTerminator());
  if (!yield)
    return op->emitOpError() << name << " must end with attn.yield";
  if (yield.getValues().size() != 1 || yield.getValues()[0].getType() != resultType)
    return yield.emitOpError() << "in " << name << " must yield one " << resultType;
  return success();
}

/// score_mod takes (score, b, h, q_idx, kv_idx) and yields a score; mask_mod takes the
/// indices and yields a bit.
static LogicalResult verifyModifierRegions(Operation *op, Region &scoreMod, Region &maskMod) {
  Builder b(op->getContext());
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  if (failed(verifyModifierRegion(op, scoreMod, "score_mod", {f32, i32, i32, i32, i32}, f32)))
    return failure();
  return verifyModifierRegion(op, maskMod, "mask_mod", {i32, i32, i32, i32}, b.getI1Type());
}

LogicalResult AttentionOp::verifyRegions() {
  return verifyModifierRegions(*this, getScoreMod(), getMaskMod());
}

LogicalResult AttentionGradOp::verifyRegions() {
  return verifyModifierRegions(*this, getScoreMod(), getMaskMod());
}

//===----------------------------------------------------------------------===//
// MergeOp
//===----------------------------------------------------------------------===//

LogicalResult MergeOp::verify() {
  Operation *op = getOperation();
  auto oa = getOutA().getType(), ob = getOutB().getType(), o = getOutput().getType();
  auto la = getLseA().getType(), lb = getLseB().getType(), l = getLse().getType();
  for (auto [name, t] : {std::pair<StringRef, RankedTensorType>{"out_a", oa}, {"out_b", ob},
                         {"output", o}})
    if (failed(verifyRank(op, name, t, 4)))
      return failure();
  for (auto [name, t] : {std::pair<StringRef, RankedTensorType>{"lse_a", la}, {"lse_b", lb},
                         {"lse", l}}) {
    if (failed(verifyRank(op, name, t, 3)))
      return failure();
    if (!t.getElementType().isF32())
      return emitOpError() << name << " element type must be f32";
  }
  if (oa.getElementType() != ob.getElementType() || o.getElementType() != oa.getElementType())
    return emitOpError("partial outputs and the output must share one element type");
  for (int i = 0; i < 4; ++i) {
    if (failed(verifyDimsMatch(op, "partial output dim " + std::to_string(i),
                               oa.getDimSize(i), ob.getDimSize(i))) ||
        failed(verifyDimsMatch(op, "output dim " + std::to_string(i), o.getDimSize(i),
                               oa.getDimSize(i))))
      return failure();
    if (i < 3)
      for (auto t : {la, lb, l})
        if (failed(verifyDimsMatch(op, "lse dim " + std::to_string(i), t.getDimSize(i),
                                   oa.getDimSize(i))))
          return failure();
  }
  return success();
}
