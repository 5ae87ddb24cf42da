//===- AttnLinearOps.td - linear attention ops -------------*- tablegen -*-===//
#ifndef TESSERA_ATTN_LINEAR_OPS
#define TESSERA_ATTN_LINEAR_OPS

// Placeholder: LinearAttentionOp is defined here.
def Attn_LinearAttentionOp : Attn_Op<"linear_attention", [Pure]> {
  let summary = "linear attention (placeholder)";
  let arguments = (ins AnyRankedTensor:$query);
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = "$query attr-dict `:` type($query) `->` type($output)";
}

#endif
