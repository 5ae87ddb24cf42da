//===- LaunchRecord.h - grid formulas and workspaces ------------------------===//
#ifndef TESSERA_CODEGEN_GPU_LAUNCHRECORD_H
#define TESSERA_CODEGEN_GPU_LAUNCHRECORD_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace tessera::gpu {
/// A grid size as the runtime recomputes it: ceil(dim(arg, d) / divisor), or a constant;
/// or a dim that is 0 where it equals another, or where it differs (a buffer or a grid
/// only some shapes use); or the product of two of these.
mlir::FailureOr<mlir::Attribute> gridFormula(mlir::Value size, mlir::func::FuncOp func);
/// Host-side allocations (intermediates between grids: tile lists, scratch, program
/// intermediates) become trailing function arguments the runtime allocates: their
/// shapes, as grid-size formulas of the other arguments, go to `tessera.workspaces`.
mlir::LogicalResult allocationsToWorkspaces(mlir::func::FuncOp func);
} // namespace tessera::gpu

#endif // TESSERA_CODEGEN_GPU_LAUNCHRECORD_H
