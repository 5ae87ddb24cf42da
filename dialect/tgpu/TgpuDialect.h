//===- TgpuDialect.h - the GPU-level dialect --------------------*- C++ -*-===//
#ifndef TESSERA_DIALECT_TGPU_TGPUDIALECT_H
#define TESSERA_DIALECT_TGPU_TGPUDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TensorEncoding.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace tessera::tgpu {
/// `custom<WarpRegions>($defaultRegion, $partitionRegions)` of tgpu.warp_specialize:
/// `default region partitions region (, region)*` (TgpuOps.cpp).
mlir::ParseResult
parseWarpRegions(mlir::OpAsmParser &parser, mlir::Region &defaultRegion,
                 llvm::SmallVectorImpl<std::unique_ptr<mlir::Region>> &partitions);
void printWarpRegions(mlir::OpAsmPrinter &printer, mlir::Operation *op,
                      mlir::Region &defaultRegion, mlir::MutableArrayRef<mlir::Region> partitions);
} // namespace tessera::tgpu

#include "dialect/tgpu/TgpuOpsDialect.h.inc"
#include "dialect/tgpu/TgpuEnums.h.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/tgpu/TgpuAttrs.h.inc"
#define GET_TYPEDEF_CLASSES
#include "dialect/tgpu/TgpuOpsTypes.h.inc"
#define GET_OP_CLASSES
#include "dialect/tgpu/TgpuOps.h.inc"

namespace tessera::tgpu {

/// True for the register layouts of this dialect (the encodings a tile may carry here).
bool isRegisterLayout(mlir::Attribute encoding);

} // namespace tessera::tgpu

#endif
