//===- Products.cpp - tile.dot as mma.sync and wgmma ------------------------===//
//
// Tensor-core products: mma.sync m16n8k16 with operands from registers or ldmatrix,
// and warpgroup products (wgmma) from swizzled shared memory, committed in groups that
// later reads wait for.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

Value tessera::gpu::packHalves(ImplicitLocOpBuilder &b, Value lo, Value hi) {
  Value v = vector::FromElementsOp::create(b, VectorType::get({2}, lo.getType()),
                                           ValueRange{lo, hi});
  Value word = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), v);
  return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
}

std::pair<Value, Value> tessera::gpu::unpackHalves(ImplicitLocOpBuilder &b, Value word,
                                                   Type elem) {
  Value v = vector::FromElementsOp::create(b, VectorType::get({1}, b.getI32Type()),
                                           ValueRange{word});
  Value pair = vector::BitCastOp::create(b, VectorType::get({2}, elem), v);
  return {vector::ExtractOp::create(b, pair, ArrayRef<int64_t>{0}),
          vector::ExtractOp::create(b, pair, ArrayRef<int64_t>{1})};
}

/// The register an mma.sync operand takes: the f16 form takes vector<2xf16>, bf16 a word.
static Value packPair(ImplicitLocOpBuilder &b, Value lo, Value hi) {
  if (lo.getType().isF16())
    return vector::FromElementsOp::create(b, VectorType::get({2}, lo.getType()),
                                          ValueRange{lo, hi});
  return packHalves(b, lo, hi);
}

std::array<Value, 4> Distributor::ldmatrixWords(Value mem, ArrayRef<Value> idx,
                                                bool transpose, Type elem) {
  Value frag = nvgpu::LdMatrixOp::create(b, VectorType::get({4, 2}, elem), mem, idx,
                                         transpose, /*numTiles=*/4);
  std::array<Value, 4> words;
  for (int64_t i = 0; i < 4; ++i) {
    // The f16 mma takes vector<2xf16>; bf16 takes a 32-bit word.
    Value pair = vector::ExtractOp::create(b, frag, ArrayRef<int64_t>{i});
    if (elem.isF16()) {
      words[i] = pair;
      continue;
    }
    Value w = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), pair);
    words[i] = vector::ExtractOp::create(b, w, ArrayRef<int64_t>{0});
  }
  return words;
}

std::array<Value, 4> Distributor::aFragment(const SharedTile &t, int64_t tilesPerWarp,
                                            int64_t mt, int64_t kb, Type elem) {
  // Matrices (m half, k half) = (0,0) (1,0) (0,1) (1,1): the fragment's register order.
  auto [row, mHalf, kHalf] = ldmatrixLane();
  Value m0 = arith::AddIOp::create(
      b, arith::MulIOp::create(b, warp, arith::ConstantIndexOp::create(b, 16 * tilesPerWarp)),
      arith::ConstantIndexOp::create(b, 16 * mt));
  Value mIdx = arith::AddIOp::create(b, m0, mHalf);
  Value kIdx = arith::AddIOp::create(b, kHalf, arith::ConstantIndexOp::create(b, 16 * kb));
  SmallVector<Value> idx = t.transposed
                               ? SmallVector<Value>{arith::AddIOp::create(b, kIdx, row), mIdx}
                               : SmallVector<Value>{arith::AddIOp::create(b, mIdx, row), kIdx};
  if (t.mem)
    return ldmatrixWords(t.mem, idx, t.transposed, elem);
  // A swizzled tile: each lane's 8 elements (one 16-byte chunk) stay contiguous.
  const SwizzledTile &st = swizzledTiles[t.swizzled];
  Value at = arith::AddIOp::create(b, stageOffset(st, t.stage),
                                   swizzledOffset(b, idx[0], idx[1], st.rows));
  return ldmatrixWords(st.view, {at}, t.transposed, elem);
}

/// A product whose right operand is in registers: tessera-tgpu-stage-operands stages every
/// one it can hold in a buffer.
static LogicalResult rightOperandInRegisters(tile::DotOp op) {
  return op.emitError("this product's right operand is in registers and no shared buffer "
                      "holds it (a 2-D tile; with wgmma, rows in multiples of 8 and "
                      "columns in multiples of 64, or a narrow one of whole 64-row columns)");
}

