//===- AttnToTile.cpp - attn ops to tile programs -------------------------===//
//
// Each function holding attn ops is rewritten into destination-passing form over
// buffers, and each attn op into one tile.grid. The buffer conversion is done here rather
// than by one-shot bufferization because an attn op is a whole kernel: its operands are
// the kernel's global buffers, never values that live in registers.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "dialect/attn/AttnDialect.h"
#include "dialect/tile/TileDialect.h"
#include "passes/TilePrograms.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/TypeSwitch.h"

namespace tessera {
#define GEN_PASS_DEF_ATTNTOTILE
#include "passes/Passes.h.inc"
} // namespace tessera

using namespace mlir;
using namespace tessera;

/// The buffer type a tensor of the spec becomes: same shape, any strides, so callers
/// can hand in views (a transposed or sliced tensor) without a copy.
static MemRefType bufferTypeFor(RankedTensorType type) {
  auto layout = StridedLayoutAttr::get(
      type.getContext(), ShapedType::kDynamic,
      SmallVector<int64_t>(type.getRank(), ShapedType::kDynamic));
  return MemRefType::get(type.getShape(), type.getElementType(), layout);
}

/// The operand and dim that dim `d` of attn result `r` equals (the ops' documented
/// shapes); compress, block_topk, gather_rows and scatter_rows handle their row dim
/// before asking.
static std::pair<Value, int64_t> resultDimSource(Value r, int64_t d) {
  Operation *op = r.getDefiningOp();
  unsigned resultNo = cast<OpResult>(r).getResultNumber();
  // o [B, H, Nq, Dv] and lse [B, H, Nq]: rows and heads of q, value dim of v.
  auto queryRowsValueCols = [&](Value q, Value v) -> std::pair<Value, int64_t> {
    return d == 3 ? std::make_pair(v, int64_t(3)) : std::make_pair(q, d);
  };
  return TypeSwitch<Operation *, std::pair<Value, int64_t>>(op)
      .Case([&](attn::AttentionOp o) { return queryRowsValueCols(o.getQuery(), o.getValue()); })
      .Case([&](attn::LinearAttentionOp o) -> std::pair<Value, int64_t> {
        if (resultNo == 0)
          return queryRowsValueCols(o.getQuery(), o.getValue());
        // final_state [B, H, D, Dv].
        return d < 2 ? std::make_pair(o.getQuery(), d)
                     : std::make_pair(d == 2 ? o.getQuery() : o.getValue(), int64_t(3));
      })
      .Case([&](attn::LinearDecodeOp o) -> std::pair<Value, int64_t> {
        if (resultNo == 0)
          return queryRowsValueCols(o.getQuery(), o.getValue());
        return {o.getState(), d};
      })
      .Case([&](attn::LinearAttentionGradOp o) -> std::pair<Value, int64_t> {
        Value like[] = {o.getQuery(), o.getKey(), o.getValue()};
        return {like[resultNo], d};
      })
      .Case([&](attn::MergeOp o) -> std::pair<Value, int64_t> {
        return {resultNo == 0 ? o.getOutA() : o.getLseA(), d};
      })
      .Case([&](attn::GateOp o) -> std::pair<Value, int64_t> {
        return {o.getPartials().front(), d};
      })
      .Case([&](attn::BlockTopKOp o) -> std::pair<Value, int64_t> { return {o.getQuery(), d}; })
      // compress, lsh_sort, gather_rows, scatter_rows: the input's other dims.
      .Default([&](Operation *) -> std::pair<Value, int64_t> { return {op->getOperand(0), d}; });
}

/// Dim `d` (dynamic) of the intermediate result `r`, from its op's operand buffers.
static Value intermediateSize(ImplicitLocOpBuilder &b, Value r, int64_t d,
                              const IRMapping &buffers) {
  Operation *op = r.getDefiningOp();
  auto dimOf = [&](Value operand, int64_t i) -> Value {
    return memref::DimOp::create(b, buffers.lookup(operand), i);
  };
  auto cIndex = [&](int64_t v) -> Value { return arith::ConstantIndexOp::create(b, v); };
  if (auto c = dyn_cast<attn::CompressOp>(op); c && d == 2) {
    // floor((N - block) / stride) + 1 pooled rows, 0 when N < block; floor(N / block)
    // when the blocks tile (a size formula the GPU runtime recomputes).
    Value n = dimOf(c.getInput(), 2), block = cIndex(c.getBlock());
    if (c.getStride() == c.getBlock())
      return arith::DivSIOp::create(b, n, block);
    Value pooled = arith::AddIOp::create(
        b, arith::DivSIOp::create(b, arith::SubIOp::create(b, n, block), cIndex(c.getStride())),
        cIndex(1));
    Value fits = arith::CmpIOp::create(b, arith::CmpIPredicate::sge, n, block);
    return arith::SelectOp::create(b, fits, pooled, cIndex(0));
  }
  if (auto t = dyn_cast<attn::BlockTopKOp>(op); t && d == 2)
    return arith::CeilDivSIOp::create(b, dimOf(t.getQuery(), 2), cIndex(t.getBlockQ()));
  // Rows moved by an index list: one per index (for a scatter, the indices are taken to
  // be a permutation of the rows).
  if (isa<attn::GatherRowsOp, attn::ScatterRowsOp>(op) && d == 2) {
    Value idx = op->getOperand(1);
    return dimOf(idx, cast<RankedTensorType>(idx.getType()).getRank() - 1);
  }
  // Otherwise each dim follows the operand dim the op's result semantics names (never a
  // guess from matching types: with Dv != D, Nq != Nk or GQA, o's type matches v's, whose
  // rows and heads are not o's).
  auto [operand, operandDim] = resultDimSource(r, d);
  return dimOf(operand, operandDim);
}

