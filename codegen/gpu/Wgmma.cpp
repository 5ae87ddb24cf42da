//===- Wgmma.cpp - shared-memory layouts and descriptors for Hopper wgmma -===//
#include "codegen/gpu/Wgmma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;

Value tessera::gpu::swizzledOffset(ImplicitLocOpBuilder &b, Value row, Value col,
                                   int64_t rows) {
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  Value block = arith::DivUIOp::create(b, col, c(kSwizzleCols));
  Value inBlock = arith::RemUIOp::create(b, col, c(kSwizzleCols));
  Value chunk = arith::DivUIOp::create(b, inBlock, c(8));
  Value inChunk = arith::RemUIOp::create(b, inBlock, c(8));
  Value swizzled = arith::XOrIOp::create(b, chunk, arith::RemUIOp::create(b, row, c(8)));
  Value offset = arith::MulIOp::create(b, block, c(rows * kSwizzleCols));
  offset = arith::AddIOp::create(b, offset, arith::MulIOp::create(b, row, c(kSwizzleCols)));
  offset = arith::AddIOp::create(b, offset, arith::MulIOp::create(b, swizzled, c(8)));
  return arith::AddIOp::create(b, offset, inChunk);
}

Value tessera::gpu::matrixDescriptor(ImplicitLocOpBuilder &b, Value address,
                                     int64_t leadingBytes, int64_t strideBytes) {
  // Bits 0-13: address >> 4; 16-29: leading byte offset >> 4; 32-45: stride byte
  // offset >> 4; 62-63: swizzle mode (1 = 128 bytes).
  auto i64 = [&](uint64_t v) { return arith::ConstantIntOp::create(b, b.getI64Type(), v); };
  Value start = arith::AndIOp::create(b, arith::ShRUIOp::create(b, address, i64(4)),
                                      i64(0x3FFF));
  uint64_t fixed = (uint64_t((leadingBytes >> 4) & 0x3FFF) << 16) |
                   (uint64_t((strideBytes >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);
  return arith::OrIOp::create(b, start, i64(fixed));
}

int64_t tessera::gpu::kMajorStepOffset(int64_t rows, int64_t k) {
  // Whole swizzle blocks of columns, then 2 bytes per column inside the block: the
  // hardware applies the XOR to the final address, so a start inside a 128-byte row works.
  return (k / kSwizzleCols) * rows * 128 + (k % kSwizzleCols) * 2;
}