LogicalResult Distributor::lowerDot(tile::DotOp op) {
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
  int64_t m = lhsType.getDimSize(0), k = lhsType.getDimSize(1), n = rhsType.getDimSize(1);
  Type elem = lhsType.getElementType();
  if (!elem.isF16() && !elem.isBF16())
    return op.emitError("GPU tensor cores take f16 or bf16 operands, got ") << elem;
  if (k % 16 || n % 8)
    return op.emitError("GPU dot needs K % 16 == 0 and N % 8 == 0");
  int64_t mTiles = layoutOf(op.getResult()).mTiles;
  FailureOr<Slots> c = slotsOf(op.getAcc(), {LayoutKind::Acc, m, n, mTiles});
  if (failed(c))
    return failure();
  // Left-operand registers of m-tile mt, k-block kb: in registers, or one ldmatrix.x4
  // from shared memory (a staged Q, or Kᵀ read from K's buffer with .trans).
  auto sharedLhs = shared.find(op.getLhs());
  bool lhsShared = !tiles.count(op.getLhs()) && sharedLhs != shared.end() &&
                   sharedLhs->second.mem;
  FailureOr<Slots> a = Slots();
  if (!lhsShared)
    a = slotsOf(op.getLhs(), {LayoutKind::A, m, k, mTiles});
  if (failed(a))
    return failure();
  DenseMap<std::pair<int64_t, int64_t>, SmallVector<Value>> lhsFetched;
  auto lhsRegs = [&](int64_t mt, int64_t kb) -> SmallVector<Value> {
    SmallVector<Value> regs;
    if (auto it = lhsFetched.find({mt, kb}); it != lhsFetched.end())
      return it->second;
    if (!lhsShared) {
      int64_t aBase = mt * (k / 2) + 8 * kb;
      for (int64_t r = 0; r < 4; ++r)
        regs.push_back(packPair(b, (*a)[aBase + 2 * r], (*a)[aBase + 2 * r + 1]));
      return regs;
    }
    std::array<Value, 4> w = aFragment(sharedLhs->second, mTiles, mt, kb, elem);
    return lhsFetched[{mt, kb}] = SmallVector<Value>(w.begin(), w.end());
  };
  // Every warp reads the right operand whole, from shared memory (a computed one staged
  // by tessera-tgpu-stage-operands).
  auto sharedRhs = shared.find(op.getRhs());
  if (sharedRhs == shared.end())
    return rightOperandInRegisters(op);
  // Right-operand registers of the 16 x 8 block (kb, nb): two 32-bit words. From shared
  // memory, one ldmatrix.x4 fetches the words of two neighbouring blocks (nb, nb + 1);
  // K (stored [n][k]) reads plainly, V (stored [k][n]) with .trans.
  DenseMap<std::pair<int64_t, int64_t>, std::array<Value, 2>> fetched;
  auto rhsRegs = [&](int64_t kb, int64_t nb) -> std::array<Value, 2> {
    auto it = fetched.find({kb, nb});
    if (it != fetched.end())
      return it->second;
    int64_t pairBase = nb - nb % 2;
    const SharedTile &tile = sharedRhs->second;
    // Matrices (k half 0, nb), (k half 1, nb), (k half 0, nb + 1), (k half 1, nb + 1).
    auto [row, kHalf, nPart] = ldmatrixLane();
    Value k0 = arith::AddIOp::create(b, kHalf, arith::ConstantIndexOp::create(b, 16 * kb));
    Value n0 = arith::AddIOp::create(b, nPart, arith::ConstantIndexOp::create(b, 8 * pairBase));
    SmallVector<Value> idx = tile.transposed
                                 ? SmallVector<Value>{arith::AddIOp::create(b, n0, row), k0}
                                 : SmallVector<Value>{arith::AddIOp::create(b, k0, row), n0};
    std::array<Value, 4> w = ldmatrixWords(tile.mem, idx, !tile.transposed, elem);
    fetched[{kb, pairBase}] = {w[0], w[1]};
    fetched[{kb, pairBase + 1}] = {w[2], w[3]};
    return fetched[{kb, nb}];
  };
  if ((n / 8) % 2)
    return op.emitError("GPU dot from shared memory needs N % 16 == 0");
  auto ptxType = elem.isF16() ? NVVM::MMATypes::f16 : NVVM::MMATypes::bf16;
  Type f32 = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  Slots out(*c);
  // Each right-operand fragment, loaded once, serves every m-tile of the warp.
  for (int64_t nb = 0; nb < n / 8; ++nb)
    for (int64_t kb = 0; kb < k / 16; ++kb) {
      std::array<Value, 2> bRegs = rhsRegs(kb, nb);
      for (int64_t mt = 0; mt < mTiles; ++mt) {
        int64_t cBase = mt * (n / 2) + 4 * nb;
        SmallVector<Value> aRegs = lhsRegs(mt, kb);
        SmallVector<Value> cRegs(out.begin() + cBase, out.begin() + cBase + 4);
        Value d = NVVM::MmaOp::create(
            b, resultType, aRegs, ValueRange{bRegs[0], bRegs[1]}, cRegs,
            ArrayRef<int64_t>{16, 8, 16}, std::nullopt, std::nullopt,
            std::array<NVVM::MMATypes, 2>{ptxType, ptxType},
            std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row, NVVM::MMALayout::col});
        for (int64_t e = 0; e < 4; ++e)
          out[cBase + e] = LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{e});
      }
    }
  tiles[op.getResult()] = std::move(out);
  return success();
}

