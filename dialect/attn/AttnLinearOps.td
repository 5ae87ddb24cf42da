//===- AttnLinearOps.td - linear attention ops -------------*- tablegen -*-===//
//
// Linear attention (optionally with a per-head decay, Lightning Attention-2) and its
// one-token recurrent decode step. Included from AttnOps.td.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_ATTN_LINEAR_OPS
#define TESSERA_ATTN_LINEAR_OPS

def Attn_LinearAttentionOp : Attn_Op<"linear_attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "linear attention: feature map, causal prefix sums, optional decay";
  let description = [{
    Attention without softmax, computed through the right product `φ(Q)(φ(K)ᵀV)`.
    Shapes: query `[B, H, N, D]`, key `[B, Hk, N, D]`, value `[B, Hk, N, Dv]` with
    `H % Hk == 0` (query head `h` reads key/value head `h / (H / Hk)`); `decay`
    `[H]` f32; `initial_state` `[B, H, D, Dv]` f32. Results: `output` `[B, H, N, Dv]`
    with the query's element type and `final_state` `[B, H, D, Dv]` f32. Head dims
    `D` and `Dv` must be static (they size the state); other dims may be `?`.

    Per (batch, head), with `φ` the `feature_map` (identity, elu(x) + 1 or relu, applied
    to queries and keys), `τ` the `scale` (default 1: no scaling), `λ` the head's
    `decay` (default 1) and `S₋₁` the `initial_state` (default 0):

    * causal: `S_t = λ S_{t-1} + φ(k_t)ᵀ v_t` and `o_t = τ φ(q_t) S_t`, i.e.
      `O = τ [(φ(Q)φ(K)ᵀ) ⊙ M] V + τ Λ φ(Q) S₋₁` with `M_ts = λ^(t-s)` for `t >= s`,
      else 0, and `Λ = diag(λ^(t+1))`. This is Lightning Attention-2 (SEMANTICS §2)
      when `φ` is the identity and `τ = 1`.
    * non-causal: `S = S₋₁ + φ(K)ᵀ V` and `O = τ φ(Q) S` (a decay needs `causal`).
    * `normalize` divides each row by `φ(q_t) · z_t` with
      `z_t = Σ_{s<=t} λ^(t-s) φ(k_s)` (causal) or `z = Σ_s φ(k_s)`; `τ` cancels. The
      carried state holds no normaliser, so `normalize` excludes `initial_state`.

    `final_state` is the last `S` (the state a following `attn.linear_decode` starts
    from). The decay values of a constant `decay` operand must lie in `(0, 1]`.

    ```mlir
    %o, %s = attn.linear_attention %q, %k, %v decay(%lam : tensor<16xf32>) {causal}
        : tensor<2x16x?x128xbf16>, tensor<2x16x?x128xbf16>, tensor<2x16x?x128xbf16>
        -> tensor<2x16x?x128xbf16>, tensor<2x16x128x128xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    Optional<AnyRankedTensor>:$decay,
    Optional<AnyRankedTensor>:$initial_state,
    DefaultValuedAttr<Attn_FeatureMapAttr, "::tessera::attn::FeatureMap::identity">:$feature_map,
    UnitAttr:$causal,
    UnitAttr:$normalize,
    OptionalAttr<F32Attr>:$scale
  );
  let results = (outs AnyRankedTensor:$output, AnyRankedTensor:$final_state);
  let assemblyFormat = [{
    $query `,` $key `,` $value
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value)
    `->` type($output) `,` type($final_state)
  }];
  let hasVerifier = 1;
}

def Attn_LinearDecodeOp : Attn_Op<"linear_decode", [Pure]> {
  let summary = "one recurrent step of linear attention against its D x Dv state";
  let description = [{
    The decode form of `attn.linear_attention`: for one new token per (batch, head),
    `S_t = λ S_{t-1} + φ(k_t)ᵀ v_t` and `o_t = τ φ(q_t) S_t`. Shapes: query
    `[B, H, 1, D]`, key `[B, Hk, 1, D]`, value `[B, Hk, 1, Dv]` (`H % Hk == 0`),
    `state` `[B, H, D, Dv]` f32, optional `decay` `[H]` f32. Results: `output`
    `[B, H, 1, Dv]` with the query's element type and `new_state` `[B, H, D, Dv]` f32.
    `feature_map` and `scale` mean what they mean on `attn.linear_attention`, so a
    prefill followed by decode steps with the same attributes equals one causal
    `attn.linear_attention` over the whole sequence.

    ```mlir
    %o, %s1 = attn.linear_decode %q, %k, %v, %s0 decay(%lam : tensor<16xf32>)
        : tensor<2x16x1x128xbf16>, tensor<2x16x1x128xbf16>, tensor<2x16x1x128xbf16>,
          tensor<2x16x128x128xf32> -> tensor<2x16x1x128xbf16>, tensor<2x16x128x128xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    AnyRankedTensor:$state,
    Optional<AnyRankedTensor>:$decay,
    DefaultValuedAttr<Attn_FeatureMapAttr, "::tessera::attn::FeatureMap::identity">:$feature_map,
    OptionalAttr<F32Attr>:$scale
  );
  let results = (outs AnyRankedTensor:$output, AnyRankedTensor:$new_state);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $state
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value) `,` type($state)
    `->` type($output) `,` type($new_state)
  }];
  let hasVerifier = 1;
}