namespace {
struct AttnToTilePass : tessera::impl::AttnToTileBase<AttnToTilePass> {
  using AttnToTileBase::AttnToTileBase;

  void runOnOperation() override {
    SmallVector<func::FuncOp> funcs;
    getOperation().walk([&](func::FuncOp f) {
      bool hasAttn = llvm::any_of(f.getOps(), [](Operation &op) {
        return isa<attn::AttnDialect>(op.getDialect());
      });
      if (!f.isExternal() && hasAttn)
        funcs.push_back(f);
    });
    for (func::FuncOp f : funcs)
      if (failed(lowerFunction(f)))
        return signalPassFailure();
  }

  LogicalResult lowerFunction(func::FuncOp func);
};
} // namespace

LogicalResult AttnToTilePass::lowerFunction(func::FuncOp func) {
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (Type t : llvm::concat<const Type>(func.getArgumentTypes(), func.getResultTypes()))
    if (!isa<RankedTensorType>(t))
      return func.emitError("attn functions take and return ranked tensors only, got ")
             << t;
  for (Operation &op : body.without_terminator())
    if (!isa<attn::AttentionOp, attn::AttentionGradOp, attn::LinearAttentionOp, attn::LinearDecodeOp,
             attn::LinearAttentionGradOp, attn::CompressOp, attn::BlockTopKOp,
             attn::LshSortOp, attn::GatherRowsOp, attn::ScatterRowsOp, attn::MergeOp,
             attn::GateOp>(op))
      return op.emitError("is not lowered to a tile program yet");

  // New signature: every tensor argument becomes a buffer, and every result a trailing
  // output buffer.
  SmallVector<Type> argTypes;
  for (Type t : llvm::concat<const Type>(func.getArgumentTypes(), func.getResultTypes()))
    argTypes.push_back(bufferTypeFor(cast<RankedTensorType>(t)));
  unsigned numInputs = func.getNumArguments();
  SmallVector<Location> locs(func.getNumResults(), func.getLoc());
  body.addArguments(TypeRange(argTypes).drop_front(numInputs), locs);
  for (auto [arg, type] : llvm::zip(body.getArguments(), argTypes))
    arg.setType(type);

  IRMapping buffers;
  for (BlockArgument arg : body.getArguments().take_front(numInputs))
    buffers.map(arg, arg);
  // A value returned by the function is computed straight into its output buffer.
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    if (buffers.contains(v))
      return ret.emitError("returning an argument unchanged is not supported; result #")
             << i;
    if (!v.getDefiningOp())
      return ret.emitError("result #") << i << " is not computed by an attn op";
    if (!buffers.contains(v))
      buffers.map(v, body.getArgument(numInputs + i));
  }

  // The pass options are user input: the attribute's verifier rejects bad knobs here.
  auto emitConfigError = [&] { return func.emitError("invalid tuning config: "); };
  if (failed(tile::ConfigAttr::verify(emitConfigError, blockM, blockN, numWarps, numStages,
                                      split)))
    return failure();
  tile::ConfigAttr config = tile::ConfigAttr::get(&getContext(), blockM, blockN, numWarps,
                                                  numStages, split);
  SmallVector<Operation *> toErase;
  for (Operation &op : llvm::make_early_inc_range(body.without_terminator())) {
    ImplicitLocOpBuilder b(op.getLoc(), &op);
    // Intermediate results live in buffers the function allocates.
    for (Value r : op.getResults())
      if (!buffers.contains(r)) {
        auto type = cast<RankedTensorType>(r.getType());
        SmallVector<Value> dynSizes;
        for (int64_t d = 0; d < type.getRank(); ++d)
          if (type.isDynamicDim(d))
            dynSizes.push_back(intermediateSize(b, r, d, buffers));
        auto alloc = memref::AllocOp::create(
            b, MemRefType::get(type.getShape(), type.getElementType()), dynSizes);
        Value cast = memref::CastOp::create(b, bufferTypeFor(type), alloc);
        buffers.map(r, cast);
      }
    LogicalResult built =
        TypeSwitch<Operation *, LogicalResult>(&op)
            .Case([&](attn::AttentionOp o) {
              return buildSoftmaxTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::AttentionGradOp o) {
              return buildSoftmaxGradTileProgram(b, o, buffers, config,
                                                 {keyMajorGrad, gradQueryTile, gradDqAtomic});
            })
            .Case([&](attn::LinearAttentionOp o) {
              return buildLinearTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::LinearDecodeOp o) {
              return buildLinearDecodeTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::LinearAttentionGradOp o) {
              return buildLinearGradTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::CompressOp o) {
              return buildCompressTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::BlockTopKOp o) {
              return buildBlockTopKTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::LshSortOp o) {
              return buildLshSortTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::GatherRowsOp o) {
              return buildGatherRowsTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::ScatterRowsOp o) {
              return buildScatterRowsTileProgram(b, o, buffers, config);
            })
            .Case([&](attn::MergeOp o) { return buildMergeTileProgram(b, o, buffers, config); })
            .Case([&](attn::GateOp o) { return buildGateTileProgram(b, o, buffers, config); });
    if (failed(built))
      return failure();
    toErase.push_back(&op);
  }
  OpBuilder rb(ret);
  func::ReturnOp::create(rb, ret.getLoc());
  ret.erase();
  for (Operation *op : llvm::reverse(toErase))
    op->erase();
  func.setType(FunctionType::get(&getContext(), argTypes, {}));
  func->setAttr("llvm.emit_c_interface", UnitAttr::get(&getContext()));
  return success();
}
