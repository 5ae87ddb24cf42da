//===- LinearTileProgram.cpp - linear attention tile programs -------------===//
//
// Lightning Attention-2's tiling (SEMANTICS.md §2): one program per (head, batch) walks
// the sequence in blocks of block_m tokens, keeping the D x Dv state (f32) on chip. Per
// block: the masked intra-block product [(QKᵀ) ⊙ M]V with M_ts = λ^(t-s), plus the
// inter-block product (Λq Q) S with the carried state, then S ← λ^b S + (Λk K)ᵀ V. No
// per-block state ever reaches global memory. Exponents of λ are exp2(e · log2 λ).
//
//===----------------------------------------------------------------------===//
#include "passes/TilePrograms.h"

#include "passes/TileBuilder.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace tessera;

namespace {
/// What one linear-attention program shares across its blocks.
struct LinearProgram : TileBuilder {
  attn::FeatureMap featureMap;
  Value log2Decay;  // f32 scalar (0 without decay)
  Type operandType; // products take the inputs' element type (bf16/f16 in, f32 accumulate)

  /// `x` in the products' operand type.
  Value asOperand(Value x) {
    auto t = cast<RankedTensorType>(x.getType());
    if (t.getElementType() == operandType)
      return x;
    return arith::TruncFOp::create(b, tileType(t.getShape(), operandType), x);
  }

  LinearProgram(ImplicitLocOpBuilder &b, attn::FeatureMap featureMap)
      : TileBuilder(b), featureMap(featureMap) {}

  /// φ element-wise on an f32 tile.
  Value phi(Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    Value zero = splatF32(type.getShape(), 0.0f);
    switch (featureMap) {
    case attn::FeatureMap::identity:
      return x;
    case attn::FeatureMap::relu:
      return arith::MaxNumFOp::create(b, x, zero);
    case attn::FeatureMap::elu_plus_one: {
      Value positive = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, zero);
      Value plusOne = arith::AddFOp::create(b, x, splatF32(type.getShape(), 1.0f));
      return arith::SelectOp::create(b, positive, plusOne, math::ExpOp::create(b, x));
    }
    }
    return x;
  }
  /// φ'(x) element-wise: the chain-rule factor from φ(x) back to x.
  Value phiDerivative(Value x) {
    auto type = cast<RankedTensorType>(x.getType());
    Value zero = splatF32(type.getShape(), 0.0f), one = splatF32(type.getShape(), 1.0f);
    Value positive = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, zero);
    switch (featureMap) {
    case attn::FeatureMap::identity:
      return one;
    case attn::FeatureMap::relu:
      return arith::SelectOp::create(b, positive, one, zero);
    case attn::FeatureMap::elu_plus_one:
      return arith::SelectOp::create(b, positive, one, math::ExpOp::create(b, x));
    }
    return one;
  }
  /// `x` widened to f32.
  Value widen(Value x) {
    auto t = cast<RankedTensorType>(x.getType());
    if (t.getElementType() == f32)
      return x;
    return arith::ExtFOp::create(b, tileType(t.getShape(), f32), x);
  }
  /// λ^e element-wise for an f32 exponent tile (or scalar).
  Value decayPow(Value exponent) {
    Value l = log2Decay;
    if (auto t = dyn_cast<RankedTensorType>(exponent.getType()))
      l = splatOf(t.getShape(), log2Decay);
    return math::Exp2Op::create(b, arith::MulFOp::create(b, exponent, l));
  }
  /// Zeroes the rows of a [rows, cols] tile at or past `valid` rows (padding that a
  /// feature map may have turned non-zero).
  Value zeroRowsFrom(Value t, Value localRows, Value valid) {
    auto type = cast<RankedTensorType>(t.getType());
    Value keep = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, localRows,
                                       splatOf({type.getDimSize(0)}, toI32(valid)));
    return arith::SelectOp::create(b, broadcast(keep, 1, type.getDimSize(1)), t,
                                   splatF32(type.getShape(), 0.0f));
  }
};

/// What the forward and gradient programs read from their op: buffers and sizes.
struct LinearOperands {
  Value q, k, v, decay, init;
  int64_t d, dv, blk;
  double scale;
  Value nBatch, nHeads, nKvHeads, n, group, blkIdx, numBlocks;

  template <typename OpT>
  LinearOperands(TileBuilder &p, OpT op, const IRMapping &buffers, tile::ConfigAttr config)
      : q(buffers.lookup(op.getQuery())), k(buffers.lookup(op.getKey())),
        v(buffers.lookup(op.getValue())),
        decay(op.getDecay() ? buffers.lookup(op.getDecay()) : Value()),
        init(op.getInitialState() ? buffers.lookup(op.getInitialState()) : Value()),
        d(cast<MemRefType>(q.getType()).getDimSize(3)),
        dv(cast<MemRefType>(v.getType()).getDimSize(3)), blk(config.getBlockM()),
        scale(op.getScaleAttr() ? op.getScaleAttr().getValueAsDouble() : 1.0) {
    ImplicitLocOpBuilder &b = p.b;
    nBatch = memref::DimOp::create(b, q, 0);
    nHeads = memref::DimOp::create(b, q, 1);
    nKvHeads = memref::DimOp::create(b, k, 1);
    n = memref::DimOp::create(b, q, 2);
    group = arith::DivSIOp::create(b, nHeads, nKvHeads);
    blkIdx = p.cIndex(blk);
    numBlocks = arith::CeilDivSIOp::create(b, n, blkIdx);
  }
};

/// The decay of a head as log2 λ (0 without a decay operand).
Value loadLog2Decay(TileBuilder &tb, Value decay, Value head) {
  if (!decay)
    return tb.cF32(0.0);
  Value lambda = memref::LoadOp::create(tb.b, decay, ValueRange{head});
  return math::Log2Op::create(tb.b, lambda);
}
} // namespace

