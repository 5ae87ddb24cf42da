//===- TgpuToNvvm.h - tgpu ops on tiles to per-thread scalars ---*- C++ -*-===//
//
// tessera-convert-tgpu-to-nvvm (TgpuToNvvm.cpp) lowers the ops tessera-tile-to-gpu
// leaves on tiles, one file per op family, each adding its patterns here. A tile whose
// type has a #tgpu register layout is, in each thread, the scalars ("slots") that
// layout gives it (Layouts.h: numSlots): the families share that 1:N type conversion.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_TGPUTONVVM_H
#define TESSERA_CODEGEN_GPU_TGPUTONVVM_H

#include "dialect/tile/TileDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/Transforms/DialectConversion.h"

namespace tessera::gpu {
/// A family of the conversion: its patterns, the ops it makes illegal, and a check
/// that names (at the op) what it cannot lower, before anything is rewritten.
struct TileOpFamily {
  void (*populate)(const mlir::TypeConverter &, mlir::RewritePatternSet &,
                   mlir::ConversionTarget &);
  mlir::LogicalResult (*check)(mlir::Operation *op);
};

/// arith / math ops per slot; tile.broadcast by picking slots (TgpuElementwiseToNvvm.cpp).
TileOpFamily elementwiseFamily();
/// tile.reduce along the rows a warp holds (TgpuReduceToNvvm.cpp).
TileOpFamily reduceFamily();
/// tgpu.convert_layout of an accumulator to a left operand (TgpuConvertLayoutToNvvm.cpp).
TileOpFamily convertLayoutFamily();

/// `x` and `y` combined by `kind` (sum, max, min), as every reduction combines them.
mlir::Value combineValues(mlir::OpBuilder &b, mlir::Location loc, tile::Combiner kind,
                          mlir::Value x, mlir::Value y);
/// `v` combined with the values of the lanes `offsets` away (xor butterfly shuffles).
mlir::Value combineLanes(mlir::OpBuilder &b, mlir::Location loc, tile::Combiner kind,
                         mlir::Value v, llvm::ArrayRef<int64_t> offsets);
} // namespace tessera::gpu

#endif // TESSERA_CODEGEN_GPU_TGPUTONVVM_H
