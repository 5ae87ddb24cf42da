//===- PipelineProducts.cpp - a loop's last product one iteration later ------===//
//
// tessera-tgpu-pipeline-products (Config.intra_warpgroup_overlap, issue 25):
// FlashAttention-3's intra-warpgroup pipelining as a loop rotation. Runs after
// tessera-tgpu-warp-specialize, on the consumers' loops (the default region of a
// `tgpu.warp_specialize`), where every staged tile comes from the producer's ring.
//
// A loop whose body issues two or more products and yields the last one (the softmax
// forward: S = Q·Kᵀ, its softmax, O = O·α + P·V) is rewritten so that iteration j
// issues S_j, then P_{j-1}·V_{j-1}, then runs the softmax of S_j:
//
//   if (lb < ub) { stage 0 of lb }                          // prologue
//   for j in [lb + step, ub) {
//     stage 0 up to its first product (S_j = Q·K_jᵀ, issued)
//     stage 1 of j - step (V_{j-1}, O_{j-1} = P_{j-1}·V_{j-1} + O·α, issued)
//     the rest of stage 0 (the softmax of S_j; O_{j-1}·α_j reads the product)
//   }
//   if (lb < ub) { stage 1 of the last iteration }          // epilogue
//
// The GPU lowering waits for each wgmma group where its registers are first read, and
// groups complete in issue order: the softmax waits for S_j alone (wgmma.wait_group 1),
// P_{j-1}·V_{j-1} runs on the tensor cores under it and is waited for at the rescale.
// The ops are the same, in another order: the results are bit-identical.
//
// Stage 1 is the product marked `tgpu.product_stage = 1` and what only it reads: its
// loads (the ring hands tiles out per buffer in program order, as the producer fills
// them), their transposes and their scalar indices (recomputed for j - step). The
// values it reads from stage 0 (P, O·α) are carried by the loop. Where no product of a
// loop is marked, the pass marks the last one if the rotation applies; a user's mark
// (`tgpu.product_stage = 0` keeps a loop as it is) is followed or refused at the op.
//
// The loops of one walk (masked edge, unmasked middle, masked edge) form a chain: a loop
// hands its last stage 1 on instead of issuing it in an epilogue, and the next loop's
// prologue issues it right after its own first product (where some loop of the chain
// ran; a loop that does not run passes it through). Only the chain's last loop has an
// epilogue, and the loop boundaries keep the steady state's order (an epilogue beside
// the next prologue made ptxas spill at 128 x 128, D = 128).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/PersistentGrid.h"

#include "dialect/tgpu/TgpuDialect.h"
#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUPIPELINEPRODUCTS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;

namespace {
/// tile.dot: 1 = issued one iteration later than the rest of its loop body.
constexpr const char kProductStageAttr[] = "tgpu.product_stage";
/// scf.for: rotated by this pass (not rotated again).
constexpr const char kRotatedAttr[] = "tgpu.rotated";

struct TgpuPipelineProductsPass
    : tessera::gpu::impl::TgpuPipelineProductsBase<TgpuPipelineProductsPass> {
  void runOnOperation() override;
};

/// How a loop is split: the ops of stage 1 in body order, the product stage 0 issues
/// before them, and the stage-0 values stage 1 reads (carried by the rotated loop).
struct Rotation {
  scf::ForOp loop;
  tile::DotOp late;
  Operation *anchor = nullptr;
  SmallVector<Operation *> stage1;
  DenseSet<Operation *> inStage1;
  SetVector<Value> carried;
  // Iteration arguments stage 1 reads that stage 1 yields (an accumulator added to as
  // it is, O += P·V): the rotated loop carries stage 1's last value of each.
  SetVector<unsigned> stage1Args;
  std::string refusal;