/// The most pieces (a divisor of `split`) that cut `dim` into equal parts passing `fits`:
/// how `split` programs share a state.
static int64_t statePieces(int64_t split, int64_t dim, function_ref<bool(int64_t)> fits) {
  for (int64_t c = split; c > 1; --c)
    if (split % c == 0 && dim % c == 0 && fits(dim / c))
      return c;
  return 1;
}

/// Pieces of the value columns (16 or more each) for the decode step.
static int64_t valuePieces(int64_t split, int64_t dv) {
  return statePieces(split, dv, [](int64_t cols) { return cols >= 16; });
}

/// Whether `cols` value columns fill whole warps' rows (16 per warp): a piece's state is
/// then carried as Sᵀ, value columns as rows, so every product has block_m or `cols` rows
/// (a warpgroup product's rows) and the state update multiplies K as loaded.
static bool fillsWarpRows(int64_t cols, int64_t warps) { return cols % (16 * warps) == 0; }

/// Pieces of the value columns for the forward: whole warps' rows each where they divide,
/// else as for the decode step.
static int64_t forwardPieces(int64_t split, int64_t dv, int64_t warps) {
  int64_t whole = statePieces(split, dv, [&](int64_t cols) { return fillsWarpRows(cols, warps); });
  return whole > 1 || fillsWarpRows(dv, warps) ? whole : valuePieces(split, dv);
}

/// Opens a grid of one program per (query head, batch[, piece of the value columns]) and
/// moves the builder into it;
/// returns the program's head, batch and key/value head, with the head's decay loaded.
static std::tuple<Value, Value, Value> beginHeadProgram(LinearProgram &p, Value nHeads,
                                                        Value nBatch, Value group, Value decay,
                                                        tile::ConfigAttr config,
                                                        Value pieces = Value()) {
  ImplicitLocOpBuilder &b = p.b;
  SmallVector<Value> sizes{nHeads, nBatch};
  if (pieces)
    sizes.push_back(pieces);
  auto grid = tile::GridOp::create(b, sizes, config);
  b.setInsertionPointToStart(&grid.getBody().emplaceBlock());
  Value head = p.programId(0), batch = p.programId(1);
  p.log2Decay = loadLog2Decay(p, decay, head);
  return {head, batch, arith::DivSIOp::create(b, head, group)};
}

/// The blocks [first, end) of sequence chunk `c`, `perChunk` to a chunk (a trailing chunk
/// may own none).
static std::pair<Value, Value> chunkBlocks(TileBuilder &p, Value c, Value perChunk,
                                           Value numBlocks) {
  ImplicitLocOpBuilder &b = p.b;
  Value first = arith::MinSIOp::create(b, arith::MulIOp::create(b, c, perChunk), numBlocks);
  Value end = arith::MinSIOp::create(b, arith::AddIOp::create(b, first, perChunk), numBlocks);
  return {first, end};
}

/// Tokens of sequence chunk `c`: blocks of `blk` tokens (the last may be short).
static Value chunkTokens(TileBuilder &p, Value c, Value perChunk, Value numBlocks,
                         Value blkIdx, Value n) {
  ImplicitLocOpBuilder &b = p.b;
  auto [first, end] = chunkBlocks(p, c, perChunk, numBlocks);
  Value tokens = arith::SubIOp::create(
      b, arith::MinSIOp::create(b, n, arith::MulIOp::create(b, end, blkIdx)),
      arith::MinSIOp::create(b, n, arith::MulIOp::create(b, first, blkIdx)));
  return p.indexToF32(tokens);
}

/// Replaces each chunk's own state in `states` ([B, H, chunks, R, C], in pieces of
/// `rows` x `cols` along R or C) by the state the chunk starts from: the own states of
/// the chunks before it (after it, `reverse`), each decayed over the chunks that follow,
/// summed onto `start` (the sequence's initial state, or zero). The scan is elementwise:
/// one program per (head, batch, 16-column band of a piece) walks the chunks once, so
/// that a few heads still fill the machine (a program per piece left the scan
/// latency-bound), where summing its predecessors in every chunk's own program would
/// read O(chunks²) states.
static void scanChunkStates(LinearProgram &p, Value states, int64_t chunks, int64_t pieces,
                            int64_t rows, int64_t cols, bool piecesOfRows, bool reverse,
                            Value nHeads, Value nBatch, Value decay, tile::ConfigAttr config,
                            function_ref<Value(Value c)> tokensOf,
                            function_ref<Value(Value batch, Value head, Value row0,
                                               Value col0, int64_t bandCols)> start) {
  ImplicitLocOpBuilder &b = p.b;
  int64_t bandCols = cols % 16 == 0 ? 16 : cols, bands = cols / bandCols;
  p.grid({nHeads, nBatch, p.cIndex(pieces * bands)}, config, [&](ArrayRef<Value> ids) {
    Value head = ids[0], batch = ids[1], c0 = p.cIndex(0);
    p.log2Decay = loadLog2Decay(p, decay, head);
    Value piece = arith::DivUIOp::create(b, ids[2], p.cIndex(bands));
    Value band = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, ids[2], p.cIndex(bands)), p.cIndex(bandCols));
    Value offset = arith::MulIOp::create(b, piece, p.cIndex(piecesOfRows ? rows : cols));
    Value row0 = piecesOfRows ? offset : c0;
    Value col0 = piecesOfRows ? band : arith::AddIOp::create(b, offset, band).getResult();
    Type type = p.tileType({rows, bandCols}, p.f32);
    // Chunk of step j (clamped: the last step's look-ahead re-reads the last chunk).
    auto chunkAt = [&](Value j) -> Value {
      j = arith::MinSIOp::create(b, j, p.cIndex(chunks - 1));
      return reverse ? arith::SubIOp::create(b, p.cIndex(chunks - 1), j).getResult() : j;
    };
    auto ownState = [&](Value c) {
      return tile::LoadOp::create(b, type, states, ValueRange{batch, head, c, row0, col0},
                                  nullptr)
          .getResult();
    };
    // Each step loads the next chunk's own state before it stores its own result, so
    // that the load's latency overlaps a step instead of adding to it.
    Value first = ownState(chunkAt(c0));
    p.forLoop(c0, p.cIndex(chunks), {start(batch, head, row0, col0, bandCols), first},
              [&](Value j, ValueRange carried) {
                Value c = chunkAt(j);
                Value next = ownState(chunkAt(arith::AddIOp::create(b, j, p.cIndex(1))));
                tile::StoreOp::create(b, carried[0], states,
                                      ValueRange{batch, head, c, row0, col0});
                Value decayed = arith::MulFOp::create(
                    b, carried[0], p.splatOf({rows, bandCols}, p.decayPow(tokensOf(c))));
                return SmallVector<Value>{arith::AddFOp::create(b, decayed, carried[1]), next};
              });
  });
}

