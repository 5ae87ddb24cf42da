//===- Passes.td - target-independent Tessera passes -------*- tablegen -*-===//
#ifndef TESSERA_PASSES
#define TESSERA_PASSES

include "mlir/Pass/PassBase.td"

def AttnToTile : Pass<"tessera-attn-to-tile", "mlir::ModuleOp"> {
  let summary = "lower attn ops on tensors to tile programs over buffers";
  let description = [{
    Rewrites every `func.func` whose body holds `attn` ops into destination-passing form
    (tensor arguments become buffers, results become trailing output buffers) and each
    `attn.attention` into a `tile.grid` running the FlashAttention-2 online softmax: per
    query tile, loops over key tiles carrying (max, sum, accumulator). Key tiles are
    classified from the mask: tiles wholly outside causal / window bounds are never
    visited, tiles wholly inside run without mask evaluation, and only boundary tiles
    evaluate the mask and `mask_mod`. `score_mod` / `mask_mod` regions are inlined
    element-wise on the score tile. With a `mask_mod`, a first grid classifies every key
    tile (empty / partial / full) so the attention grid skips and masks accordingly.

    `attn.linear_attention` becomes one program per (head, batch) walking blocks of
    `block-m` tokens with the D x Dv state carried on chip (Lightning Attention-2);
    `attn.linear_decode` one program per (head, batch) updating the state once.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect",
    "::mlir::memref::MemRefDialect", "::mlir::func::FuncDialect",
    "::tessera::tile::TileDialect"
  ];
  let options = [
    Option<"blockM", "block-m", "int64_t", "64", "query rows per program">,
    Option<"blockN", "block-n", "int64_t", "64", "keys per inner-loop step">,
    Option<"numWarps", "num-warps", "int64_t", "4", "warps per program (GPU)">,
    Option<"numStages", "num-stages", "int64_t", "2", "software-pipeline stages (GPU)">,
    Option<"split", "split", "int64_t", "1",
           "pieces a program's work is split into (linear attention: value columns)">,
    Option<"keyMajorGrad", "key-major-grad", "bool", "true",
           "softmax backward: the dK / dV grid computes [key, query] tiles (Sᵀ, dPᵀ), "
           "whose Pᵀ and dSᵀ are left operands as they stand (wgmma takes them from "
           "registers); false: [query, key] tiles, transposed for those products "
           "(mma.sync, whose left operands loaded once would stay in registers)">,
    Option<"gradQueryTile", "grad-query-tile", "int64_t", "0",
           "softmax backward: queries per tile the dK / dV grid walks (a multiple of 16 on "
           "GPUs; with key-major-grad false, 16 x num-warps); 0: the rule, 32 past head "
           "dim 64 in [key, query] tiles with block-m 64, else block-m">,
    Option<"gradDqAtomic", "grad-dq-atomic", "bool", "false",
           "softmax backward: the dK / dV grid also adds each pair's dQ share into an f32 "
           "workspace with atomics, a last grid converts it (no dQ grid; GPUs)">
  ];
}

#endif // TESSERA_PASSES