  /// Whether the loop's `i`-th yield is a value stage 1 computes.
  bool yieldedByStage1(unsigned i) const {
    Operation *def = scf::ForOp(loop).getBody()->getTerminator()->getOperand(i).getDefiningOp();
    return def && inStage1.contains(def);
  }
  /// The iteration arguments stage 1 yields (their last value comes one iteration late).
  SmallVector<unsigned> lateArgs() const {
    SmallVector<unsigned> late;
    for (unsigned i = 0; i < scf::ForOp(loop).getNumRegionIterArgs(); ++i)
      if (yieldedByStage1(i))
        late.push_back(i);
    return late;
  }
};

/// What a rotated loop leaves for its stage 1 still to issue: whether it (or a loop
/// before it in its chain) ran, its last iteration, and the values that iteration's
/// stage 1 reads (`Rotation::carried`, then `Rotation::stage1Args`).
struct Pending {
  Value ran;
  Value last;
  SmallVector<Value> values;
};

/// Scalar work that stage 1 recomputes for its own iteration instead of carrying.
bool recomputable(Operation *op) {
  return op->getNumRegions() == 0 && isMemoryEffectFree(op) &&
         llvm::none_of(op->getResultTypes(), llvm::IsaPred<RankedTensorType>);
}

/// Whether `v` (read by stage 1) can be recomputed from the induction variable and
/// values defined outside the loop.
bool recomputableValue(Value v, scf::ForOp loop) {
  if (v == loop.getInductionVar())
    return true;
  if (loop.isDefinedOutsideOfLoop(v))
    return true;
  Operation *def = v.getDefiningOp();
  if (!def || def->getBlock() != loop.getBody() || !recomputable(def))
    return false;
  return llvm::all_of(def->getOperands(), [&](Value x) { return recomputableValue(x, loop); });
}

Rotation analyze(scf::ForOp loop, tile::DotOp late) {
  Rotation r;
  r.loop = loop;
  r.late = late;
  Block *body = loop.getBody();
  auto refuse = [&](const Twine &why) {
    r.refusal = why.str();
    return r;
  };
  if (late->getBlock() != body)
    return refuse("the product is not directly in the loop's body");
  for (Operation *user : late->getUsers())
    if (!isa<scf::YieldOp>(user))
      return refuse("the product's result is read in the body (only the loop may carry it)");
  // Stage 1 grows backwards from the product through the loads, transposes and scalar
  // ops that only it reads (a fixed point: an op joins once all its readers have).
  DenseSet<Operation *> &inStage1 = r.inStage1;
  inStage1.insert(late);
  for (bool grew = true; grew;) {
    grew = false;
    for (Operation &op : llvm::reverse(body->without_terminator())) {
      if (inStage1.contains(&op) ||
          !(isa<tile::LoadOp, tile::TransOp>(op) || recomputable(&op)))
        continue;
      if (op.use_empty() || !llvm::all_of(op.getUsers(), [&](Operation *user) {
            return inStage1.contains(body->findAncestorOpInBlock(*user));
          }))
        continue;
      inStage1.insert(&op);
      grew = true;
    }
  }
  for (Operation &op : body->without_terminator()) {
    if (inStage1.contains(&op)) {
      r.stage1.push_back(&op);
      continue;
    }
    if (!r.anchor && isa<tile::DotOp>(op))
      r.anchor = &op;
  }
  if (!r.anchor || !r.anchor->isBeforeInBlock(late))
    return refuse("no product of the body comes before it");
  // Stage 1's reads move past stage 0's ops of the next iteration: nothing may write
  // memory in between.
  WalkResult writes = body->walk([&](Operation *op) {
    auto effects = dyn_cast<MemoryEffectOpInterface>(op);
    return effects && effects.hasEffect<MemoryEffects::Write>() ? WalkResult::interrupt()
                                                                : WalkResult::advance();
  });
  if (writes.wasInterrupted())
    return refuse("the loop body writes memory");
  // The producer fills a source's ring in the body's order; stage 1 taking a source
  // stage 0 also loads would take its tiles out of that order.
  for (Operation *op : r.stage1)
    if (auto load = dyn_cast<tile::LoadOp>(op))
      for (auto other : body->getOps<tile::LoadOp>())
        if (!inStage1.contains(other) && other.getSource() == load.getSource())
          return refuse("stage 1 loads from a source stage 0 loads too (one ring, taken "
                        "out of order)");
  auto yield = cast<scf::YieldOp>(body->getTerminator());
  // What stage 1 reads from outside itself.
  for (Operation *op : r.stage1) {
    WalkResult walk = op->walk([&](Operation *nested) {
      for (Value v : nested->getOperands()) {
        if (Operation *def = v.getDefiningOp(); def && inStage1.contains(def))
          continue;
        if (recomputableValue(v, loop))
          continue;
        auto arg = dyn_cast<BlockArgument>(v);
        if (arg && arg.getOwner() == body) {
          // An iteration argument: stage 1's own last value, or one of stage 0's, which
          // would have to be carried an iteration longer.
          if (!r.yieldedByStage1(arg.getArgNumber() - 1))
            return WalkResult::interrupt();
          r.stage1Args.insert(arg.getArgNumber() - 1);
          continue;
        }
        if (v.getDefiningOp() && v.getDefiningOp()->getBlock() == body)
          r.carried.insert(v);
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return refuse("stage 1 reads an iteration argument that stage 0 yields");
  }
  // Stage 0 up to the first product runs before stage 1 of the iteration before: it may
  // not read what stage 1 yields.
  for (unsigned i = 0; i < yield.getNumOperands(); ++i) {
    if (!r.yieldedByStage1(i))
      continue;
    Value arg = loop.getRegionIterArgs()[i];
    for (Operation *user : arg.getUsers()) {
      Operation *top = body->findAncestorOpInBlock(*user);
      if (top && !inStage1.contains(top) &&
          (top == r.anchor || top->isBeforeInBlock(r.anchor)))
        return refuse("the body reads the product's last value before its first product");
    }
  }
  return r;
}

/// A value of `type` for a branch that does not run the loop (never read).
Value placeholder(OpBuilder &b, Location loc, Type type) {
  if (auto tensor = dyn_cast<RankedTensorType>(type))
    return arith::ConstantOp::create(b, loc, tensor,
                                     DenseElementsAttr::get(tensor, b.getZeroAttr(tensor.getElementType())));
  return arith::ConstantOp::create(b, loc, type, b.getZeroAttr(type));
}

/// Clones `ops` (of the loop body) at `b` with `map`, recomputing the scalars they read
/// from the body for the iteration `map` gives the induction variable.
void cloneStage(OpBuilder &b, ArrayRef<Operation *> ops, IRMapping &map, scf::ForOp loop) {
  std::function<void(Value)> recompute = [&](Value v) {
    if (map.contains(v) || v == loop.getInductionVar())
      return;
    Operation *def = v.getDefiningOp();
    if (!def || def->getBlock() != loop.getBody())
      return;
    for (Value x : def->getOperands())
      recompute(x);
    b.clone(*def, map);
  };
  for (Operation *op : ops) {
    op->walk([&](Operation *nested) {
      for (Value v : nested->getOperands())
        if (recomputableValue(v, loop))
          recompute(v);
    });
    b.clone(*op, map);
  }
}

/// `ops` (the rest of stage 0, in body order) with those that do not read the delayed
/// product's value first: its wait comes as late as it can (the softmax and P's
/// conversion run under it, P's f32 registers are free before the wait, not beside
/// it). Ops with memory effects keep the order.
SmallVector<Operation *> waitLast(ArrayRef<Operation *> ops, scf::ForOp loop,
                                  ArrayRef<unsigned> late) {
  if (!llvm::all_of(ops, [](Operation *op) { return isMemoryEffectFree(op); }))
    return SmallVector<Operation *>(ops);
  DenseSet<Value> waiting;
  for (unsigned i : late)
    waiting.insert(loop.getRegionIterArgs()[i]);
  SmallVector<Operation *> free, reading;
  for (Operation *op : ops) {
    bool reads = false;
    op->walk([&](Operation *nested) {
      reads |= llvm::any_of(nested->getOperands(), [&](Value v) { return waiting.contains(v); });
    });
    if (reads)
      waiting.insert(op->result_begin(), op->result_end());
    (reads ? reading : free).push_back(op);
  }
  free.append(reading);
  return free;
}

/// Stage 1 of `p`'s last iteration, issued by `r`'s ops (the loop's own, or one of its
/// chain's: equivalent), where some loop ran; else `initLate`: the late values.
SmallVector<Value> issuePending(OpBuilder &b, Location loc, const Rotation &r,
                                const Pending &p, ValueRange initLate) {
  scf::ForOp loop = r.loop;
  auto yield = cast<scf::YieldOp>(loop.getBody()->getTerminator());
  SmallVector<unsigned> late = r.lateArgs();
  SmallVector<Type> lateTypes;
  for (unsigned i : late)
    lateTypes.push_back(loop.getResult(i).getType());
  auto branch = scf::IfOp::create(b, loc, lateTypes, p.ran, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(branch.thenBlock());
  IRMapping map;
  map.map(loop.getInductionVar(), p.last);
  for (auto [n, v] : llvm::enumerate(r.carried))
    map.map(v, p.values[n]);
  for (auto [n, i] : llvm::enumerate(r.stage1Args))
    map.map(loop.getRegionIterArgs()[i], p.values[r.carried.size() + n]);
  cloneStage(b, r.stage1, map, loop);
  SmallVector<Value> out;
  for (unsigned i : late)
    out.push_back(map.lookup(yield.getOperand(i)));
  scf::YieldOp::create(b, loc, out);
  b.setInsertionPointToStart(branch.elseBlock());
  scf::YieldOp::create(b, loc, initLate);
  return SmallVector<Value>(branch.getResults());
}

/// Rotates `r`'s loop (left in place, unused, for the caller to erase). `before`: the
/// previous loop of its chain, whose last stage 1 this loop's prologue issues right after
/// its own first product (or hands on when this loop does not run); `chainLate`: the
/// late values before the chain's first loop. Returns what is left to issue when
/// `handOn` (the next loop of the chain issues it), else issues it after the loop.
Pending rotate(const Rotation &r, const Pending *before, ValueRange chainLate, bool handOn) {
  scf::ForOp loop = r.loop;
  Block *body = loop.getBody();
  Location loc = loop.getLoc();
  OpBuilder b(loop);
  auto yield = cast<scf::YieldOp>(body->getTerminator());
  SmallVector<Operation *> stage0, first, rest;
  for (Operation &op : body->without_terminator())
    if (!r.inStage1.contains(&op)) {
      stage0.push_back(&op);
      (rest.empty() && (&op == r.anchor || op.isBeforeInBlock(r.anchor)) ? first : rest)
          .push_back(&op);
    }
  unsigned numArgs = loop.getNumRegionIterArgs();
  SmallVector<unsigned> kept, late = r.lateArgs();
  for (unsigned i = 0; i < numArgs; ++i)
    if (!r.yieldedByStage1(i))
      kept.push_back(i);

  Value lb = loop.getLowerBound(), ub = loop.getUpperBound(), step = loop.getStep();
  Value runs = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, lb, ub);
  // Prologue: stage 0 of the first iteration.
  SmallVector<Type> carriedTypes;
  for (unsigned i : kept)
    carriedTypes.push_back(loop.getRegionIterArgs()[i].getType());
  for (Value v : r.carried)
    carriedTypes.push_back(v.getType());
  for (unsigned i : r.stage1Args)
    carriedTypes.push_back(loop.getRegionIterArgs()[i].getType());
  // What the prologue and each iteration hand on: stage 0's yields, the values stage 1
  // reads from stage 0, stage 1's accumulators (`stage1Arg`: their value so far).
  auto yieldCarried = [&](IRMapping &map, function_ref<Value(unsigned)> stage1Arg) {
    SmallVector<Value> out;
    for (unsigned i : kept)
      out.push_back(map.lookupOrDefault(yield.getOperand(i)));
    for (Value v : r.carried)
      out.push_back(map.lookupOrDefault(v));
    for (unsigned i : r.stage1Args)
      out.push_back(stage1Arg(i));
    scf::YieldOp::create(b, loc, out);
  };
  auto prologue = scf::IfOp::create(b, loc, carriedTypes, runs, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(prologue.thenBlock());
    IRMapping map;
    map.map(loop.getInductionVar(), lb);
    for (auto [arg, init] : llvm::zip(loop.getRegionIterArgs(), loop.getInitArgs()))
      map.map(arg, init);
    if (!before) {
      for (Operation *op : stage0)
        b.clone(*op, map);
    } else {
      // The first product, then the previous loop's last one (or the chain's values
      // where no loop ran yet), then the rest of stage 0 on what it adds up to.
      for (Operation *op : first)
        b.clone(*op, map);
      SmallVector<Value> lateIn = issuePending(b, loc, r, *before, chainLate);
      for (auto [n, i] : llvm::enumerate(late))
        map.map(loop.getRegionIterArgs()[i], lateIn[n]);
      for (Operation *op : waitLast(rest, loop, late))
        b.clone(*op, map);
    }
    yieldCarried(map, [&](unsigned i) { return map.lookup(loop.getRegionIterArgs()[i]); });
    b.setInsertionPointToStart(prologue.elseBlock());
    // Not run: the previous loop's pending stage 1 passes through.
    SmallVector<Value> out;
    for (unsigned i : kept)
      out.push_back(loop.getInitArgs()[i]);
    for (auto [n, v] : llvm::enumerate(r.carried))
      out.push_back(before ? before->values[n] : placeholder(b, loc, v.getType()));
    for (auto [n, i] : llvm::enumerate(r.stage1Args))
      out.push_back(before ? before->values[r.carried.size() + n] : loop.getInitArgs()[i]);
    scf::YieldOp::create(b, loc, out);
  }
  // The rotated loop.
  Value second = arith::AddIOp::create(b, loc, lb, step);
  auto rotated = scf::ForOp::create(b, loc, second, ub, step, prologue.getResults());
  rotated->setDiscardableAttrs(loop->getDiscardableAttrDictionary());
  rotated->setAttr(kRotatedAttr, b.getUnitAttr());
  {
    OpBuilder::InsertionGuard guard(b);
    Block *newBody = rotated.getBody();
    if (newBody->mightHaveTerminator())
      newBody->getTerminator()->erase();
    b.setInsertionPointToEnd(newBody);
    IRMapping map, previous;
    map.map(loop.getInductionVar(), rotated.getInductionVar());
    for (auto [n, i] : llvm::enumerate(kept))
      map.map(loop.getRegionIterArgs()[i], rotated.getRegionIterArgs()[n]);
    for (Operation *op : first)
      b.clone(*op, map);
    previous.map(loop.getInductionVar(),
                 arith::SubIOp::create(b, loc, rotated.getInductionVar(), step));
    for (auto [n, v] : llvm::enumerate(r.carried))
      previous.map(v, rotated.getRegionIterArgs()[kept.size() + n]);
    size_t firstStage1Arg = kept.size() + r.carried.size();
    for (auto [n, i] : llvm::enumerate(r.stage1Args))
      previous.map(loop.getRegionIterArgs()[i], rotated.getRegionIterArgs()[firstStage1Arg + n]);
    cloneStage(b, r.stage1, previous, loop);
    for (unsigned i : late)
      map.map(loop.getRegionIterArgs()[i], previous.lookup(yield.getOperand(i)));
    for (Operation *op : waitLast(rest, loop, late))
      b.clone(*op, map);
    yieldCarried(map, [&](unsigned i) { return previous.lookup(yield.getOperand(i)); });
  }
  for (auto [n, i] : llvm::enumerate(kept))
    loop.getResult(i).replaceAllUsesWith(rotated.getResult(n));
  // What is left: stage 1 of the last iteration, lb + ((ub - lb - 1) / step) * step.
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value span = arith::SubIOp::create(b, loc, arith::SubIOp::create(b, loc, ub, lb), one);
  Value last = arith::AddIOp::create(
      b, loc, lb, arith::MulIOp::create(b, loc, arith::DivSIOp::create(b, loc, span, step), step));
  Pending left{runs, last, SmallVector<Value>(rotated.getResults().drop_front(kept.size()))};
  if (before) {
    left.ran = arith::OrIOp::create(b, loc, runs, before->ran);
    left.last = arith::SelectOp::create(b, loc, runs, last, before->last);
  }
  if (handOn)
    return left;
  SmallVector<Value> lateOut = issuePending(b, loc, r, left, chainLate);
  for (auto [n, i] : llvm::enumerate(late))
    loop.getResult(i).replaceAllUsesWith(lateOut[n]);
  return left;
}

/// How to rotate `loop` around the product to issue one iteration later: the user's
/// mark, else the last product when the rotation applies (marked then). None where the
/// loop stays as it is; failure, reported at the op, where a mark cannot be followed.
FailureOr<std::optional<Rotation>> lateProduct(scf::ForOp loop) {
  SmallVector<tile::DotOp> dots(loop.getBody()->getOps<tile::DotOp>());
  tile::DotOp marked;
  bool userChose = false;
  for (tile::DotOp dot : dots)
    if (auto stage = dot->getAttrOfType<IntegerAttr>(kProductStageAttr)) {
      userChose = true;
      if (stage.getInt() != 0 && stage.getInt() != 1)
        return dot.emitError(kProductStageAttr) << " must be 0 or 1, got " << stage.getInt();
      if (stage.getInt() == 1) {
        if (marked)
          return dot.emitError("one product of a loop can be issued one iteration later; ")
                 << kProductStageAttr << " = 1 is on another already";
        marked = dot;
      }
    }
  if (userChose) {
    if (!marked)
      return std::optional<Rotation>();
    Rotation r = analyze(loop, marked);
    if (!r.refusal.empty())
      return marked.emitError(kProductStageAttr) << " = 1 cannot be followed: " << r.refusal;
    return std::optional<Rotation>(std::move(r));
  }
  if (dots.size() < 2)
    return std::optional<Rotation>();
  Rotation r = analyze(loop, dots.back());
  if (!r.refusal.empty())
    return std::optional<Rotation>();
  dots.back()->setAttr(kProductStageAttr, IntegerAttr::get(IntegerType::get(loop.getContext(), 64), 1));
  return std::optional<Rotation>(std::move(r));
}

/// Whether `x` and `y` are the same op up to their operands (and have no regions).
bool sameOpShape(Operation *x, Operation *y) {
  return x->getName() == y->getName() && x->getAttrDictionary() == y->getAttrDictionary() &&
         x->getResultTypes() == y->getResultTypes() &&
         x->getNumOperands() == y->getNumOperands() && x->getNumRegions() == 0 &&
         y->getNumRegions() == 0;
}

/// Whether stage-1 value `x` of `a`'s loop is computed as `y` of `b`'s: the same ops on
/// the same outer values, the induction variable, or corresponding carried values.
bool sameStageValue(const Rotation &a, Value x, const Rotation &b, Value y) {
  scf::ForOp la = a.loop, lb = b.loop;
  if (x == y && la.isDefinedOutsideOfLoop(x))
    return true;
  if (x == la.getInductionVar() || y == lb.getInductionVar())
    return x == la.getInductionVar() && y == lb.getInductionVar();
  auto position = [](const SetVector<Value> &set, Value v) -> int {
    auto it = llvm::find(set, v);
    return it == set.end() ? -1 : int(it - set.begin());
  };
  int ia = position(a.carried, x), ib = position(b.carried, y);
  if (ia >= 0 || ib >= 0)
    return ia == ib;
  auto xa = dyn_cast<BlockArgument>(x), yb = dyn_cast<BlockArgument>(y);
  if (xa || yb)
    return xa && yb && xa.getOwner() == la.getBody() && yb.getOwner() == lb.getBody() &&
           xa.getArgNumber() == yb.getArgNumber();
  Operation *dx = x.getDefiningOp(), *dy = y.getDefiningOp();
  if (!dx || !dy || dx->getBlock() != la.getBody() || dy->getBlock() != lb.getBody() ||
      !sameOpShape(dx, dy) ||
      cast<OpResult>(x).getResultNumber() != cast<OpResult>(y).getResultNumber())
    return false;
  return llvm::all_of(llvm::zip(dx->getOperands(), dy->getOperands()), [&](auto pair) {
    return sameStageValue(a, std::get<0>(pair), b, std::get<1>(pair));
  });
}

/// Whether `b`'s loop continues `a`'s chain: it follows in the same block with only
/// scalar work between, starts from `a`'s late results (and nothing else reads them),
/// and its stage 1 is `a`'s (so either loop's ops issue the other's pending product).
bool continuesChain(const Rotation &a, const Rotation &b) {
  scf::ForOp first = a.loop, next = b.loop;
  // Before the rotation erases anything: both originals are still in place.
  if (first->getBlock() != next->getBlock() || !first->isBeforeInBlock(next))
    return false;
  for (Operation *op = first->getNextNode(); op != next; op = op->getNextNode())
    if (op->getNumRegions() != 0 || !isMemoryEffectFree(op) || isa<tile::DotOp>(op))
      return false;
  SmallVector<unsigned> late = a.lateArgs();
  if (late != b.lateArgs() || a.stage1Args != b.stage1Args ||
      a.carried.size() != b.carried.size() || a.stage1.size() != b.stage1.size())
    return false;
  for (unsigned i : late) {
    Value result = first.getResult(i);
    if (!result.hasOneUse() || next.getInitArgs()[i] != result)
      return false;
  }
  for (auto [x, y] : llvm::zip(a.carried, b.carried))
    if (x.getType() != y.getType())
      return false;
  for (auto [x, y] : llvm::zip(a.stage1, b.stage1)) {
    if (!sameOpShape(x, y))
      return false;
    for (auto [u, v] : llvm::zip(x->getOperands(), y->getOperands())) {
      Operation *du = u.getDefiningOp(), *dv = v.getDefiningOp();
      bool inStage1 = du && a.inStage1.contains(du);
      if (inStage1 != (dv && b.inStage1.contains(dv)))
        return false;
      if (inStage1 ? llvm::find(a.stage1, du) - a.stage1.begin() !=
                         llvm::find(b.stage1, dv) - b.stage1.begin()
                   : !sameStageValue(a, u, b, v))
        return false;
    }
  }
  return true;
}
} // namespace

void TgpuPipelineProductsPass::runOnOperation() {
  SmallVector<scf::ForOp> loops;
  getOperation().walk([&](tgpu::WarpSpecializeOp split) {
    split.getDefaultRegion().walk([&](scf::ForOp loop) {
      // The persistent grid's walk over work items is lowered as a loop of its own.
      if (!loop->hasAttr(kRotatedAttr) && !loop->hasAttr(tessera::gpu::kWorkItemsAttr))
        loops.push_back(loop);
    });
  });
  SmallVector<Rotation> rotations;
  for (scf::ForOp loop : loops) {
    FailureOr<std::optional<Rotation>> rotation = lateProduct(loop);
    if (failed(rotation))
      return signalPassFailure();
    if (*rotation)
      rotations.push_back(std::move(**rotation));
  }
  // Loops that follow one another (a walk's masked / unmasked / masked key tiles) form
  // a chain: each issues the previous one's last product after its own first, so only
  // the chain's last loop has an epilogue.
  std::optional<Pending> pending;
  SmallVector<Value> chainLate;
  for (auto [n, r] : llvm::enumerate(rotations)) {
    bool continues = pending.has_value(); // the previous loop handed its stage 1 on
    if (!continues) {
      chainLate.clear();
      for (unsigned i : r.lateArgs())
        chainLate.push_back(r.loop.getInitArgs()[i]);
    }
    bool handOn = n + 1 < rotations.size() && continuesChain(r, rotations[n + 1]);
    pending = rotate(r, continues ? &*pending : nullptr, chainLate, handOn);
    if (!handOn)
      pending.reset();
  }
  // The rotated loops' originals, the chains' later ones first (they read the earlier
  // ones' late results).
  for (Rotation &r : llvm::reverse(rotations))
    r.loop.erase();
}