namespace {
/// One operand role of a causal sweep: a [B, heads, N, width] buffer read at the
/// program's query head or at its key/value head, through φ (`mapped`) or as stored.
struct SweepInput {
  Value buffer;
  bool byKvHead = false;
  bool mapped = false;
};

/// A causal sweep over the sequence in blocks of block_m tokens (SEMANTICS §2): per block
///   out = τ (Λr (R S) + [(R Kᵀ) ⊙ M] V),  then  S ← λ^valid S + (Λk K)ᵀ V,
/// with the state S [d, dv] (f32) carried on chip. Forward, S sums the blocks before,
/// M_ts = λ^(t-s) for s ≤ t, Λr = λ^(r+1) and Λk = λ^(valid-1-r) for row r. `reverse`
/// walks the blocks last to first: S sums the blocks after, M_ts = λ^(s-t) for s ≥ t and
/// the two row decays swap. The forward pass is one sweep (R, K, V = φ(Q), φ(K), V); the
/// gradient three, with the roles of Q, K, V and the output gradient permuted.
struct CausalSweep {
  SweepInput rows, keys, values;
  bool reverse = false;
  /// `out` is per key/value head, the sum over its group's query heads (the gradient of
  /// a shared key or value).
  bool grouped = false;
  Value init;                 // [B, H, d, dv], or [B, H, dv, d] (`initTransposed`); optional
  bool initTransposed = false;
  Value finalState;           // [B, H, d, dv]; optional
  Value out;                  // [B, heads, N, dv]
  Value chainRule;            // optional: φ' of this buffer (indexed as `out`) scales `out`
};

/// How a causal sweep is cut and what it allocates (buildCausalSweep): `split` programs
/// per (head, batch) as pieces of the value columns times chunks of the sequence.
struct SweepPlan {
  int64_t d, dv, pieces, chunks;
  bool transposed; // the state carried as Sᵀ [dv, d] (fillsWarpRows), else S [d, dv]
  SmallVector<int64_t, 2> stateShape;
  Value c0, c1;
  Value perChunk;    // blocks per chunk
  Value chunkStates; // [B, H, chunks, state] f32: own states, then the starting states
  Value groupSums;   // [B, H (0 for groups of one), N, Dv] f32: grouped outputs per head
  // A grouped sweep's grid extents: query heads where every group is one head (else 0),
  // query and key/value heads where groups are larger (else 0). A shape launches only
  // the grids with programs.
  Value headsOfSingleGroups, headsOfSharedGroups, kvHeadsOfSharedGroups;
};
} // namespace

/// The initial state's block at [row0, row0 + rows) x [col0, col0 + cols) of the carried
/// orientation (Sᵀ [dv, d] where `plan.transposed`, else S [d, dv]), in that orientation.
static Value loadInitialState(LinearProgram &p, const CausalSweep &sw, const SweepPlan &plan,
                              Value batch, Value head, Value row0, Value col0, int64_t rows,
                              int64_t cols) {
  bool flip = sw.initTransposed != plan.transposed;
  SmallVector<int64_t> shape = flip ? SmallVector<int64_t>{cols, rows}
                                    : SmallVector<int64_t>{rows, cols};
  SmallVector<Value> idx = flip ? SmallVector<Value>{batch, head, col0, row0}
                                : SmallVector<Value>{batch, head, row0, col0};
  Value s = tile::LoadOp::create(p.b, p.tileType(shape, p.f32), sw.init, idx, nullptr);
  return flip ? p.trans(s) : s;
}

/// What one grid of a sweep does (emitSweepGrid).
enum class SweepGrid {
  States,     // each chunk's own state, from zero, into the workspace
  Outputs,    // the blocks from the chunk's starting state, outputs stored
  GroupOfOne, // the same for a grouped sweep whose groups are one head (else no programs)
  GroupSums,  // the same for groups of several heads: outputs kept in f32 for their sum
};

