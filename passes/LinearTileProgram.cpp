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

/// Pieces of the value columns for the forward: whole warps' rows each (16 x num_warps,
/// so that the piece's state can be held as Sᵀ, value columns as rows), else as for the
/// decode step.
static int64_t forwardPieces(int64_t split, int64_t dv, int64_t warps) {
  int64_t whole = statePieces(split, dv, [&](int64_t cols) { return cols % (16 * warps) == 0; });
  return whole > 1 || dv % (16 * warps) == 0 ? whole : valuePieces(split, dv);
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
/// summed onto `start` (the sequence's initial state, or zero). One program per (head,
/// batch, piece) walks the chunks once, where summing its predecessors in every chunk's
/// own program would read O(chunks²) states.
static void scanChunkStates(LinearProgram &p, Value states, int64_t chunks, int64_t pieces,
                            int64_t rows, int64_t cols, bool piecesOfRows, bool reverse,
                            Value nHeads, Value nBatch, Value decay, tile::ConfigAttr config,
                            function_ref<Value(Value c)> tokensOf,
                            function_ref<Value(Value batch, Value head, Value row0,
                                               Value col0)> start) {
  ImplicitLocOpBuilder &b = p.b;
  p.grid({nHeads, nBatch, p.cIndex(pieces)}, config, [&](ArrayRef<Value> ids) {
    Value head = ids[0], batch = ids[1], c0 = p.cIndex(0);
    p.log2Decay = loadLog2Decay(p, decay, head);
    Value offset = arith::MulIOp::create(b, ids[2], p.cIndex(piecesOfRows ? rows : cols));
    Value row0 = piecesOfRows ? offset : c0, col0 = piecesOfRows ? c0 : offset;
    Type type = p.tileType({rows, cols}, p.f32);
    p.forLoop(c0, p.cIndex(chunks), {start(batch, head, row0, col0)},
              [&](Value j, ValueRange carried) {
                Value c = reverse ? arith::SubIOp::create(b, p.cIndex(chunks - 1), j).getResult()
                                  : j;
                SmallVector<Value> at{batch, head, c, row0, col0};
                Value own = tile::LoadOp::create(b, type, states, at, nullptr);
                tile::StoreOp::create(b, carried[0], states, at);
                Value decayed = arith::MulFOp::create(
                    b, carried[0], p.splatOf({rows, cols}, p.decayPow(tokensOf(c))));
                return SmallVector<Value>{arith::AddFOp::create(b, decayed, own)};
              });
  });
}

LogicalResult tessera::buildLinearTileProgram(ImplicitLocOpBuilder &b,
                                              attn::LinearAttentionOp op,
                                              const IRMapping &buffers,
                                              tile::ConfigAttr config) {
  if (op.getNormalize())
    return op.emitError("normalize is not lowered to a tile program yet");
  LinearProgram p(b, op.getFeatureMap());
  LinearOperands ops(p, op, buffers, config);
  Value q = ops.q, k = ops.k, v = ops.v, decay = ops.decay, init = ops.init;
  p.operandType = cast<MemRefType>(q.getType()).getElementType();
  Value out = buffers.lookup(op.getOutput()), finalState = buffers.lookup(op.getFinalState());
  int64_t d = ops.d, blk = ops.blk, split = config.getSplit();
  // `split` programs share a (head, batch) when batch x heads alone cannot fill the
  // machine: first as pieces of the value columns (16 or more each; the query-key
  // product is recomputed per piece), the rest as chunks of the sequence (each chunk
  // first recomputes its starting state from the keys and values before it).
  int64_t pieces = forwardPieces(split, ops.dv, config.getNumWarps());
  int64_t chunks = split / pieces;
  int64_t dv = ops.dv / pieces;
  // A piece's state is carried as Sᵀ [dv, d] when its value columns fill whole warps'
  // rows: every product then has block_m or dv rows (a warpgroup product's rows) and the
  // state update multiplies K as loaded. Otherwise as S [d, dv].
  bool transposed = dv % (16 * config.getNumWarps()) == 0;
  SmallVector<int64_t> stateShape =
      transposed ? SmallVector<int64_t>{dv, d} : SmallVector<int64_t>{d, dv};
  double scale = ops.scale;
  Value nBatch = ops.nBatch, nHeads = ops.nHeads, n = ops.n, group = ops.group;
  Value blkIdx = ops.blkIdx, numBlocks = ops.numBlocks;
  // Causal sequence chunks: a first grid writes each chunk's own state contribution
  // (from zero, over its blocks) to a workspace, a scan turns those into the states the
  // chunks start from, and each program of the last grid starts from its chunk's instead
  // of re-reading the keys before it.
  Value chunkStates;
  if (op.getCausal() && chunks > 1) {
    auto dyn = ShapedType::kDynamic;
    SmallVector<int64_t> shape{dyn, dyn, chunks, d, ops.dv};
    if (transposed)
      std::swap(shape[3], shape[4]);
    chunkStates = memref::AllocOp::create(b, MemRefType::get(shape, p.f32),
                                          ValueRange{nBatch, nHeads});
  }
  SmallVector<bool> passes =
      chunkStates ? SmallVector<bool>{true, false} : SmallVector<bool>{false};
  Value perChunk = p.ceilDiv(numBlocks, chunks);
  for (bool statesOnly : passes) {
    if (!statesOnly && chunkStates) {
      // Each chunk's own state becomes the state it starts from (the caller's initial
      // state goes in here, before the first chunk).
      int64_t rows = stateShape[0], cols = stateShape[1];
      scanChunkStates(
          p, chunkStates, chunks, pieces, rows, cols, /*piecesOfRows=*/transposed,
          /*reverse=*/false, nHeads, nBatch, decay, config,
          [&](Value c) { return chunkTokens(p, c, perChunk, numBlocks, blkIdx, n); },
          [&](Value batch, Value head, Value row0, Value col0) {
            if (!init)
              return p.splatF32({rows, cols}, 0.0f);
            Value at = transposed ? row0 : col0;
            Value s = tile::LoadOp::create(b, p.tileType({d, dv}, p.f32), init,
                                           ValueRange{batch, head, p.cIndex(0), at}, nullptr);
            return transposed ? p.trans(s) : s;
          });
    }
    OpBuilder::InsertionGuard guard(b);
    auto [head, batch, kvHead] =
        beginHeadProgram(p, nHeads, nBatch, group, decay, config, p.cIndex(split));
    Value c0 = p.cIndex(0), c1 = p.cIndex(1);
    Value piece = arith::RemUIOp::create(b, p.programId(2), p.cIndex(pieces));
    Value chunk = arith::DivUIOp::create(b, p.programId(2), p.cIndex(pieces));
    Value col0 = arith::MulIOp::create(b, piece, p.cIndex(dv));
    auto [firstBlock, endBlock] = chunkBlocks(p, chunk, perChunk, numBlocks);
    // States in memory: [B, H, d, Dv] for the caller's (SEMANTICS §2), in the carried
    // orientation for the chunk workspace.
    auto loadState = [&](Value buffer, ValueRange idx) {
      Value s = tile::LoadOp::create(b, p.tileType({d, dv}, p.f32), buffer, idx, nullptr);
      return transposed ? p.trans(s) : s;
    };
    auto storeState = [&](Value s, Value buffer, ValueRange idx) {
      tile::StoreOp::create(b, transposed ? p.trans(s) : s, buffer, idx);
    };
    auto workspaceIndex = [&](Value c) {
      return transposed ? SmallVector<Value>{batch, head, c, col0, c0}
                        : SmallVector<Value>{batch, head, c, c0, col0};
    };
    // Q S with the state as the right operand.
    auto rightOperand = [&](Value s) {
      Value operand = p.asOperand(s);
      return transposed ? p.trans(operand) : operand;
    };
    // The chunk-states grid starts every chunk from zero; with chunks, the scan has put
    // each chunk's starting state (the initial state's included) in the workspace.
    Value state = init && !chunkStates ? loadState(init, ValueRange{batch, head, c0, col0})
                                       : p.splatF32(stateShape, 0.0f);
    Value local = tile::RangeOp::create(b, p.tileType({blk}, p.i32), c0); // 0 .. blk-1

    Type operandType = p.operandType;
    // φ(rows) as operands; only φ = elu + 1 maps the zero padding past `valid` off zero.
    auto loadMapped = [&](Value buffer, Value h, Value n0, Value valid) {
      if (op.getFeatureMap() == attn::FeatureMap::identity)
        return Value(tile::LoadOp::create(b, p.tileType({blk, d}, operandType), buffer,
                                          ValueRange{batch, h, n0, c0}, nullptr));
      Value x = p.phi(p.loadF32(buffer, {blk, d}, ValueRange{batch, h, n0, c0}));
      if (op.getFeatureMap() == attn::FeatureMap::elu_plus_one)
        x = p.zeroRowsFrom(x, local, valid);
      return p.asOperand(x);
    };
    auto loadBlock = [&](Value n0) {
      Value valid = arith::MinSIOp::create(b, blkIdx, arith::SubIOp::create(b, n, n0));
      Value qb = loadMapped(q, head, n0, valid), kb = loadMapped(k, kvHead, n0, valid);
      Value vb = tile::LoadOp::create(b, p.tileType({blk, dv}, operandType), v,
                                      ValueRange{batch, kvHead, n0, col0}, nullptr);
      return std::make_tuple(qb, kb, vb, valid);
    };
    auto forBlocks = [&](Value from, Value to, Value init,
                         function_ref<Value(Value n0, Value carried)> body) {
      return p.forLoop(from, to, ValueRange{init}, [&](Value i, ValueRange carried) {
        return SmallVector<Value>{body(arith::MulIOp::create(b, i, blkIdx), carried[0])};
      })[0];
    };
    Value scaleTile = p.splatF32({blk, dv}, float(scale));
    Value zeroOut = p.splatF32({blk, dv}, 0.0f);

    if (op.getCausal()) {
      // t - s for the intra-block decay mask; r + 1 for Λq.
      Value rowsF = arith::SIToFPOp::create(b, p.tileType({blk}, p.f32), local);
      Value diff = arith::SubFOp::create(b, p.broadcast(rowsF, 1, blk), p.broadcast(rowsF, 0, blk));
      Value lower =
          arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, diff, p.splatF32({blk, blk}, 0.0f));
      Value mask =
          arith::SelectOp::create(b, lower, p.decayPow(diff), p.splatF32({blk, blk}, 0.0f));
      Value qDecay =
          p.broadcast(p.decayPow(arith::AddFOp::create(b, rowsF, p.splatF32({blk}, 1.0f))), 1, dv);
      // S ← λ^valid S + (Kᵀ Λk) V with Λk = λ^(last - t) for token t of the block, last
      // its last valid token: the decay scales the columns of the left operand (Kᵀ, or
      // Vᵀ for Sᵀ ← λ^valid Sᵀ + (Vᵀ Λk) K), so the right one goes to the product as
      // loaded. Rows past `valid` are zero; the exponent is clamped at 0 there
      // (λ^(negative) could overflow to inf).
      auto updateState = [&](Value s, Value kb, Value vb, Value n0, Value valid) {
        Value validF = p.indexToF32(valid);
        Value tokens = arith::SIToFPOp::create(
            b, p.tileType({blk}, p.f32), tile::RangeOp::create(b, p.tileType({blk}, p.i32), n0));
        Value lastF =
            p.indexToF32(arith::SubIOp::create(b, arith::AddIOp::create(b, n0, valid), c1));
        Value kExp = arith::MaxNumFOp::create(
            b, arith::SubFOp::create(b, p.splatOf({blk}, lastF), tokens), p.splatF32({blk}, 0.0f));
        Value left = p.widen(p.trans(transposed ? vb : kb)), right = transposed ? kb : vb;
        Value decayed = arith::MulFOp::create(
            b, left, p.broadcast(p.decayPow(kExp), 0, stateShape[0]));
        Value carried = arith::MulFOp::create(b, s, p.splatOf(stateShape, p.decayPow(validF)));
        return p.dot(p.asOperand(decayed), right, carried);
      };
      auto stateOnly = [&](Value n0, Value s) {
        Value valid = arith::MinSIOp::create(b, blkIdx, arith::SubIOp::create(b, n, n0));
        Value kb = loadMapped(k, kvHead, n0, valid);
        Value vb = tile::LoadOp::create(b, p.tileType({blk, dv}, operandType), v,
                                        ValueRange{batch, kvHead, n0, col0}, nullptr);
        return updateState(s, kb, vb, n0, valid);
      };
      if (statesOnly) {
        Value own = forBlocks(firstBlock, endBlock, state, stateOnly); // from zero
        tile::StoreOp::create(b, own, chunkStates, workspaceIndex(chunk));
        continue;
      }
      if (chunkStates)
        state = tile::LoadOp::create(b, p.tileType(stateShape, p.f32), chunkStates,
                                     workspaceIndex(chunk), nullptr);
      state = forBlocks(firstBlock, endBlock, state, [&](Value n0, Value s) {
        auto [qb, kb, vb, valid] = loadBlock(n0);
        // O = Λq (Q S) + [(Q Kᵀ) ⊙ M] V: the row decay applied after the product, so that
        // Q feeds both products as it was loaded. Q Kᵀ comes first: its mask arithmetic
        // can run while Q S is still being multiplied (the state's operand is made first).
        Value stateOperand = rightOperand(s);
        Value scores = p.dot(qb, p.trans(kb), p.splatF32({blk, blk}, 0.0f));
        Value inter = p.dot(qb, stateOperand, zeroOut);
        scores = arith::MulFOp::create(b, scores, mask);
        Value o = p.dot(p.asOperand(scores), vb, arith::MulFOp::create(b, inter, qDecay));
        p.storeAs(arith::MulFOp::create(b, o, scaleTile), out, ValueRange{batch, head, n0, col0});
        return updateState(s, kb, vb, n0, valid);
      });
    } else {
      // Non-causal: S = S₋₁ + φ(K)ᵀV over all blocks, then O = τ φ(Q) S over this
      // program's blocks.
      state = forBlocks(c0, numBlocks, state, [&](Value n0, Value s) {
        auto [qb, kb, vb, valid] = loadBlock(n0);
        return transposed ? p.dot(p.trans(vb), kb, s) : p.dot(p.trans(kb), vb, s);
      });
      Value stateOperand = rightOperand(state);
      forBlocks(firstBlock, endBlock, state, [&](Value n0, Value s) {
        auto [qb, kb, vb, valid] = loadBlock(n0);
        Value o = p.dot(qb, stateOperand, zeroOut);
        p.storeAs(arith::MulFOp::create(b, o, scaleTile), out, ValueRange{batch, head, n0, col0});
        return s;
      });
    }
    // The final state is the last chunk's.
    if (chunks == 1) {
      storeState(state, finalState, ValueRange{batch, head, c0, col0});
      continue;
    }
    Value lastChunk =
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, chunk, p.cIndex(chunks - 1));
    scf::IfOp::create(b, lastChunk, [&](OpBuilder &nb, Location loc) {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      storeState(state, finalState, ValueRange{batch, head, c0, col0});
      scf::YieldOp::create(b);
    });
  }
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
  Value q = ops.q, k = ops.k, v = ops.v, decay = ops.decay, init = ops.init;
  Value dout = buffers.lookup(op.getGradOutput());
  Value dq = buffers.lookup(op.getGradQuery()), dk = buffers.lookup(op.getGradKey());
  Value dv = buffers.lookup(op.getGradValue());
  int64_t d = ops.d, dvDim = ops.dv, blk = ops.blk;
  double scale = ops.scale;
  Value nBatch = ops.nBatch, nHeads = ops.nHeads, nKvHeads = ops.nKvHeads, n = ops.n;
  Value group = ops.group, blkIdx = ops.blkIdx, numBlocks = ops.numBlocks;
  Value c0 = p.cIndex(0), c1 = p.cIndex(1);
  // Three sweeps, each over pieces of the state (up to `split` pieces) so that a piece
  // fits in registers: dQ over pieces of D (S's rows), dK over pieces of D (the state
  // gradient's rows), dV over pieces of Dv (its columns). Every term a piece needs is
  // whole in it; G Vᵀ and Q' K'ᵀ are recomputed per piece. Pieces of rows keep 16 rows
  // per warp, pieces of columns 16 columns.
  int64_t rowsPerWarps = 16 * config.getNumWarps();
  int64_t dPieces = statePieces(config.getSplit(), d,
                                [&](int64_t rows) { return rows % rowsPerWarps == 0; });
  int64_t vPieces =
      statePieces(config.getSplit(), dvDim, [](int64_t cols) { return cols % 16 == 0; });
  int64_t dPiece = d / dPieces, vPiece = dvDim / vPieces;
  p.operandType = cast<MemRefType>(q.getType()).getElementType();
  auto zeros = [&](int64_t r, int64_t c) { return p.splatF32({r, c}, 0.0f); };
  auto rowScaled = [&](Value t, Value perRow) {
    return arith::MulFOp::create(
               b, t, p.broadcast(perRow, 1, cast<RankedTensorType>(t.getType()).getDimSize(1)))
        .getResult();
  };
  // dK and dV sum over the query heads of a group: in f32 workspaces, converted at the end.
  auto dyn = ShapedType::kDynamic;
  auto sums = [&](int64_t width) {
    return memref::AllocOp::create(b, MemRefType::get({dyn, dyn, dyn, width}, p.f32),
                                   ValueRange{nBatch, nKvHeads, n})
        .getResult();
  };
  Value dkSum = sums(d), dvSum = sums(dvDim);

  // What every program of every sweep shares: the block's row indices, the intra-block
  // decay mask M, Λq = λ^(r+1), and per block the valid rows, λ^valid and Λk.
  struct Shared {
    Value local, mask, qDecay;
  };
  auto shared = [&]() {
    Shared sh;
    sh.local = tile::RangeOp::create(b, p.tileType({blk}, p.i32), c0);
    Value rowsF = arith::SIToFPOp::create(b, p.tileType({blk}, p.f32), sh.local);
    Value diff = arith::SubFOp::create(b, p.broadcast(rowsF, 1, blk), p.broadcast(rowsF, 0, blk));
    Value lower = arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, diff, zeros(blk, blk));
    sh.mask = arith::SelectOp::create(b, lower, p.decayPow(diff), zeros(blk, blk));
    sh.qDecay = p.decayPow(arith::AddFOp::create(b, rowsF, p.splatF32({blk}, 1.0f)));
    return sh;
  };
  struct BlockRows {
    Value n0, valid, validF, kDecay; // kDecay = Λk = λ^(valid-1-r), 0 exponent past valid
  };
  auto blockRows = [&](const Shared &sh, Value i) {
    BlockRows r;
    r.n0 = arith::MulIOp::create(b, i, blkIdx);
    r.valid = arith::MinSIOp::create(b, blkIdx, arith::SubIOp::create(b, n, r.n0));
    r.validF = p.indexToF32(r.valid);
    Value rowsF = arith::SIToFPOp::create(b, p.tileType({blk}, p.f32), sh.local);
    Value kExp = arith::MaxNumFOp::create(
        b,
        arith::SubFOp::create(
            b, p.splatOf({blk}, arith::SubFOp::create(b, r.validF, p.cF32(1.0))), rowsF),
        p.splatF32({blk}, 0.0f));
    r.kDecay = p.decayPow(kExp);
    return r;
  };
  // φ(x) and x of columns [col, col + width) of a block (f32; rows past valid zero).
  auto mapped = [&](const Shared &sh, const BlockRows &r, Value buffer, Value batch, Value h,
                    Value col, int64_t width) {
    Value raw = p.loadF32(buffer, {blk, width}, ValueRange{batch, h, r.n0, col});
    return std::make_pair(p.zeroRowsFrom(p.phi(raw), sh.local, r.valid), raw);
  };
  auto loadRows = [&](Value buffer, Value batch, Value h, const BlockRows &r, Value col,
                      int64_t width) {
    return p.loadF32(buffer, {blk, width}, ValueRange{batch, h, r.n0, col});
  };
  auto gradOut = [&](Value batch, Value head, const BlockRows &r, Value col, int64_t width) {
    return arith::MulFOp::create(b, loadRows(dout, batch, head, r, col, width),
                                 p.splatF32({blk, width}, float(scale)))
        .getResult();
  };
  // (A Bᵀ) ⊙ M for two blocks of rows: G Vᵀ (the scores' gradient) or Q' K'ᵀ (the scores).
  auto maskedProduct = [&](Value a, Value rows, const Shared &sh) {
    return arith::MulFOp::create(
               b, p.dot(p.asOperand(a), p.trans(p.asOperand(rows)), zeros(blk, blk)), sh.mask)
        .getResult();
  };
  auto decayState = [&](Value state, Value validF) {
    auto shape = cast<RankedTensorType>(state.getType()).getShape();
    return arith::MulFOp::create(b, state, p.splatOf(shape, p.decayPow(validF))).getResult();
  };
  // Sequence chunks when batch x heads is small: the `split` programs of a head and batch
  // are pieces x chunks. Each chunk's own state (forward, from zero over its blocks: for
  // dQ) and own state gradient (reverse: for dK and dV) go to workspaces first; a chunk
  // then starts from the decayed sum of the chunks before (after) it.
  int64_t chunks = std::max<int64_t>(1, config.getSplit() / std::max(dPieces, vPieces));
  Value perChunk = p.ceilDiv(numBlocks, chunks);


  // Opens a grid over (head, batch, piece x chunk); returns head, batch, piece, chunk.
  auto openGrid = [&](Value heads, int64_t pieces) {
    auto grid =
        tile::GridOp::create(b, ValueRange{heads, nBatch, p.cIndex(pieces * chunks)}, config);
    b.setInsertionPointToStart(&grid.getBody().emplaceBlock());
    Value id = p.programId(2);
    return std::make_tuple(p.programId(0), p.programId(1),
                           arith::RemUIOp::create(b, id, p.cIndex(pieces)).getResult(),
                           arith::DivUIOp::create(b, id, p.cIndex(pieces)).getResult());
  };
  // A program per (query head, batch, piece of D's rows, chunk), its decay loaded.
  struct HeadProgram {
    Value head, batch, chunk, kvHead, col;
    Shared sh;
  };
  auto openHeadProgram = [&]() {
    HeadProgram h;
    auto [head, batch, piece, chunk] = openGrid(nHeads, dPieces);
    h.head = head, h.batch = batch, h.chunk = chunk;
    h.kvHead = arith::DivSIOp::create(b, head, group);
    p.log2Decay = loadLog2Decay(p, decay, head);
    h.sh = shared();
    h.col = arith::MulIOp::create(b, piece, p.cIndex(dPiece));
    return h;
  };
  // Blocks [first, end) last to first: `body` gets the block index.
  auto reverseBlocks = [&](Value first, Value end, Value init,
                           function_ref<Value(Value block, Value carried)> body) {
    return p.forLoop(c0, arith::SubIOp::create(b, end, first), ValueRange{init},
                     [&](Value i, ValueRange carried) {
                       Value block = arith::SubIOp::create(b, arith::SubIOp::create(b, end, c1), i);
                       return SmallVector<Value>{body(block, carried[0])};
                     })[0];
  };
  // S ← λ^valid S + (Λk K')ᵀ V, and dS ← λ^valid dS + (Λq Q')ᵀ G.
  auto stateStep = [&](Value state, Value kb, Value vb, const BlockRows &r) {
    return p.dot(p.trans(p.asOperand(rowScaled(kb, r.kDecay))), p.asOperand(vb),
                 decayState(state, r.validF));
  };
  auto gradStateStep = [&](Value dState, Value qb, Value g, const Shared &sh,
                           const BlockRows &r) {
    return p.dot(p.trans(p.asOperand(rowScaled(qb, sh.qDecay))), p.asOperand(g),
                 decayState(dState, r.validF));
  };
  // Adds `t` into the workspace rows of a block (the group's first head stores).
  auto accumulate = [&](Value sum, Value t, Value g, Value batch, Value kvHead,
                        const BlockRows &r, Value col) {
    SmallVector<Value> at{batch, kvHead, r.n0, col};
    Value before = tile::LoadOp::create(b, t.getType(), sum, at, nullptr);
    Value first = p.cmpI(arith::CmpIPredicate::eq, g, c0);
    auto shape = cast<RankedTensorType>(t.getType()).getShape();
    Value base = arith::SelectOp::create(b, p.splatOf(shape, first), p.splatF32(shape, 0.0f),
                                         before);
    tile::StoreOp::create(b, arith::AddFOp::create(b, base, t), sum, at);
  };
  auto convert = [&](Value sum, Value to, Value batch, Value kvHead, Value col, int64_t width,
                     Value first, Value end) {
    p.forLoop(first, end, {}, [&](Value i, ValueRange) {
      Value n0 = arith::MulIOp::create(b, i, blkIdx);
      SmallVector<Value> at{batch, kvHead, n0, col};
      p.storeAs(tile::LoadOp::create(b, p.tileType({blk, width}, p.f32), sum, at, nullptr),
                to, at);
      return SmallVector<Value>{};
    });
  };

  Value ownStates, ownGrads; // [B, H, chunks, D, Dv]
  if (chunks > 1) {
    auto workspace = [&] {
      return memref::AllocOp::create(b, MemRefType::get({dyn, dyn, chunks, d, dvDim}, p.f32),
                                     ValueRange{nBatch, nHeads})
          .getResult();
    };
    ownStates = workspace();
    ownGrads = workspace();
    for (bool forward : {true, false}) {
      OpBuilder::InsertionGuard guard(b);
      auto [head, batch, chunk, kvHead, col, sh] = openHeadProgram();
      auto [first, end] = chunkBlocks(p, chunk, perChunk, numBlocks);
      Value own = zeros(dPiece, dvDim);
      if (forward)
        own = p.forLoop(first, end, {own}, [&](Value i, ValueRange carried) {
          BlockRows r = blockRows(sh, i);
          Value kb = mapped(sh, r, k, batch, kvHead, col, dPiece).first;
          return SmallVector<Value>{
              stateStep(carried[0], kb, loadRows(v, batch, kvHead, r, c0, dvDim), r)};
        })[0];
      else
        own = reverseBlocks(first, end, own, [&](Value i, Value carried) {
          BlockRows r = blockRows(sh, i);
          Value qb = mapped(sh, r, q, batch, head, col, dPiece).first;
          return gradStateStep(carried, qb, gradOut(batch, head, r, c0, dvDim), sh, r);
        });
      tile::StoreOp::create(b, own, forward ? ownStates : ownGrads,
                            ValueRange{batch, head, chunk, col, c0});
    }
    // Own states become the states the chunks start from (forward, from the initial
    // state) and own state gradients those they end with (reverse, from zero).
    for (bool forward : {true, false})
      scanChunkStates(
          p, forward ? ownStates : ownGrads, chunks, dPieces, dPiece, dvDim,
          /*piecesOfRows=*/true, /*reverse=*/!forward, nHeads, nBatch, decay, config,
          [&](Value c) { return chunkTokens(p, c, perChunk, numBlocks, blkIdx, n); },
          [&](Value batch, Value head, Value row0, Value col0) -> Value {
            if (!forward || !init)
              return zeros(dPiece, dvDim);
            return tile::LoadOp::create(b, p.tileType({dPiece, dvDim}, p.f32), init,
                                        ValueRange{batch, head, row0, col0}, nullptr);
          });
  }
  // The state (forward) or state gradient (reverse) chunk `c` starts from, rows
  // [row0, ...) and columns [col0, ...): `start` without chunks, else from the scan.
  auto chunkStart = [&](bool forward, Value start, Value batch, Value head, Value c,
                        Value row0, Value col0) {
    if (chunks == 1)
      return start;
    return Value(tile::LoadOp::create(b, start.getType(), forward ? ownStates : ownGrads,
                                      ValueRange{batch, head, c, row0, col0}, nullptr));
  };

  {
    // dQ, forward over blocks: dQ' = [(G Vᵀ) ⊙ M] K' + (Λq G) Sᵀ with S the state before
    // the block (rows of this piece), then S ← λ^valid S + (Λk K')ᵀ V.
    OpBuilder::InsertionGuard guard(b);
    auto [head, batch, chunk, kvHead, col, sh] = openHeadProgram();
    Value s0 = zeros(dPiece, dvDim);
    if (chunks > 1)
      s0 = chunkStart(/*forward=*/true, s0, batch, head, chunk, col, c0);
    else if (init)
      s0 = tile::LoadOp::create(b, p.tileType({dPiece, dvDim}, p.f32), init,
                                ValueRange{batch, head, col, c0}, nullptr);
    auto [first, end] = chunkBlocks(p, chunk, perChunk, numBlocks);
    p.forLoop(first, end, {s0}, [&](Value i, ValueRange carried) {
      BlockRows r = blockRows(sh, i);
      Value g = gradOut(batch, head, r, c0, dvDim);
      Value vb = loadRows(v, batch, kvHead, r, c0, dvDim);
      Value kb = mapped(sh, r, k, batch, kvHead, col, dPiece).first;
      Value qRaw = loadRows(q, batch, head, r, col, dPiece);
      Value dS = maskedProduct(g, vb, sh);
      Value dqPrime = p.dot(p.asOperand(dS), p.asOperand(kb), zeros(blk, dPiece));
      dqPrime = p.dot(p.asOperand(rowScaled(g, sh.qDecay)), p.trans(p.asOperand(carried[0])),
                      dqPrime);
      p.storeAs(arith::MulFOp::create(b, dqPrime, p.phiDerivative(qRaw)), dq,
                ValueRange{batch, head, r.n0, col});
      return SmallVector<Value>{stateStep(carried[0], kb, vb, r)};
    });
  }
  // A reverse sweep per (key/value head, batch, piece of `width`, chunk): for each head
  // of the group, the chunk's blocks last to first carrying the state gradient dS (from
  // the chunks after it; zero after the last block). `block` gives the block's share of
  // the output (added into `sum`) and the φ(q) and G that update dS; `sum` goes to `to`
  // at the end. The piece is dS's rows (`piecesOfRows`) or its columns.
  struct ReverseStep {
    Value share, q, g;
  };
  using ReverseBlock = function_ref<ReverseStep(Value head, Value batch, Value kvHead,
                                                Value col, const Shared &, const BlockRows &,
                                                Value dState)>;
  auto reverseSweep = [&](int64_t pieces, int64_t width, bool piecesOfRows, Value sum, Value to,
                          ReverseBlock block) {
    OpBuilder::InsertionGuard guard(b);
    auto [kvHead, batch, piece, chunk] = openGrid(nKvHeads, pieces);
    Value col = arith::MulIOp::create(b, piece, p.cIndex(width));
    auto [first, end] = chunkBlocks(p, chunk, perChunk, numBlocks);
    int64_t rows = piecesOfRows ? width : d, cols = piecesOfRows ? dvDim : width;
    p.forLoop(c0, group, {}, [&](Value gi, ValueRange) {
      Value head = arith::AddIOp::create(b, arith::MulIOp::create(b, kvHead, group), gi);
      p.log2Decay = loadLog2Decay(p, decay, head);
      Shared sh = shared();
      Value dS0 = chunkStart(/*forward=*/false, zeros(rows, cols), batch, head, chunk,
                             piecesOfRows ? col : c0, piecesOfRows ? c0 : col);
      reverseBlocks(first, end, dS0, [&](Value i, Value carried) {
        BlockRows r = blockRows(sh, i);
        ReverseStep step = block(head, batch, kvHead, col, sh, r, carried);
        accumulate(sum, step.share, gi, batch, kvHead, r, col);
        return gradStateStep(carried, step.q, step.g, sh, r);
      });
      return SmallVector<Value>{};
    });
    convert(sum, to, batch, kvHead, col, width, first, end);
  };
  // dK' = [(G Vᵀ) ⊙ M]ᵀ Q' + (Λk V) dSᵀ over pieces of D (dS's rows).
  reverseSweep(dPieces, dPiece, /*piecesOfRows=*/true, dkSum, dk,
               [&](Value head, Value batch, Value kvHead, Value col, const Shared &sh,
                   const BlockRows &r, Value dState) {
                 Value g = gradOut(batch, head, r, c0, dvDim);
                 Value vb = loadRows(v, batch, kvHead, r, c0, dvDim);
                 Value qb = mapped(sh, r, q, batch, head, col, dPiece).first;
                 Value kRaw = loadRows(k, batch, kvHead, r, col, dPiece);
                 Value dS = maskedProduct(g, vb, sh);
                 Value dkPrime =
                     p.dot(p.trans(p.asOperand(dS)), p.asOperand(qb), zeros(blk, dPiece));
                 dkPrime = p.dot(p.asOperand(rowScaled(vb, r.kDecay)), p.trans(p.asOperand(dState)),
                                 dkPrime);
                 return ReverseStep{arith::MulFOp::create(b, dkPrime, p.phiDerivative(kRaw)),
                                    qb, g};
               });
  // dV = [(Q' K'ᵀ) ⊙ M]ᵀ G + (Λk K') dS over pieces of Dv (dS's columns).
  reverseSweep(vPieces, vPiece, /*piecesOfRows=*/false, dvSum, dv,
               [&](Value head, Value batch, Value kvHead, Value col, const Shared &sh,
                   const BlockRows &r, Value dState) {
                 Value g = gradOut(batch, head, r, col, vPiece);
                 Value qb = mapped(sh, r, q, batch, head, c0, d).first;
                 Value kb = mapped(sh, r, k, batch, kvHead, c0, d).first;
                 Value a = maskedProduct(qb, kb, sh);
                 Value dvBlock = p.dot(p.trans(p.asOperand(a)), p.asOperand(g), zeros(blk, vPiece));
                 dvBlock = p.dot(p.asOperand(rowScaled(kb, r.kDecay)), p.asOperand(dState),
                                 dvBlock);
                 return ReverseStep{dvBlock, qb, g};
               });
  return success();
}
