//===- Layouts.h - which thread owns which tile element ---------*- C++ -*-===//
//
// The distributed layouts of the warp-level tensor-core (mma.sync m16n8k16) lowering.
// Each warp owns 16 consecutive rows of an M-row tile; inside a warp, lane = 4g + t
// (g = lane / 4, t = lane % 4) holds the elements the PTX ISA assigns to it. A tile value
// becomes, per thread, a list of scalars ("slots"); each slot's tile coordinate is a
// lane-dependent base plus a constant, so element-wise code needs no data movement.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_LAYOUTS_H
#define TESSERA_CODEGEN_GPU_LAYOUTS_H

#include <cstdint>
#include <optional>

namespace tessera::gpu {

enum class LayoutKind {
  Acc, // [M, N] mma accumulator: warps split M, 4 slots per 8 columns
  Row, // [M] one value per accumulator row: 2 slots (rows g and g + 8)
  Col, // [N] one value per accumulator column: 2 slots per 8 columns
  A,   // [M, K] left operand: warps split M, 8 slots per 16 columns
  B,   // [K, N] right operand: every warp holds it all, 4 slots per 16 x 8 block
  BT,  // [N, K] a value whose transpose is used as a B operand
  // [M, C] a narrow tile (C not a multiple of 8: a gate column, a list column): each
  // thread holds whole rows, the rows it holds in Row (2 x C slots per m-tile).
  RowSpan,
  // [N] every thread holds every element: a short 1-D tile broadcast over the rows of a
  // RowSpan tile (N slots).
  Whole,
};

struct Layout {
  LayoutKind kind = LayoutKind::Acc;
  int64_t rows = 0, cols = 0; // the tile's shape (cols = 0 for 1-D tiles)
  /// 16-row m-tiles each warp owns in row-distributed kinds (Acc, Row, A): a warp owning
  /// several reuses every right-operand fragment it loads for each of them.
  int64_t mTiles = 1;

  bool operator==(const Layout &o) const {
    return kind == o.kind && rows == o.rows && cols == o.cols && mTiles == o.mTiles;
  }
  bool operator!=(const Layout &o) const { return !(*this == o); }
};

/// Lane-dependent bases a coordinate is built from.
enum class LaneBase {
  WarpRow, // 16 * mTiles * warp + g
  G,       // g
  T2,      // 2 * t
  Zero,    // 0: the same coordinate in every lane
};

/// Tile coordinate of one slot: (base(rowBase) + row, base(colBase) + col).
struct SlotCoord {
  LaneBase rowBase;
  int64_t row;
  LaneBase colBase;
  int64_t col;
};

int64_t numSlots(const Layout &layout);
SlotCoord slotCoord(const Layout &layout, int64_t slot);

/// The layout a tile broadcast into `out` (Acc or RowSpan) along `axis` is read in: along
/// rows (axis 1) its rows' values, along columns its columns' (an accumulator's lanes
/// split them, a row span's threads hold them all); nullopt for another `out`.
std::optional<Layout> broadcastSource(const Layout &out, int64_t axis);
/// The slot of broadcastSource(out, axis) that slot `s` of `out` repeats.
int64_t broadcastSourceSlot(const Layout &out, int64_t axis, int64_t s);

/// Whether a reduction of a tile in `in` along `axis` stays within a warp: along the
/// rows of an accumulator (a quad of lanes holds a row) or of a row span (a thread).
bool reducesWithinWarp(const Layout &in, int64_t axis);
/// Whether a tile in `from` is in `to` with no data movement: an accumulator read as a
/// left operand of its shape (each thread holds the same elements, accSlotForOperandA).
bool convertsInRegisters(const Layout &from, const Layout &to);

/// For a [M, N] tile held as Acc, the Acc slot that holds A-operand slot `aSlot` of the
/// same tile read as an [M, K = N] left operand (the FlashAttention-2 register reuse).
int64_t accSlotForOperandA(int64_t aSlot, int64_t n);
/// Index of B-operand slot `b` (0..3) of the 16 x 8 block (kb, nb) of a [K, N] tile.
int64_t operandBSlot(int64_t n, int64_t kb, int64_t nb, int64_t b);

} // namespace tessera::gpu

#endif