/// One grid of a sweep, a program per (piece x chunk, head, batch). The split index
/// varies fastest: the pieces of a head run side by side and read its rows and keys from
/// L2 after the first. A grouped sweep has a grid for either kind of group, of which the
/// launch runs the one with programs: each stores its blocks unconditionally (a branch
/// per block between the two stores kept them from going out through shared memory).
static void emitSweepGrid(LinearProgram &p, const LinearOperands &ops, const CausalSweep &sw,
                          const SweepPlan &plan, tile::ConfigAttr config, SweepGrid kind) {
  bool statesOnly = kind == SweepGrid::States;
  ImplicitLocOpBuilder &b = p.b;
  int64_t d = plan.d, dv = plan.dv, blk = ops.blk, chunks = plan.chunks;
  bool transposed = plan.transposed;
  ArrayRef<int64_t> stateShape = plan.stateShape;
  Value n = ops.n, group = ops.group, blkIdx = ops.blkIdx;
  Value c0 = plan.c0, c1 = plan.c1, chunkStates = plan.chunkStates;
  Value groupSums = plan.groupSums;
  Type operandType = p.operandType;
  OpBuilder::InsertionGuard guard(b);
  // No chunk starts after the last one (before the first, in reverse): the states grid
  // has no programs for that chunk's own state, which is never read (idle programs would
  // crowd the working ones onto fewer SMs).
  int64_t gridChunks = statesOnly ? chunks - 1 : chunks;
  // The states grid's body is one product per block, too short to hide a copy: where
  // the config pipelines, its copies run up to three blocks ahead.
  if (statesOnly && config.getNumStages() >= 2)
    config = tile::ConfigAttr::get(b.getContext(), config.getBlockM(), config.getBlockN(),
                                   config.getNumWarps(), std::max<int64_t>(4, config.getNumStages()),
                                   config.getSplit());
  Value heads = kind == SweepGrid::GroupOfOne  ? plan.headsOfSingleGroups
                : kind == SweepGrid::GroupSums ? plan.headsOfSharedGroups
                                               : ops.nHeads;
  auto grid = tile::GridOp::create(
      b, ValueRange{p.cIndex(plan.pieces * gridChunks), heads, ops.nBatch}, config);
  b.setInsertionPointToStart(&grid.getBody().emplaceBlock());
  Value head = p.programId(1), batch = p.programId(2);
  Value kvHead = arith::DivSIOp::create(b, head, group);
  Value piece = arith::RemUIOp::create(b, p.programId(0), p.cIndex(plan.pieces));
  Value chunk = arith::DivUIOp::create(b, p.programId(0), p.cIndex(plan.pieces));
  if (statesOnly && sw.reverse)
    chunk = arith::AddIOp::create(b, chunk, c1);
  Value col0 = arith::MulIOp::create(b, piece, p.cIndex(dv));
  auto [firstBlock, endBlock] = chunkBlocks(p, chunk, plan.perChunk, ops.numBlocks);
  p.log2Decay = loadLog2Decay(p, ops.decay, head);
  Value outHead = sw.grouped ? kvHead : head;
  auto workspaceIndex = [&](Value c) {
    return transposed ? SmallVector<Value>{batch, head, c, col0, c0}
                      : SmallVector<Value>{batch, head, c, c0, col0};
  };
  // The chunk-states grid starts every chunk from zero; with chunks, the scan has put
  // each chunk's starting state (the initial state's included) in the workspace.
  Value state = sw.init && !chunkStates
                    ? loadInitialState(p, sw, plan, batch, head, transposed ? col0 : c0,
                                       transposed ? c0 : col0, stateShape[0], stateShape[1])
                    : p.splatF32(stateShape, 0.0f);
  Value local = tile::RangeOp::create(b, p.tileType({blk}, p.i32), c0); // 0 .. blk-1
  // A role's rows [n0, n0 + blk), columns [col, col + width), as a product operand;
  // only φ = elu + 1 maps the zero padding past `valid` off zero.
  auto load = [&](const SweepInput &in, Value n0, Value valid, Value col, int64_t width) {
    SmallVector<Value> at{batch, in.byKvHead ? kvHead : head, n0, col};
    if (!in.mapped || p.featureMap == attn::FeatureMap::identity)
      return Value(
          tile::LoadOp::create(b, p.tileType({blk, width}, operandType), in.buffer, at, nullptr));
    Value x = p.phi(p.loadF32(in.buffer, {blk, width}, at));
    if (p.featureMap == attn::FeatureMap::elu_plus_one)
      x = p.zeroRowsFrom(x, local, valid);
    return p.asOperand(x);
  };
  auto validRows = [&](Value n0) {
    return arith::MinSIOp::create(b, blkIdx, arith::SubIOp::create(b, n, n0)).getResult();
  };
  // Blocks in sweep order.
  auto forBlocks = [&](Value init, function_ref<Value(Value n0, Value carried)> body) {
    return p.forLoop(firstBlock, endBlock, ValueRange{init}, [&](Value i, ValueRange carried) {
      Value block = i;
      if (sw.reverse)
        block = arith::SubIOp::create(
            b, arith::SubIOp::create(b, arith::AddIOp::create(b, firstBlock, endBlock), c1), i);
      return SmallVector<Value>{body(arith::MulIOp::create(b, block, blkIdx), carried[0])};
    })[0];
  };
  // The intra-block decay mask; λ^(r+1) for the rows before the state's reference
  // point (the token after the block); λ^(valid-1-r) after it, the exponent clamped
  // at 0 past `valid` (λ^(negative) could overflow to inf; those rows are zero).
  Value rowsF = arith::SIToFPOp::create(b, p.tileType({blk}, p.f32), local);
  // Made per block (a few exp2 per thread) rather than held across the loop: a
  // [blk, blk] f32 tile is 32 registers per thread with 4 warps.
  auto decayMask = [&] {
    Value down = p.broadcast(rowsF, 1, blk), across = p.broadcast(rowsF, 0, blk);
    Value diff = sw.reverse ? arith::SubFOp::create(b, across, down)
                            : arith::SubFOp::create(b, down, across);
    Value inside =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, diff, p.splatF32({blk, blk}, 0.0f));
    return arith::SelectOp::create(b, inside, p.decayPow(diff), p.splatF32({blk, blk}, 0.0f))
        .getResult();
  };
  auto beforeDecay = [&] {
    return p.decayPow(arith::AddFOp::create(b, rowsF, p.splatF32({blk}, 1.0f)));
  };
  auto afterDecay = [&](Value valid) {
    Value last = arith::SubFOp::create(b, p.indexToF32(valid), p.cF32(1.0));
    Value e = arith::MaxNumFOp::create(b, arith::SubFOp::create(b, p.splatOf({blk}, last), rowsF),
                                       p.splatF32({blk}, 0.0f));
    return p.decayPow(e);
  };
  // S ← λ^valid S + (Kᵀ Λk) V: the decay scales the columns of the left operand (Kᵀ,
  // or Vᵀ for Sᵀ ← λ^valid Sᵀ + (Vᵀ Λk) K), so the right one goes to the product as
  // loaded.
  auto updateState = [&](Value s, Value kb, Value vb, Value valid) {
    Value keyDecay = sw.reverse ? beforeDecay() : afterDecay(valid);
    Value left = p.widen(p.trans(transposed ? vb : kb)), right = transposed ? kb : vb;
    Value decayed = arith::MulFOp::create(b, left, p.broadcast(keyDecay, 0, stateShape[0]));
    Value carried =
        arith::MulFOp::create(b, s, p.splatOf(stateShape, p.decayPow(p.indexToF32(valid))));
    return p.dot(p.asOperand(decayed), right, carried);
  };
  if (statesOnly) {
    Value own = forBlocks(state, [&](Value n0, Value s) {
      Value valid = validRows(n0);
      Value kb = load(sw.keys, n0, valid, c0, d), vb = load(sw.values, n0, valid, col0, dv);
      return updateState(s, kb, vb, valid);
    });
    tile::StoreOp::create(b, own, chunkStates, workspaceIndex(chunk));
    return;
  }
  if (chunkStates)
    state = tile::LoadOp::create(b, p.tileType(stateShape, p.f32), chunkStates,
                                 workspaceIndex(chunk), nullptr);
  Value scaleTile = p.splatF32({blk, dv}, float(ops.scale));
  Value zeroOut = p.splatF32({blk, dv}, 0.0f);
  // A block's output: stored, or (groups of several heads) kept in f32 for the sum.
  auto emit = [&](Value o, Value n0) {
    if (kind == SweepGrid::GroupSums)
      tile::StoreOp::create(b, o, groupSums, ValueRange{batch, head, n0, col0});
    else
      p.storeAs(o, sw.out, ValueRange{batch, outHead, n0, col0});
  };
  state = forBlocks(state, [&](Value n0, Value s) {
    Value valid = validRows(n0);
    Value rb = load(sw.rows, n0, valid, c0, d), kb = load(sw.keys, n0, valid, c0, d);
    Value vb = load(sw.values, n0, valid, col0, dv);
    // out = Λr (R S) + [(R Kᵀ) ⊙ M] V: the row decay applied after the product, so
    // that R feeds both products as it was loaded. R Kᵀ comes first: its mask
    // arithmetic can run while R S is still being multiplied (the state's operand is
    // made first).
    Value stateOperand = p.asOperand(s);
    if (transposed)
      stateOperand = p.trans(stateOperand);
    Value scores = p.dot(rb, p.trans(kb), p.splatF32({blk, blk}, 0.0f));
    Value inter = p.dot(rb, stateOperand, zeroOut);
    scores = arith::MulFOp::create(b, scores, decayMask());
    Value rowDecay = p.broadcast(sw.reverse ? afterDecay(valid) : beforeDecay(), 1, dv);
    Value o = p.dot(p.asOperand(scores), vb, arith::MulFOp::create(b, inter, rowDecay));
    o = arith::MulFOp::create(b, o, scaleTile);
    if (sw.chainRule && p.featureMap != attn::FeatureMap::identity)
      o = arith::MulFOp::create(b, o,
                                p.phiDerivative(p.loadF32(sw.chainRule, {blk, dv},
                                                          ValueRange{batch, outHead, n0, col0})));
    emit(o, n0);
    return updateState(s, kb, vb, valid);
  });
  if (!sw.finalState)
    return;
  // The final state is the last chunk's, stored as [d, dv].
  auto storeFinal = [&] {
    tile::StoreOp::create(b, transposed ? p.trans(state) : state, sw.finalState,
                          ValueRange{batch, head, c0, col0});
    return SmallVector<Value>{};
  };
  if (chunks == 1) {
    storeFinal();
    return;
  }
  Value lastChunk = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, chunk, p.cIndex(chunks - 1));
  p.ifElse(lastChunk, storeFinal, [] { return SmallVector<Value>{}; });
}

