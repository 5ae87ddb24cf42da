//===- AttnOps.td - attn operations ------------------------*- tablegen -*-===//
#ifndef TESSERA_ATTN_OPS
#define TESSERA_ATTN_OPS

include "dialect/attn/AttnDialect.td"
include "dialect/attn/AttnAttrs.td"
include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

//===----------------------------------------------------------------------===//
// Softmax attention
//===----------------------------------------------------------------------===//

def Attn_AttentionOp : Attn_Op<"attention", [
    RecursiveMemoryEffects]> {
  let summary = "softmax attention with optional masks, score and mask modifiers";
  let description = [{
    Computes `O = softmax(score_mod(scale * Q Kᵀ) + mask) V` per (batch, head) and the
    row log-sum-exp `L`. Shapes: query `[B, H, Nq, D]`, key `[B, Hk, Nk, D]`, value
    `[B, Hk, Nk, Dv]` with `H % Hk == 0` (grouped-query attention); output
    `[B, H, Nq, Dv]` with the query's element type; lse `[B, H, Nq]` in f32.

    Masks combine by conjunction: `causal` keeps `j <= i + Nk - Nq` (aligned to the
    bottom-right corner); `window = w` also keeps `j > i + Nk - Nq - w` (and, without `causal`,
    `j < i + Nk - Nq + w`: a bidirectional window);
    the `mask_mod` region keeps the pairs for which it yields true; the optional
    `block_indices` operand `[B, H or 1, ceil(Nq / block_q), K]` (i32, -1 padded) lists
    for each query block the key blocks (of `block_k` keys) that may be visited at all.
    A row with no visible key yields zeros (and lse = -inf).

    `score_mod` receives `(score: f32, b, h, q_idx, kv_idx: i32)` and yields the new
    score; `mask_mod` receives `(b, h, q_idx, kv_idx: i32)` and yields `i1`. Both hold
    scalar arith/math ops only, and may read i32 or f32 tensors of any rank defined above
    with `tensor.extract` (document ids, ALiBi slopes, a bias table); a read outside the
    tensor gives 0.

    ```mlir
    %o, %lse = attn.attention %q, %k, %v {causal, window = 256 : i64}
        : tensor<?x16x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
        -> tensor<?x16x?x64xbf16>, tensor<?x16x?xf32>
        score_mod {
        ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
          %c = arith.constant 5.0e+01 : f32
          %t = arith.divf %s, %c : f32
          %u = math.tanh %t : f32
          %r = arith.mulf %u, %c : f32
          attn.yield %r : f32
        }
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    Optional<AnyRankedTensor>:$block_indices,
    OptionalAttr<F32Attr>:$scale,
    UnitAttr:$causal,
    OptionalAttr<I64Attr>:$window,
    OptionalAttr<I64Attr>:$block_q,
    OptionalAttr<I64Attr>:$block_k
  );
  let results = (outs AnyRankedTensor:$output, AnyRankedTensor:$lse);
  let regions = (region AnyRegion:$score_mod, AnyRegion:$mask_mod);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`blocks` `(` $block_indices^ `:` type($block_indices) `)`)?
    attr-dict `:` type($query) `,` type($key) `,` type($value)
    `->` type($output) `,` type($lse)
    `` custom<ModRegions>($score_mod, $mask_mod)
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

def Attn_YieldOp : Attn_Op<"yield", [Pure, Terminator, ReturnLike,
    ParentOneOf<["AttentionOp", "AttentionGradOp", "LinearAttentionOp"]>]> {
  let summary = "yields the scalar result of a modifier region";
  let description = [{
    Ends a `score_mod`, `mask_mod` or `feature_map` region with its scalar result.

    ```mlir
    attn.yield %r : f32
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "attr-dict ($values^ `:` type($values))?";
}

//===----------------------------------------------------------------------===//
// Combiners
//===----------------------------------------------------------------------===//

def Attn_MergeOp : Attn_Op<"merge", [Pure,
    AllTypesMatch<["out_a", "out_b", "output"]>, AllTypesMatch<["lse_a", "lse_b", "lse"]>]> {
  let summary = "merges partial softmax results over disjoint key sets by log-sum-exp";
  let description = [{
    Given two partial results `(O_a, L_a)` and `(O_b, L_b)` computed over disjoint key
    sets, computes `L = log(e^L_a + e^L_b)` and `O = e^(L_a - L) O_a + e^(L_b - L) O_b`.
    Outputs `[B, H, N, Dv]`, lse `[B, H, N]` (f32). Used by HyperAttention, MoBA,
    split-KV decoding and context parallelism.

    ```mlir
    %o, %l = attn.merge %oa, %la, %ob, %lb : tensor<1x8x?x64xf32>, tensor<1x8x?xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$out_a, AnyRankedTensor:$lse_a,
                       AnyRankedTensor:$out_b, AnyRankedTensor:$lse_b);
  let results = (outs AnyRankedTensor:$output, AnyRankedTensor:$lse);
  let assemblyFormat = [{
    $out_a `,` $lse_a `,` $out_b `,` $lse_b attr-dict `:` type($out_a) `,` type($lse_a)
  }];
  let hasVerifier = 1;
}

include "dialect/attn/AttnLinearOps.td"
include "dialect/attn/AttnBlockOps.td"
include "dialect/attn/AttnSoftmaxGradOps.td"

#endif // TESSERA_ATTN_OPS
