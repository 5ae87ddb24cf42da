//===- LayoutEncoding.cpp - layouts as #tgpu tensor encodings -------------===//
#include "codegen/gpu/LayoutEncoding.h"

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

/// Rows of an m-tile: one warp's share of an accumulator in 16-row blocks.
static constexpr int64_t kMTileRows = 16;

Attribute tessera::gpu::encodingOf(const Layout &layout, tgpu::MmaEncodingAttr acc) {
  MLIRContext *ctx = acc.getContext();
  switch (layout.kind) {
  case LayoutKind::Acc:
    return acc;
  case LayoutKind::A:
    // Two neighbouring elements along K per 32-bit register of the fragment.
    return tgpu::DotOperandEncodingAttr::get(ctx, tgpu::OperandIndex::a, acc, /*kWidth=*/2);
  case LayoutKind::B:
    return tgpu::SharedOperandEncodingAttr::get(ctx, acc, /*transposed=*/false);
  case LayoutKind::BT:
    return tgpu::SharedOperandEncodingAttr::get(ctx, acc, /*transposed=*/true);
  case LayoutKind::Row:
    return tgpu::SliceEncodingAttr::get(ctx, 1, acc);
  case LayoutKind::Col:
    return tgpu::SliceEncodingAttr::get(ctx, 0, acc);
  case LayoutKind::RowSpan:
    return tgpu::RowSpanEncodingAttr::get(ctx, acc.getWarps()[0]);
  case LayoutKind::Whole:
    return tgpu::WholeEncodingAttr::get(ctx);
  }
  return {};
}

std::optional<Layout> tessera::gpu::layoutOfType(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.getEncoding())
    return std::nullopt;
  ArrayRef<int64_t> shape = tensor.getShape();
  Layout l;
  l.rows = shape.empty() ? 0 : shape[0];
  l.cols = shape.size() > 1 ? shape[1] : 0;
  // Row-distributed layouts: each warp's rows in 16-row m-tiles.
  auto rowsOver = [&](int64_t warps) {
    l.mTiles = std::max<int64_t>(1, l.rows / (kMTileRows * warps));
  };
  Attribute enc = tensor.getEncoding();
  if (auto mma = dyn_cast<tgpu::MmaEncodingAttr>(enc)) {
    l.kind = LayoutKind::Acc;
    rowsOver(mma.getWarps()[0]);
  } else if (auto op = dyn_cast<tgpu::DotOperandEncodingAttr>(enc)) {
    l.kind = op.getOperand() == tgpu::OperandIndex::a ? LayoutKind::A : LayoutKind::B;
    if (l.kind == LayoutKind::A)
      rowsOver(op.getParent().getWarps()[0]);
  } else if (auto op = dyn_cast<tgpu::SharedOperandEncodingAttr>(enc)) {
    l.kind = op.getTransposed() ? LayoutKind::BT : LayoutKind::B;
  } else if (auto slice = dyn_cast<tgpu::SliceEncodingAttr>(enc)) {
    l.kind = slice.getDim() == 1 ? LayoutKind::Row : LayoutKind::Col;
    if (l.kind == LayoutKind::Row) {
      auto mma = dyn_cast<tgpu::MmaEncodingAttr>(slice.getParent());
      rowsOver(mma ? mma.getWarps()[0]
                   : cast<tgpu::RowSpanEncodingAttr>(slice.getParent()).getWarps());
    }
  } else if (auto span = dyn_cast<tgpu::RowSpanEncodingAttr>(enc)) {
    l.kind = LayoutKind::RowSpan;
    rowsOver(span.getWarps());
  } else if (isa<tgpu::WholeEncodingAttr>(enc)) {
    l.kind = LayoutKind::Whole;
  } else {
    return std::nullopt;
  }
  return l;
}

tgpu::MmaEncodingAttr tessera::gpu::accumulatorOf(tile::GridOp grid) {
  return grid->getAttrOfType<tgpu::MmaEncodingAttr>(kAccumulatorAttr);
}

bool tessera::gpu::relabelsRightOperand(tile::TransOp trans) {
  std::optional<Layout> in = layoutOfType(trans.getInput().getType());
  std::optional<Layout> out = layoutOfType(trans.getType());
  return in && out && in->kind == LayoutKind::BT && out->kind == LayoutKind::B;
}