/// The sums of a grouped sweep's outputs over groups of several heads (no programs for
/// groups of one), a program per (piece x chunk, key/value head, batch) as the sweep's.
static void emitGroupSums(LinearProgram &p, const LinearOperands &ops, const CausalSweep &sw,
                          const SweepPlan &plan, tile::ConfigAttr config) {
  ImplicitLocOpBuilder &b = p.b;
  int64_t blk = ops.blk, dv = plan.dv, pieces = plan.pieces;
  Value group = ops.group, blkIdx = ops.blkIdx, c0 = plan.c0;
  Value kvHeads = plan.kvHeadsOfSharedGroups, split = p.cIndex(config.getSplit());
  p.grid({kvHeads, ops.nBatch, split}, config, [&](ArrayRef<Value> ids) {
    Value kvHead = ids[0], batch = ids[1];
    Value col0 =
        arith::MulIOp::create(b, arith::RemUIOp::create(b, ids[2], p.cIndex(pieces)), p.cIndex(dv));
    auto [first, end] = chunkBlocks(p, arith::DivUIOp::create(b, ids[2], p.cIndex(pieces)),
                                    plan.perChunk, ops.numBlocks);
    p.forLoop(first, end, {}, [&](Value i, ValueRange) {
      Value n0 = arith::MulIOp::create(b, i, blkIdx);
      Value sum =
          p.forLoop(c0, group, {p.splatF32({blk, dv}, 0.0f)}, [&](Value g, ValueRange acc) {
            Value head = arith::AddIOp::create(b, arith::MulIOp::create(b, kvHead, group), g);
            Value t = tile::LoadOp::create(b, p.tileType({blk, dv}, p.f32), plan.groupSums,
                                           ValueRange{batch, head, n0, col0}, nullptr);
            return SmallVector<Value>{arith::AddFOp::create(b, acc[0], t)};
          })[0];
      p.storeAs(sum, sw.out, ValueRange{batch, kvHead, n0, col0});
      return SmallVector<Value>{};
    });
  });
}