def Attn_LinearAttentionGradOp : Attn_Op<"linear_attention_grad", [Pure,
    AttrSizedOperandSegments, AllTypesMatch<["query", "grad_query"]>,
    AllTypesMatch<["key", "grad_key"]>, AllTypesMatch<["value", "grad_value"]>]> {
  let summary = "gradients of attn.linear_attention with respect to q, k and v";
  let description = [{
    Given `grad_output` (dL/dO, shaped like the output), computes dL/dQ, dL/dK and
    dL/dV of the `attn.linear_attention` with the same operands and attributes
    (SEMANTICS §2 backward): with G = τ dO, Q' = φ(Q), K' = φ(K),
    `dV = [(Q'K'ᵀ) ⊙ M]ᵀ G`, `dQ' = [(G Vᵀ) ⊙ M] K' + Λ G S₋₁ᵀ`,
    `dK' = [(G Vᵀ) ⊙ M]ᵀ Q'`, then `dQ = dQ' ⊙ φ'(Q)` and `dK = dK' ⊙ φ'(K)`. Key
    and value gradients sum over the query heads of a GQA group. The final state's
    gradient is taken as zero.

    ```mlir
    %dq, %dk, %dv = attn.linear_attention_grad %q, %k, %v, %do decay(%lam : tensor<16xf32>)
        {causal} : tensor<2x16x?x128xf32>, tensor<2x16x?x128xf32>, tensor<2x16x?x128xf32>,
        tensor<2x16x?x128xf32> -> tensor<2x16x?x128xf32>, tensor<2x16x?x128xf32>,
        tensor<2x16x?x128xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    AnyRankedTensor:$grad_output,
    Optional<AnyRankedTensor>:$decay,
    Optional<AnyRankedTensor>:$initial_state,
    DefaultValuedAttr<Attn_FeatureMapAttr, "::tessera::attn::FeatureMap::identity">:$feature_map,
    UnitAttr:$causal,
    OptionalAttr<F32Attr>:$scale
  );
  let results = (outs AnyRankedTensor:$grad_query, AnyRankedTensor:$grad_key,
                      AnyRankedTensor:$grad_value);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $grad_output
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value) `,` type($grad_output)
    `->` type($grad_query) `,` type($grad_key) `,` type($grad_value)
  }];
  let hasVerifier = 1;
}

#endif // TESSERA_ATTN_LINEAR_OPS
