//===- Wgmma.h - shared-memory layouts and descriptors for Hopper wgmma -*- C++ -*-===//
//
// wgmma reads its operands from shared memory through 64-bit matrix descriptors that
// describe one of a few canonical layouts. Tessera stages every operand tile in the
// 128-byte-swizzled layout: the tile's columns in blocks of 64 16-bit elements (128
// bytes), each block stored [rows][64] with 128-byte rows, and the eight 16-byte chunks
// of row r permuted by XOR with r % 8 (so the 8 rows one tensor-core read touches fall in
// different banks). The same bytes serve as a K-major operand (the contraction dimension
// along the columns: Q, K, P) and as an MN-major one (along the rows: V).
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_WGMMA_H
#define TESSERA_CODEGEN_GPU_WGMMA_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace tessera::gpu {

/// Elements of a 16-bit type per swizzle block row (128 bytes).
constexpr int64_t kSwizzleCols = 64;
/// Bytes of one swizzle atom (8 rows of 128 bytes); atoms must start 1024-byte aligned.
constexpr int64_t kSwizzleAtomBytes = 1024;

/// Element offset of (row, col) inside a [rows, cols] tile stored swizzled; `col` is a
/// multiple of 8 (a 16-byte chunk) plus `colInChunk`.
mlir::Value swizzledOffset(mlir::ImplicitLocOpBuilder &b, mlir::Value row, mlir::Value col,
                           int64_t rows);

/// The wgmma matrix descriptor of a swizzled tile starting at shared address `address`
/// (i64, bytes): leading/stride byte offsets as the PTX ISA defines them for the 128-byte
/// swizzle mode.
mlir::Value matrixDescriptor(mlir::ImplicitLocOpBuilder &b, mlir::Value address,
                             int64_t leadingBytes, int64_t strideBytes);

/// Byte offset, inside a [rows, cols] swizzled tile, of the 16-column slice starting at
/// column `k` of a K-major operand (the columns are the contraction dimension).
int64_t kMajorStepOffset(int64_t rows, int64_t k);

/// wgmma m64nNk16 with the left operand in registers (per thread 4 x b32 per 16 columns:
/// the mma.sync A fragment of the warp's 16 rows) and the right one in shared memory,
/// accumulating into `acc` (N / 2 f32 per thread); returns the updated accumulator as an
/// LLVM struct. FlashAttention-3 feeds P to the second product this way. NVVM's wgmma op
/// takes descriptors only, so this emits the instruction the way NVVM lowers its own
/// ops: inline PTX with tied accumulator registers.
mlir::Value registerSourcedWgmma(mlir::ImplicitLocOpBuilder &b, mlir::ValueRange acc,
                                 mlir::ValueRange aRegs, mlir::Value descB, bool f16,
                                 bool bMnMajor);

/// Inline PTX with side effects, in the form NVVM emits its own (AT&T dialect): returns
/// the statement's result, or null where `result` is null (a statement without one).
mlir::Value inlinePtx(mlir::OpBuilder &b, mlir::Location loc, mlir::Type result,
                      mlir::ValueRange operands, llvm::StringRef ptx,
                      llvm::StringRef constraints);

/// `v` (an index or an integer of 32 bits or more) as a 32-bit value: PTX operands and
/// shared-window addresses, which fit 32-bit registers.
mlir::Value toI32(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v);
inline mlir::Value toI32(mlir::ImplicitLocOpBuilder &b, mlir::Value v) {
  return toI32(b, b.getLoc(), v);
}

/// `values` passed through an empty volatile asm that reads and writes them: their uses
/// cannot move above it. Placed after a wgmma wait, it keeps reads of the accumulators a
/// product writes asynchronously after the wait (what CUTLASS's warpgroup_fence_operand does).
llvm::SmallVector<mlir::Value> fenceRegisters(mlir::ImplicitLocOpBuilder &b,
                                              mlir::ValueRange values);

} // namespace tessera::gpu

#endif