/// Emits the grids of a causal sweep. `split` programs share a (head, batch) when batch x
/// heads alone cannot fill the machine: first as pieces of the value columns (whole warps'
/// rows each where they divide: the query-key product is recomputed per piece), the rest
/// as chunks of the sequence: a first grid writes each chunk's own state (from zero, over
/// its blocks) to a workspace, a scan turns those into the states the chunks start from,
/// and the programs of the last grid start from their chunk's.
static void buildCausalSweep(LinearProgram &p, const LinearOperands &ops, const CausalSweep &sw,
                             tile::ConfigAttr config) {
  ImplicitLocOpBuilder &b = p.b;
  auto widthOf = [](Value buffer) { return cast<MemRefType>(buffer.getType()).getDimSize(3); };
  SweepPlan plan;
  plan.d = widthOf(sw.keys.buffer);
  int64_t dvAll = widthOf(sw.values.buffer), warps = config.getNumWarps();
  plan.pieces = forwardPieces(config.getSplit(), dvAll, warps);
  plan.chunks = config.getSplit() / plan.pieces;
  plan.dv = dvAll / plan.pieces;
  plan.transposed = fillsWarpRows(plan.dv, warps);
  plan.stateShape = plan.transposed ? SmallVector<int64_t, 2>{plan.dv, plan.d}
                                    : SmallVector<int64_t, 2>{plan.d, plan.dv};
  Value nBatch = ops.nBatch, nHeads = ops.nHeads, n = ops.n;
  plan.c0 = p.cIndex(0);
  plan.c1 = p.cIndex(1);
  auto dyn = ShapedType::kDynamic;
  if (plan.chunks > 1) {
    SmallVector<int64_t> shape{dyn, dyn, plan.chunks, plan.d, dvAll};
    if (plan.transposed)
      std::swap(shape[3], shape[4]);
    plan.chunkStates =
        memref::AllocOp::create(b, MemRefType::get(shape, p.f32), ValueRange{nBatch, nHeads});
  }
  // Grouped outputs of a group of several heads go to f32 per query head first, summed
  // by a last grid (a group of one head stores its own: the buffer then has no heads).
  if (sw.grouped) {
    auto unless = [&](arith::CmpIPredicate pred, Value x, Value y) {
      return arith::SelectOp::create(b, p.cmpI(pred, x, y), x, plan.c0).getResult();
    };
    Value nKvHeads = ops.nKvHeads;
    plan.headsOfSharedGroups = unless(arith::CmpIPredicate::ne, nHeads, nKvHeads);
    plan.headsOfSingleGroups = unless(arith::CmpIPredicate::eq, nHeads, nKvHeads);
    plan.kvHeadsOfSharedGroups = unless(arith::CmpIPredicate::ne, nKvHeads, nHeads);
    plan.groupSums = memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn, dvAll}, p.f32),
                                             ValueRange{nBatch, plan.headsOfSharedGroups, n});
  }
  plan.perChunk = p.ceilDiv(ops.numBlocks, plan.chunks);
  if (plan.chunkStates) {
    emitSweepGrid(p, ops, sw, plan, config, SweepGrid::States);
    // Each chunk's own state becomes the state it starts from (the initial state goes
    // in before the first chunk).
    int64_t rows = plan.stateShape[0], cols = plan.stateShape[1];
    scanChunkStates(
        p, plan.chunkStates, plan.chunks, plan.pieces, rows, cols,
        /*piecesOfRows=*/plan.transposed, sw.reverse, nHeads, nBatch, ops.decay, config,
        [&](Value c) { return chunkTokens(p, c, plan.perChunk, ops.numBlocks, ops.blkIdx, n); },
        [&](Value batch, Value head, Value row0, Value col0, int64_t bandCols) {
          if (!sw.init)
            return p.splatF32({rows, bandCols}, 0.0f);
          return loadInitialState(p, sw, plan, batch, head, row0, col0, rows, bandCols);
        });
  }
  if (!sw.grouped) {
    emitSweepGrid(p, ops, sw, plan, config, SweepGrid::Outputs);
    return;
  }
  emitSweepGrid(p, ops, sw, plan, config, SweepGrid::GroupOfOne);
  emitSweepGrid(p, ops, sw, plan, config, SweepGrid::GroupSums);
  emitGroupSums(p, ops, sw, plan, config);
}

