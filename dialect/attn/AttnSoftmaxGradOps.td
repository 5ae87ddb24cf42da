//===- AttnSoftmaxGradOps.td - softmax attention gradient --*- tablegen -*-===//
#ifndef TESSERA_ATTN_SOFTMAX_GRAD_OPS
#define TESSERA_ATTN_SOFTMAX_GRAD_OPS

def Attn_AttentionGradOp : Attn_Op<"attention_grad", [RecursiveMemoryEffects,
    AttrSizedOperandSegments,
    AllTypesMatch<["query", "grad_query"]>, AllTypesMatch<["key", "grad_key"]>,
    AllTypesMatch<["value", "grad_value"]>, AllTypesMatch<["output", "grad_output"]>]> {
  let summary = "gradient of softmax attention with respect to query, key and value";
  let description = [{
    The backward of `attn.attention` with the same attributes and modifier regions
    (SEMANTICS.md §1, backward): given the forward's inputs, its output `O` and row
    log-sum-exp `L`, and the upstream gradient `dO` (O's type), computes `dQ`, `dK`, `dV`
    (the types of query, key and value). Scores are recomputed from Q, K and L:
    `P = exp(score_mod(scale Q Kᵀ) - L)` on the kept pairs, `Δ = rowsum(dO ∘ O)`,
    `dS' = P ∘ (dO Vᵀ - Δ)`, `dS = dS' ∘ ∂score_mod/∂score` (generated from the region),
    `dV = Pᵀ dO`, `dK = scale dSᵀ Q`, `dQ = scale dS K`; dK and dV sum over the query
    heads of a group. Rows with no kept key (L = -inf) contribute nothing.

    `table_grads(T, ... -> types)` names f32 tables the score_mod reads whose gradient is
    wanted: each gets a result of its type, `dT[e] = Σ dS'_ij ∂score_mod/∂T[e]` over the
    kept pairs whose score_mod read entry e (a derivative generated per read).

    ```mlir
    %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do {causal}
        : tensor<?x16x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
          tensor<?x16x?x64xf32>, tensor<?x16x?xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    AnyRankedTensor:$output,
    AnyRankedTensor:$lse,
    AnyRankedTensor:$grad_output,
    Optional<AnyRankedTensor>:$block_indices,
    Variadic<AnyRankedTensor>:$grad_tables,
    OptionalAttr<F32Attr>:$scale,
    UnitAttr:$causal,
    OptionalAttr<I64Attr>:$window,
    OptionalAttr<I64Attr>:$block_q,
    OptionalAttr<I64Attr>:$block_k
  );
  let results = (outs AnyRankedTensor:$grad_query, AnyRankedTensor:$grad_key,
                      AnyRankedTensor:$grad_value, Variadic<AnyRankedTensor>:$table_grads);
  let regions = (region AnyRegion:$score_mod, AnyRegion:$mask_mod);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $output `,` $lse `,` $grad_output
    (`blocks` `(` $block_indices^ `:` type($block_indices) `)`)?
    (`table_grads` `(` $grad_tables^ `:` type($grad_tables) `->` type($table_grads) `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value) `,` type($output) `,`
    type($lse) `` custom<ModRegions>($score_mod, $mask_mod)
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The softmax scale: the `scale` attribute, else D^-1/2.
    double getEffectiveScale();
    bool hasScoreMod() { return !getScoreMod().empty(); }
    bool hasMaskMod() { return !getMaskMod().empty(); }
  }];
}

#endif // TESSERA_ATTN_SOFTMAX_GRAD_OPS
