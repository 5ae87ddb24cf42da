//===- Passes.td - CPU code generation passes --------------*- tablegen -*-===//
#ifndef TESSERA_CPU_PASSES
#define TESSERA_CPU_PASSES

include "mlir/Pass/PassBase.td"

def TileToLinalg : Pass<"tessera-tile-to-linalg", "mlir::ModuleOp"> {
  let summary = "lower tile programs to loops and linalg ops on tensors (CPU)";
  let description = [{
    Each `tile.grid` becomes a nest of `scf.for` loops over its program ids; tile ops
    become `linalg` / `tensor` ops on tensors (bounded loads through `tensor.generate`
    with an in-bounds guard, stores through guarded loops, `tile.dot` as `linalg.matmul`),
    ready for element-wise-to-linalg conversion and one-shot bufferization.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect",
    "::mlir::memref::MemRefDialect"
  ];
}

#endif // TESSERA_CPU_PASSES