LogicalResult tessera::buildLinearTileProgram(ImplicitLocOpBuilder &b, attn::LinearAttentionOp op,
                                              const IRMapping &buffers, tile::ConfigAttr config) {
  if (op.getNormalize())
    return op.emitError("normalize is not lowered to a tile program yet");
  LinearProgram p(b, op.getFeatureMap());
  LinearOperands ops(p, op, buffers, config);
  p.operandType = cast<MemRefType>(ops.q.getType()).getElementType();
  Value out = buffers.lookup(op.getOutput()), finalState = buffers.lookup(op.getFinalState());
  if (op.getCausal()) {
    CausalSweep sw;
    sw.rows = {ops.q, /*byKvHead=*/false, /*mapped=*/true};
    sw.keys = {ops.k, /*byKvHead=*/true, /*mapped=*/true};
    sw.values = {ops.v, /*byKvHead=*/true, /*mapped=*/false};
    sw.init = ops.init;
    sw.finalState = finalState;
    sw.out = out;
    buildCausalSweep(p, ops, sw, config);
    return success();
  }
  // Non-causal: S = S₀ + φ(K)ᵀV over all blocks, then O = τ φ(Q) S over this program's
  // blocks (`split` programs per head and batch: pieces of the value columns, then
  // chunks of the output blocks).
  int64_t d = ops.d, blk = ops.blk, split = config.getSplit(), warps = config.getNumWarps();
  int64_t pieces = forwardPieces(split, ops.dv, warps);
  int64_t chunks = split / pieces, dv = ops.dv / pieces;
  bool transposed = fillsWarpRows(dv, warps); // the state as Sᵀ [dv, d]
  Value c0 = p.cIndex(0);
  OpBuilder::InsertionGuard guard(b);
  auto [head, batch, kvHead] = beginHeadProgram(p, ops.nHeads, ops.nBatch, ops.group,
                                                ops.decay, config, p.cIndex(split));
  Value piece = arith::RemUIOp::create(b, p.programId(2), p.cIndex(pieces));
  Value chunk = arith::DivUIOp::create(b, p.programId(2), p.cIndex(pieces));
  Value col0 = arith::MulIOp::create(b, piece, p.cIndex(dv));
  auto [firstBlock, endBlock] =
      chunkBlocks(p, chunk, p.ceilDiv(ops.numBlocks, chunks), ops.numBlocks);
  Value local = tile::RangeOp::create(b, p.tileType({blk}, p.i32), c0);
  auto loadMapped = [&](Value buffer, Value h, Value n0) -> Value {
    if (op.getFeatureMap() == attn::FeatureMap::identity)
      return tile::LoadOp::create(b, p.tileType({blk, d}, p.operandType), buffer,
                                  ValueRange{batch, h, n0, c0}, nullptr);
    Value valid = arith::MinSIOp::create(b, ops.blkIdx, arith::SubIOp::create(b, ops.n, n0));
    Value x = p.phi(p.loadF32(buffer, {blk, d}, ValueRange{batch, h, n0, c0}));
    return p.asOperand(p.zeroRowsFrom(x, local, valid));
  };
  auto forBlocks = [&](Value from, Value to, Value init,
                       function_ref<Value(Value n0, Value carried)> body) {
    return p.forLoop(from, to, ValueRange{init}, [&](Value i, ValueRange carried) {
      return SmallVector<Value>{body(arith::MulIOp::create(b, i, ops.blkIdx), carried[0])};
    })[0];
  };
  auto oriented = [&](Value s) { return transposed ? p.trans(s) : s; }; // [d, dv] <-> carried
  Value state = ops.init ? oriented(tile::LoadOp::create(b, p.tileType({d, dv}, p.f32), ops.init,
                                                         ValueRange{batch, head, c0, col0},
                                                         nullptr))
                         : p.splatF32(transposed ? ArrayRef<int64_t>{dv, d}
                                                 : ArrayRef<int64_t>{d, dv},
                                      0.0f);
  state = forBlocks(c0, ops.numBlocks, state, [&](Value n0, Value s) {
    Value kb = loadMapped(ops.k, kvHead, n0);
    Value vb = tile::LoadOp::create(b, p.tileType({blk, dv}, p.operandType), ops.v,
                                    ValueRange{batch, kvHead, n0, col0}, nullptr);
    return transposed ? p.dot(p.trans(vb), kb, s) : p.dot(p.trans(kb), vb, s);
  });
  Value stateOperand = oriented(p.asOperand(state));
  Value scaleTile = p.splatF32({blk, dv}, float(ops.scale));
  forBlocks(firstBlock, endBlock, state, [&](Value n0, Value s) {
    Value o = p.dot(loadMapped(ops.q, head, n0), stateOperand, p.splatF32({blk, dv}, 0.0f));
    p.storeAs(arith::MulFOp::create(b, o, scaleTile), out, ValueRange{batch, head, n0, col0});
    return s;
  });
  // Every chunk has the whole state; the last stores it.
  auto storeFinal = [&] {
    tile::StoreOp::create(b, oriented(state), finalState, ValueRange{batch, head, c0, col0});
    return SmallVector<Value>{};
  };
  if (chunks == 1)
    storeFinal();
  else
    p.ifElse(p.cmpI(arith::CmpIPredicate::eq, chunk, p.cIndex(chunks - 1)), storeFinal,
             [] { return SmallVector<Value>{}; });
  return success();
}

