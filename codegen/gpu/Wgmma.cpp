//===- Wgmma.cpp - shared-memory layouts and descriptors for Hopper wgmma -===//
#include "codegen/gpu/Wgmma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

#include <string>

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

Value tessera::gpu::registerSourcedWgmma(ImplicitLocOpBuilder &b, ValueRange acc,
                                         ValueRange aRegs, Value descB, bool f16,
                                         bool bMnMajor) {
  int64_t k = acc.size(); // n / 2 accumulators per thread
  std::string type = f16 ? "f16" : "bf16";
  std::string ptx = "{\n.reg .pred p;\nsetp.ne.b32 p, $" + std::to_string(2 * k + 5) +
                    ", 0;\nwgmma.mma_async.sync.aligned.m64n" + std::to_string(2 * k) +
                    "k16.f32." + type + "." + type + " {";
  std::string constraints;
  for (int64_t i = 0; i < k; ++i) {
    ptx += (i ? ", $" : "$") + std::to_string(i);
    constraints += "=f,";
  }
  for (int64_t i = 0; i < k; ++i)
    constraints += std::to_string(i) + ","; // accumulators are read and written
  ptx += "}, {$" + std::to_string(2 * k) + ", $" + std::to_string(2 * k + 1) + ", $" +
         std::to_string(2 * k + 2) + ", $" + std::to_string(2 * k + 3) + "}, $" +
         std::to_string(2 * k + 4) + ", p, 1, 1, " + (bMnMajor ? "1" : "0") + ";\n}\n";
  constraints += "r,r,r,r,l,n";
  SmallVector<Value> operands(acc.begin(), acc.end());
  operands.append(aRegs.begin(), aRegs.end());
  operands.push_back(descB);
  operands.push_back(arith::ConstantIntOp::create(b, b.getI32Type(), 1)); // scale-d: accumulate
  auto result = LLVM::LLVMStructType::getLiteral(b.getContext(),
                                                 SmallVector<Type>(k, b.getF32Type()));
  return inlinePtx(b, b.getLoc(), result, operands, ptx, constraints);
}

Value tessera::gpu::toI32(OpBuilder &b, Location loc, Value v) {
  if (v.getType().isIndex())
    return arith::IndexCastUIOp::create(b, loc, b.getI32Type(), v);
  if (v.getType().getIntOrFloatBitWidth() == 32)
    return v;
  return arith::TruncIOp::create(b, loc, b.getI32Type(), v);
}

Value tessera::gpu::inlinePtx(OpBuilder &b, Location loc, Type result, ValueRange operands,
                              StringRef ptx, StringRef constraints) {
  auto op = LLVM::InlineAsmOp::create(
      b, loc, result ? TypeRange{result} : TypeRange{}, operands, b.getStringAttr(ptx),
      b.getStringAttr(constraints), /*has_side_effects=*/b.getUnitAttr(), UnitAttr(),
      LLVM::TailCallKindAttr(), LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
      ArrayAttr());
  return result ? op.getResult(0) : Value();
}

SmallVector<Value> tessera::gpu::fenceRegisters(ImplicitLocOpBuilder &b, ValueRange values) {
  SmallVector<Value> out;
  // In groups of 32: an asm statement takes a bounded number of operands.
  for (size_t start = 0; start < values.size(); start += 32) {
    ValueRange part = values.slice(start, std::min<size_t>(32, values.size() - start));
    std::string constraints;
    for (size_t i = 0; i < part.size(); ++i)
      constraints += "=f,";
    for (size_t i = 0; i < part.size(); ++i)
      constraints += std::to_string(i) + (i + 1 < part.size() ? "," : "");
    auto type = LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(part.size(), b.getF32Type()));
    Value fenced = inlinePtx(b, b.getLoc(), type, part, "", constraints);
    for (size_t i = 0; i < part.size(); ++i)
      out.push_back(LLVM::ExtractValueOp::create(b, fenced, ArrayRef<int64_t>{int64_t(i)}));
  }
  return out;
}
