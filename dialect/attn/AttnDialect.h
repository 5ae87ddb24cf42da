//===- AttnDialect.h - the attn dialect -------------------------*- C++ -*-===//
#ifndef TESSERA_DIALECT_ATTN_ATTNDIALECT_H
#define TESSERA_DIALECT_ATTN_ATTNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace tessera::attn {
/// `custom<ModRegions>($score_mod, $mask_mod)` of attn.attention and
/// attn.attention_grad: `(score_mod region)? (mask_mod region)?` (AttnOps.cpp).
mlir::ParseResult parseModRegions(mlir::OpAsmParser &parser, mlir::Region &scoreMod,
                                  mlir::Region &maskMod);
void printModRegions(mlir::OpAsmPrinter &printer, mlir::Operation *op,
                     mlir::Region &scoreMod, mlir::Region &maskMod);
} // namespace tessera::attn

#include "dialect/attn/AttnOpsDialect.h.inc"
#include "dialect/attn/AttnEnums.h.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/attn/AttnAttrs.h.inc"
#define GET_OP_CLASSES
#include "dialect/attn/AttnOps.h.inc"

namespace tessera::attn {
/// Shared shape checks used by several op verifiers (AttnVerify.cpp).
mlir::LogicalResult verifyRank(mlir::Operation *op, llvm::StringRef what,
                               mlir::ShapedType type, int64_t rank);
/// Emits an error unless `a` and `b` are equal or either is dynamic.
mlir::LogicalResult verifyDimsMatch(mlir::Operation *op, llvm::StringRef what,
                                    int64_t a, int64_t b);
bool isFloatTensorElement(mlir::Type t);
} // namespace tessera::attn

#endif
