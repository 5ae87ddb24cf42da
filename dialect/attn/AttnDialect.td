//===- AttnDialect.td - the attention-meaning dialect ------*- tablegen -*-===//
#ifndef TESSERA_ATTN_DIALECT
#define TESSERA_ATTN_DIALECT

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let summary = "What an attention variant computes, on tensors, with no GPU detail.";
  let description = [{
    The `attn` dialect states the meaning of an attention variant: softmax attention with
    user `score_mod` / `mask_mod` regions, linear attention with decay, producers of block
    structure (top-k selection, block compression, LSH sorting, column samples) and
    combiners (log-sum-exp merge, gated sum). Tensors use the layout
    `[batch, heads, sequence, head_dim]`; key/value heads may divide the query heads (GQA).
    Verifiers reject every ill-formed spec; nothing here knows about a GPU.
  }];
  let cppNamespace = "::tessera::attn";
  let useDefaultAttributePrinterParser = 1;
}

class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

#endif // TESSERA_ATTN_DIALECT
