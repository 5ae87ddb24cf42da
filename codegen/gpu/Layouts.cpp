//===- Layouts.cpp - which thread owns which tile element -----------------===//
//
// Coordinates follow the PTX ISA's fragment layouts for mma.m16n8k16 (row.col):
//   A (16 x 16): a0,a1 (g, 2t..2t+1)  a2,a3 (g+8, 2t..)  a4,a5 (g, 2t+8..)  a6,a7 (g+8, 2t+8..)
//   B (16 x 8):  b0,b1 (2t..2t+1, g)  b2,b3 (2t+8.., g)
//   C (16 x 8):  c0,c1 (g, 2t..2t+1)  c2,c3 (g+8, 2t..)
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Layouts.h"

using namespace tessera::gpu;

int64_t tessera::gpu::numSlots(const Layout &l) {
  switch (l.kind) {
  case LayoutKind::Acc:
    return l.mTiles * l.cols / 2;
  case LayoutKind::Row:
    return 2 * l.mTiles;
  case LayoutKind::RowSpan:
    return 2 * l.mTiles * l.cols;
  case LayoutKind::Whole:
    return l.rows; // a 1-D tile keeps its length in `rows`
  case LayoutKind::Col:
    return l.rows / 4; // a 1-D tile keeps its length in `rows`
  case LayoutKind::A:
    return l.mTiles * l.cols / 2;
  case LayoutKind::B:
  case LayoutKind::BT:
    return l.rows * l.cols / 32;
  }
  return 0;
}

SlotCoord tessera::gpu::slotCoord(const Layout &l, int64_t s) {
  switch (l.kind) {
  case LayoutKind::Acc: {
    int64_t perTile = l.cols / 2, mt = s / perTile, r = s % perTile;
    int64_t nb = r / 4, e = r % 4;
    return {LaneBase::WarpRow, 16 * mt + 8 * (e >> 1), LaneBase::T2, 8 * nb + (e & 1)};
  }
  case LayoutKind::Row:
    return {LaneBase::WarpRow, 16 * (s / 2) + 8 * (s % 2), LaneBase::G, 0};
  case LayoutKind::RowSpan: {
    int64_t row = s / l.cols;
    return {LaneBase::WarpRow, 16 * (row / 2) + 8 * (row % 2), LaneBase::Zero, s % l.cols};
  }
  case LayoutKind::Whole:
    return {LaneBase::Zero, s, LaneBase::Zero, 0};
  case LayoutKind::Col: {
    int64_t nb = s / 2, e = s % 2;
    return {LaneBase::T2, 8 * nb + e, LaneBase::G, 0};
  }
  case LayoutKind::A: {
    int64_t perTile = l.cols / 2, mt = s / perTile, r = s % perTile;
    int64_t kb = r / 8, a = r % 8;
    return {LaneBase::WarpRow, 16 * mt + 8 * ((a >> 1) & 1), LaneBase::T2,
            16 * kb + (a & 1) + 8 * (a >> 2)};
  }
  case LayoutKind::B:
  case LayoutKind::BT: {
    // Slots enumerate 16 x 8 blocks of the [K, N] operand row-major by (kb, nb).
    int64_t n = l.kind == LayoutKind::B ? l.cols : l.rows;
    int64_t blk = s / 4, b = s % 4, kb = blk / (n / 8), nb = blk % (n / 8);
    SlotCoord kn{LaneBase::T2, 16 * kb + (b & 1) + 8 * (b >> 1), LaneBase::G, 8 * nb};
    if (l.kind == LayoutKind::B)
      return kn;
    return {kn.colBase, kn.col, kn.rowBase, kn.row}; // the value is [N, K]
  }
  }
  return {};
}

int64_t tessera::gpu::accSlotForOperandA(int64_t aSlot, int64_t n) {
  // Both layouts hold n / 2 slots per m-tile, in the same m-tile order.
  int64_t perTile = n / 2, mt = aSlot / perTile, r = aSlot % perTile;
  int64_t kb = r / 8, a = r % 8;
  int64_t nb = 2 * kb + (a >> 2);
  return mt * perTile + 4 * nb + 2 * ((a >> 1) & 1) + (a & 1);
}

int64_t tessera::gpu::operandBSlot(int64_t n, int64_t kb, int64_t nb, int64_t b) {
  return (kb * (n / 8) + nb) * 4 + b;
}

std::optional<Layout> tessera::gpu::broadcastSource(const Layout &out, int64_t axis) {
  bool rowSpan = out.kind == LayoutKind::RowSpan;
  if (!rowSpan && out.kind != LayoutKind::Acc)
    return std::nullopt;
  if (axis == 1)
    return Layout{LayoutKind::Row, out.rows, 0, out.mTiles};
  return Layout{rowSpan ? LayoutKind::Whole : LayoutKind::Col, out.cols, 0};
}

int64_t tessera::gpu::broadcastSourceSlot(const Layout &out, int64_t axis, int64_t s) {
  bool alongRows = axis == 1;
  if (out.kind == LayoutKind::RowSpan)
    return alongRows ? s / out.cols : s % out.cols;
  int64_t perTile = out.cols / 2, mt = s / perTile, r = s % perTile;
  return alongRows ? 2 * mt + ((r % 4) >> 1) : 2 * (r / 4) + (r % 2);
}

bool tessera::gpu::reducesWithinWarp(const Layout &in, int64_t axis) {
  return axis == 1 && (in.kind == LayoutKind::Acc || in.kind == LayoutKind::RowSpan);
}

bool tessera::gpu::convertsInRegisters(const Layout &from, const Layout &to) {
  return from.kind == LayoutKind::Acc && to.kind == LayoutKind::A && from.rows == to.rows &&
         from.cols == to.cols && from.mTiles == to.mTiles;
}
