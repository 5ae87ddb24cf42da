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

void rotate(const Rotation &r) {
  scf::ForOp loop = r.loop;
  Block *body = loop.getBody();
  Location loc = loop.getLoc();
  OpBuilder b(loop);
  auto yield = cast<scf::YieldOp>(body->getTerminator());
  SmallVector<Operation *> stage0, before, after;
  for (Operation &op : body->without_terminator())
    if (!r.inStage1.contains(&op)) {
      stage0.push_back(&op);
      (after.empty() && (&op == r.anchor || op.isBeforeInBlock(r.anchor)) ? before : after)
          .push_back(&op);
    }
  unsigned numArgs = loop.getNumRegionIterArgs();
  SmallVector<unsigned> kept, late;
  for (unsigned i = 0; i < numArgs; ++i)
    (r.yieldedByStage1(i) ? late : kept).push_back(i);

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
    for (Operation *op : stage0)
      b.clone(*op, map);
    yieldCarried(map, [&](unsigned i) { return loop.getInitArgs()[i]; });
    b.setInsertionPointToStart(prologue.elseBlock());
    SmallVector<Value> out;
    for (unsigned i : kept)
      out.push_back(loop.getInitArgs()[i]);
    for (Value v : r.carried)
      out.push_back(placeholder(b, loc, v.getType()));
    for (unsigned i : r.stage1Args)
      out.push_back(loop.getInitArgs()[i]);
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
    for (Operation *op : before)
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
    for (Operation *op : waitLast(after, loop, late))
      b.clone(*op, map);
    yieldCarried(map, [&](unsigned i) { return previous.lookup(yield.getOperand(i)); });
  }
  // Epilogue: stage 1 of the last iteration.
  SmallVector<Type> lateTypes;
  for (unsigned i : late)
    lateTypes.push_back(loop.getResult(i).getType());
  auto epilogue = scf::IfOp::create(b, loc, lateTypes, runs, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(epilogue.thenBlock());
    // lb + ((ub - lb - 1) / step) * step
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    Value span = arith::SubIOp::create(b, loc, arith::SubIOp::create(b, loc, ub, lb), one);
    Value last = arith::AddIOp::create(
        b, loc, lb,
        arith::MulIOp::create(b, loc, arith::DivSIOp::create(b, loc, span, step), step));
    IRMapping map;
    map.map(loop.getInductionVar(), last);
    for (auto [n, v] : llvm::enumerate(r.carried))
      map.map(v, rotated.getResult(kept.size() + n));
    for (auto [n, i] : llvm::enumerate(r.stage1Args))
      map.map(loop.getRegionIterArgs()[i],
              rotated.getResult(kept.size() + r.carried.size() + n));
    cloneStage(b, r.stage1, map, loop);
    SmallVector<Value> out;
    for (unsigned i : late)
      out.push_back(map.lookup(yield.getOperand(i)));
    scf::YieldOp::create(b, loc, out);
    b.setInsertionPointToStart(epilogue.elseBlock());
    out.clear();
    for (unsigned i : late)
      out.push_back(loop.getInitArgs()[i]);
    scf::YieldOp::create(b, loc, out);
  }
  for (auto [n, i] : llvm::enumerate(kept))
    loop.getResult(i).replaceAllUsesWith(rotated.getResult(n));
  for (auto [n, i] : llvm::enumerate(late))
    loop.getResult(i).replaceAllUsesWith(epilogue.getResult(n));
  loop.erase();
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
  for (scf::ForOp loop : loops) {
    FailureOr<std::optional<Rotation>> rotation = lateProduct(loop);
    if (failed(rotation))
      return signalPassFailure();
    if (*rotation)
      rotate(**rotation);
  }
}
