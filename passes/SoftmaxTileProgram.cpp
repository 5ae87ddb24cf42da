//===- SoftmaxTileProgram.cpp - online-softmax tile program ---------------===//
//
// One program per (query tile, head, batch): Q's tile, a walk over the key tiles it
// sees (SoftmaxTileProgram.h lists the parts), then O = acc / l and L. Which walk runs
// follows from the op: block lists, mask_mod classification lists, or the dense range
// that causal / window bounds leave.
//
//===----------------------------------------------------------------------===//
#include "passes/SoftmaxTileProgram.h"

#include "passes/TilePrograms.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>
#include <optional>

using namespace mlir;
using namespace tessera;

static constexpr double kLn2 = 0.6931471805599453;

LogicalResult tessera::buildSoftmaxTileProgram(ImplicitLocOpBuilder &b, attn::AttentionOp op,
                                               const IRMapping &buffers,
                                               tile::ConfigAttr config) {
  if (op.getBlockIndices()) {
    int64_t bq = op.getBlockQAttr().getInt(), bk = op.getBlockKAttr().getInt();
    if ((bq != 1 && bq % config.getBlockM()) || bk % config.getBlockN())
      return op.emitError("block_q (")
             << bq << ") must be 1 or a multiple of the config's block_m ("
             << config.getBlockM() << ") and block_k (" << bk
             << ") a multiple of its block_n (" << config.getBlockN()
             << "); tiles are powers of two, so blocks of other sizes (e.g. 50 tokens) are "
                "written as a mask_mod reading a block table, keep[h, q_idx // 50, kv_idx // 50]";
  }
  if (op.hasMaskMod() && !op.getBlockIndices() &&
      config.getBlockM() * config.getBlockN() > (1 << 14))
    return op.emitError("mask_mod tile classification counts at most 2^14 pairs per tile; "
                        "block_m x block_n is ")
           << config.getBlockM() * config.getBlockN();
  Value q = buffers.lookup(op.getQuery()), k = buffers.lookup(op.getKey());
  auto qType = cast<MemRefType>(q.getType());
  auto vType = cast<MemRefType>(buffers.lookup(op.getValue()).getType());
  SoftmaxProgram p(b, op, buffers, config);
  p.bm = config.getBlockM();
  p.bn = config.getBlockN();
  p.d = qType.getDimSize(3);
  p.dv = vType.getDimSize(3);
  p.elemType = qType.getElementType();

  // Host side: sizes.
  p.nBatch = memref::DimOp::create(b, q, 0);
  p.nHeads = memref::DimOp::create(b, q, 1);
  p.nq = memref::DimOp::create(b, q, 2);
  Value nkvHeads = memref::DimOp::create(b, k, 1);
  p.nk = memref::DimOp::create(b, k, 2);
  p.bmIdx = p.cIndex(p.bm);
  p.bnIdx = p.cIndex(p.bn);
  p.qTiles = arith::CeilDivSIOp::create(b, p.nq, p.bmIdx);
  p.group = arith::DivSIOp::create(b, p.nHeads, nkvHeads);
  p.offsetIdx = arith::SubIOp::create(b, p.nk, p.nq);

  OpBuilder::InsertionGuard guard(b);
  std::optional<ClassifiedKeyTiles> classified;
  if (op.hasMaskMod() && !op.getBlockIndices())
    classified = classifyKeyTilesByMaskMod(p);

  KeyTileRange tiles = beginSoftmaxProgram(p, p.nHeads, p.nBatch);
  p.qTile = tile::LoadOp::create(b, p.tileType({p.bm, p.d}, p.elemType), q,
                                 ValueRange{p.batch, p.head, p.m0, p.cIndex(0)}, nullptr);
  p.state = {p.splatF32({p.bm}, -std::numeric_limits<float>::infinity()),
             p.splatF32({p.bm}, 0.0f), p.splatF32({p.bm, p.dv}, 0.0f)};
  if (op.getBlockIndices())
    walkBlockLists(p, tiles);
  else if (classified)
    walkClassifiedKeyTiles(p, *classified);
  else
    walkDenseKeyTiles(p, tiles);

  // Epilogue: O = acc / l (0 for a row that saw no key), L from m and l.
  Value m = p.state[0], l = p.state[1], acc = p.state[2];
  Value isEmpty = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, l,
                                        p.splatF32({p.bm}, 0.0f));
  Value lSafe = arith::SelectOp::create(b, isEmpty, p.splatF32({p.bm}, 1.0f), l);
  // One division per row, then a multiply per element: a GPU divides in ~8 instructions.
  Value inverse = arith::DivFOp::create(b, p.splatF32({p.bm}, 1.0f), lSafe);
  Value out = arith::MulFOp::create(b, acc, p.rowBroadcast(inverse, p.dv));
  if (p.elemType != p.f32)
    out = arith::TruncFOp::create(b, p.tileType({p.bm, p.dv}, p.elemType), out);
  // Back from base 2: L = (m + log2 l) ln 2.
  Value lse = arith::MulFOp::create(
      b, arith::AddFOp::create(b, m, math::Log2Op::create(b, l)),
      p.splatF32({p.bm}, float(kLn2)));
  tile::StoreOp::create(b, out, buffers.lookup(op.getOutput()),
                        ValueRange{p.batch, p.head, p.m0, p.cIndex(0)});
  tile::StoreOp::create(b, lse, buffers.lookup(op.getLse()),
                        ValueRange{p.batch, p.head, p.m0});
  return success();
}