LogicalResult Distributor::lowerWarpgroupDot(tile::DotOp op) {
  MLIRContext *ctx = b.getContext();
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
  int64_t m = lhsType.getDimSize(0), k = lhsType.getDimSize(1), n = rhsType.getDimSize(1);
  Type elem = lhsType.getElementType();
  auto rhs = shared.find(op.getRhs());
  if (rhs == shared.end())
    return rightOperandInRegisters(op);
  if (rhs->second.swizzled < 0)
    return op.emitError("wgmma needs the right operand in swizzled shared memory");
  // A zero accumulator is not read: the first product overwrites it.
  bool zeroInit = matchPattern(op.getAcc(), m_AnyZeroFloat());
  int64_t mTiles = layoutOf(op.getResult()).mTiles;
  FailureOr<Slots> acc = slotsOf(op.getAcc(), {LayoutKind::Acc, m, n, mTiles});
  if (failed(acc))
    return failure();
  auto startOf = [&](const SwizzledTile &t, Value stage) {
    Value bytes = arith::MulIOp::create(b, stageOffset(t, stage),
                                        arith::ConstantIndexOp::create(b, 2));
    return arith::AddIOp::create(b, t.address,
                                 arith::IndexCastUIOp::create(b, b.getI64Type(), bytes));
  };
  auto i64 = [&](int64_t v) { return arith::ConstantIntOp::create(b, b.getI64Type(), v); };
  // K stored [n][k] is K-major; V stored [k][n] is MN-major: its 64-column blocks are
  // `rows * 128` bytes apart (the leading byte offset), its 8-row groups 1024.
  const SwizzledTile &tb = swizzledTiles[rhs->second.swizzled];
  bool bKMajor = rhs->second.transposed;
  Value descB0 = matrixDescriptor(b, startOf(tb, rhs->second.stage),
                                  bKMajor ? 16 : tb.rows * 128, kSwizzleAtomBytes);
  auto descB = [&](int64_t kk) {
    int64_t step = bKMajor ? kMajorStepOffset(tb.rows, 16 * kk) : 16 * kk * 128;
    return arith::AddIOp::create(b, descB0, i64(step >> 4));
  };
  Slots out;
  Value ssResult; // the struct a shared-memory-sourced chain ends with
  auto lhsShared = shared.find(op.getLhs());
  if (lhsShared == shared.end() || lhsShared->second.swizzled < 0) {
    // Left operand in registers (P): each warp's fragment is the mma.sync A layout. All
    // operands are ready before the first wgmma, so the chain runs uninterrupted.
    FailureOr<Slots> a = slotsOf(op.getLhs(), {LayoutKind::A, m, k, mTiles});
    if (failed(a))
      return failure();
    SmallVector<SmallVector<Value>> aRegs(k / 16);
    SmallVector<Value> descs;
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      for (int64_t r = 0; r < 4; ++r)
        aRegs[kk].push_back(packHalves(b, (*a)[8 * kk + 2 * r], (*a)[8 * kk + 2 * r + 1]));
      descs.push_back(descB(kk));
    }
    out = *acc;
    NVVM::WgmmaFenceAlignedOp::create(b);
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      Value d = registerSourcedWgmma(b, out, aRegs[kk], descs[kk], elem.isF16(), !bKMajor);
      for (int64_t i = 0; i < n / 2; ++i)
        out[i] = LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i});
    }
  } else {
    // Left operand in shared memory; warpgroup w multiplies its rows [64 w, 64 w + 64):
    // K-major as stored (Q), or MN-major where the product reads the stored tile
    // transposed (Kᵀ of the backward's dQᵀ = Kᵀ dSᵀ): its rows are the buffer's columns,
    // 64-column blocks `rows * 128` bytes apart, 16 rows of the contraction 2048, as V's
    // as a right operand.
    const SwizzledTile &ta = swizzledTiles[lhsShared->second.swizzled];
    bool aMnMajor = lhsShared->second.transposed;
    Value rowBlock = arith::IndexCastUIOp::create(
        b, b.getI64Type(),
        arith::MulIOp::create(b, warpgroup,
                              arith::ConstantIndexOp::create(b, aMnMajor ? ta.rows * 128
                                                                         : 64 * 128)));
    Value descA0 = matrixDescriptor(
        b, arith::AddIOp::create(b, startOf(ta, lhsShared->second.stage), rowBlock),
        aMnMajor ? ta.rows * 128 : 16, kSwizzleAtomBytes);
    // A tile read transposed is loop-invariant there (K of the dK / dV grid): made opaque
    // here, its k-step descriptors are not all hoisted and held across the loop.
    if (aMnMajor)
      descA0 = inlinePtx(b, b.getLoc(), b.getI64Type(), ValueRange{descA0}, "", "=l,0");
    auto wgmmaType = elem.isF16() ? NVVM::WGMMATypes::f16 : NVVM::WGMMATypes::bf16;
    auto structType = LLVM::LLVMStructType::getLiteral(ctx, SmallVector<Type>(n / 2, b.getF32Type()));
    NVVM::WgmmaFenceAlignedOp::create(b);
    Value d = LLVM::UndefOp::create(b, structType);
    if (!zeroInit)
      for (auto [i, v] : llvm::enumerate(*acc))
        d = LLVM::InsertValueOp::create(b, d, v, ArrayRef<int64_t>{int64_t(i)});
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      int64_t stepA = aMnMajor ? 16 * kk * 128 : kMajorStepOffset(ta.rows, 16 * kk);
      Value descA = arith::AddIOp::create(b, descA0, i64(stepA >> 4));
      auto scaleD = zeroInit && kk == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one;
      d = NVVM::WgmmaMmaAsyncOp::create(
          b, structType, d, descA, descB(kk), NVVM::MMAShapeAttr::get(ctx, 64, n, 16),
          NVVM::WGMMATypesAttr::get(ctx, wgmmaType), NVVM::WGMMATypesAttr::get(ctx, wgmmaType),
          NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::f32),
          NVVM::WGMMAScaleOutAttr::get(ctx, scaleD),
          NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
          NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
          NVVM::MMALayoutAttr::get(ctx, aMnMajor ? NVVM::MMALayout::col : NVVM::MMALayout::row),
          NVVM::MMALayoutAttr::get(ctx, bKMajor ? NVVM::MMALayout::col : NVVM::MMALayout::row),
          nullptr);
    }
    ssResult = d;
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b);
  for (int64_t i = 0; ssResult && i < n / 2; ++i)
    out.push_back(LLVM::ExtractValueOp::create(b, ssResult, ArrayRef<int64_t>{i}));
  tiles[op.getResult()] = std::move(out);
  productsInFlight[op.getResult()] = ++productGroups;
  return success();
}