LogicalResult tessera::buildLinearDecodeTileProgram(ImplicitLocOpBuilder &b,
                                                    attn::LinearDecodeOp op,
                                                    const IRMapping &buffers,
                                                    tile::ConfigAttr config) {
  Value q = buffers.lookup(op.getQuery()), k = buffers.lookup(op.getKey());
  Value v = buffers.lookup(op.getValue()), s0 = buffers.lookup(op.getState());
  Value out = buffers.lookup(op.getOutput()), s1 = buffers.lookup(op.getNewState());
  Value decay = op.getDecay() ? buffers.lookup(op.getDecay()) : Value();
  int64_t d = cast<MemRefType>(q.getType()).getDimSize(3);
  int64_t dv = cast<MemRefType>(v.getType()).getDimSize(3);
  double scale = op.getScaleAttr() ? op.getScaleAttr().getValueAsDouble() : 1.0;

  LinearProgram p(b, op.getFeatureMap());
  Value nBatch = memref::DimOp::create(b, q, 0), nHeads = memref::DimOp::create(b, q, 1);
  Value group = arith::DivSIOp::create(b, nHeads, memref::DimOp::create(b, k, 1));
  // As the forward: `split` programs per (head, batch) take pieces of the value columns
  // (16 or more each), so a piece of the state fits in registers.
  int64_t pieces = valuePieces(config.getSplit(), dv);
  int64_t piece = dv / pieces;
  OpBuilder::InsertionGuard guard(b);
  auto [head, batch, kvHead] =
      beginHeadProgram(p, nHeads, nBatch, group, decay, config, p.cIndex(pieces));
  Value c0 = p.cIndex(0), col0 = arith::MulIOp::create(b, p.programId(2), p.cIndex(piece));
  // The token is row 0 of tiles of 16 rows per warp (what products spread over warps):
  // loads past the one token read zeros, stores past it are dropped, φ's padding rows
  // are cleared.
  const int64_t kRows = 16 * config.getNumWarps();
  p.operandType = cast<MemRefType>(q.getType()).getElementType();
  Type operandType = p.operandType;
  Value tokenRow = tile::RangeOp::create(b, p.tileType({kRows}, p.i32), c0);
  auto mapped = [&](Value buffer, Value h) {
    Value x = p.phi(p.loadF32(buffer, {kRows, d}, ValueRange{batch, h, c0, c0}));
    return p.asOperand(p.zeroRowsFrom(x, tokenRow, p.cIndex(1)));
  };
  // S' = λ S + φ(k)ᵀ v; o = τ φ(q) S'.
  Value state = tile::LoadOp::create(b, p.tileType({d, piece}, p.f32), s0,
                                     ValueRange{batch, head, c0, col0}, nullptr);
  Value vt = tile::LoadOp::create(b, p.tileType({kRows, piece}, operandType), v,
                                  ValueRange{batch, kvHead, c0, col0}, nullptr);
  Value decayed = arith::MulFOp::create(b, state, p.splatOf({d, piece}, p.decayPow(p.cF32(1.0))));
  Value next = p.dot(p.trans(mapped(k, kvHead)), vt, decayed);
  Value o = p.dot(mapped(q, head), p.asOperand(next), p.splatF32({kRows, piece}, 0.0f));
  p.storeAs(arith::MulFOp::create(b, o, p.splatF32({kRows, piece}, float(scale))), out,
            ValueRange{batch, head, c0, col0});
  tile::StoreOp::create(b, next, s1, ValueRange{batch, head, c0, col0});
  return success();
}

LogicalResult tessera::buildLinearGradTileProgram(ImplicitLocOpBuilder &b,
                                                  attn::LinearAttentionGradOp op,
                                                  const IRMapping &buffers,
                                                  tile::ConfigAttr config) {
  if (!op.getCausal())
    return op.emitError("the non-causal gradient is not lowered to a tile program yet");
  LinearProgram p(b, op.getFeatureMap());
  LinearOperands ops(p, op, buffers, config);
  p.operandType = cast<MemRefType>(ops.q.getType()).getElementType();
  Value g = buffers.lookup(op.getGradOutput());
  // Three sweeps of the forward's kind (SEMANTICS §2), with G the output gradient, Q' and
  // K' the mapped queries and keys, and every output scaled by τ:
  //   dQ' = [(G Vᵀ) ⊙ M] K' + Λq (G Sᵀ),   Sᵀ = Σ before (Λk V)ᵀ K'   (forward)
  //   dK' = [(V Gᵀ) ⊙ Mᵀ] Q' + Λk (V dSᵀ), dSᵀ = Σ after (Λq G)ᵀ Q'   (reverse)
  //   dV  = [(K' Q'ᵀ) ⊙ Mᵀ] G + Λk (K' dS), dS = Σ after (Λq Q')ᵀ G    (reverse)
  // dQ = dQ' φ'(Q) and dK = dK' φ'(K); dK and dV sum over the query heads of a group.
  CausalSweep dq;
  dq.rows = {g, /*byKvHead=*/false, /*mapped=*/false};
  dq.keys = {ops.v, /*byKvHead=*/true, /*mapped=*/false};
  dq.values = {ops.k, /*byKvHead=*/true, /*mapped=*/true};
  dq.init = ops.init;
  dq.initTransposed = true; // the sweep carries Sᵀ
  dq.out = buffers.lookup(op.getGradQuery());
  dq.chainRule = ops.q;
  buildCausalSweep(p, ops, dq, config);

  CausalSweep dk;
  dk.rows = {ops.v, /*byKvHead=*/true, /*mapped=*/false};
  dk.keys = {g, /*byKvHead=*/false, /*mapped=*/false};
  dk.values = {ops.q, /*byKvHead=*/false, /*mapped=*/true};
  dk.reverse = dk.grouped = true;
  dk.out = buffers.lookup(op.getGradKey());
  dk.chainRule = ops.k;
  buildCausalSweep(p, ops, dk, config);

  CausalSweep dv;
  dv.rows = {ops.k, /*byKvHead=*/true, /*mapped=*/true};
  dv.keys = {ops.q, /*byKvHead=*/false, /*mapped=*/true};
  dv.values = {g, /*byKvHead=*/false, /*mapped=*/false};
  dv.reverse = dv.grouped = true;
  dv.out = buffers.lookup(op.getGradValue());
  buildCausalSweep(p, ops, dv, config);
  return success();
}
