//===- TgpuDialect.td - the GPU-level dialect ---------------*- tablegen -*-===//
#ifndef TESSERA_TGPU_DIALECT
#define TESSERA_TGPU_DIALECT

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Tgpu_Dialect : Dialect {
  let name = "tgpu";
  let summary = "How one tile program runs on an NVIDIA GPU: layouts, shared memory, "
                "asynchrony and synchronisation.";
  let description = [{
    The level between `tile` (what a program instance computes) and `nvvm` (one
    instruction at a time). A tile value keeps its `tensor` type and gains a layout
    encoding that says which thread holds which element (`#tgpu.mma`, `#tgpu.dot_operand`,
    `#tgpu.slice`, `#tgpu.row_span`, `#tgpu.whole`); shared-memory buffers are values of
    type `!tgpu.smem` with their swizzle and stage count; the ops make the rest of what the
    GPU adds explicit: layout conversions, shared-memory traffic, `cp.async` groups,
    mbarriers with phases, TMA, warpgroup products with their waits, block barriers,
    proxy fences and warp-specialised partitions. Every decision the GPU lowering makes
    can then be printed between passes and tested alone. See docs/RationaleTgpu.md.
  }];
  let cppNamespace = "::tessera::tgpu";
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::tensor::TensorDialect"];
  let extraClassDeclaration = [{
    void registerTypes();
  }];
}

class Tgpu_Op<string mnemonic, list<Trait> traits = []>
    : Op<Tgpu_Dialect, mnemonic, traits>;

#endif // TESSERA_TGPU_DIALECT
