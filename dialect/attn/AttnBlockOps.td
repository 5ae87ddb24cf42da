//===- AttnBlockOps.td - block-structure ops ---------------*- tablegen -*-===//
//
// Producers of sparse structure (pooled block keys, top-k block indices, LSH orders,
// row gathers) and the gated combiner. Included from AttnOps.td.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_ATTN_BLOCK_OPS
#define TESSERA_ATTN_BLOCK_OPS

def Attn_CompressOp : Attn_Op<"compress", [Pure]> {
  let summary = "pools blocks of keys or values into one row per block";
  let description = [{
    Block `i` covers rows `[i * stride, i * stride + block)` of a `[B, H, N, D]` tensor
    and is pooled into row `i` of the `[B, H, NB, D]` result, where
    `NB = floor((N - block) / stride) + 1` (0 when `N < block`); a trailing partial
    block is dropped. `pool = mean` averages the rows (the only kind for now; NSA's
    paper uses a learned MLP, fla and MoBA use the mean). The result has the input's
    element type.

    ```mlir
    %kb = attn.compress %k {block = 64 : i64, stride = 64 : i64}
        : tensor<1x8x4096x64xbf16> -> tensor<1x8x64x64xbf16>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$input,
    I64Attr:$block,
    I64Attr:$stride,
    DefaultValuedAttr<Attn_PoolKindAttr, "::tessera::attn::PoolKind::mean">:$pool
  );
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Attn_BlockTopKOp : Attn_Op<"block_topk", [Pure]> {
  let summary = "per query block, the k best key blocks by a gate score (MoBA, NSA)";
  let description = [{
    Selects key blocks for `attn.attention`'s `block_indices` operand. Operands: query
    `[B, H, Nq, D]` and block keys `[B, Hk, NB, D]` (one row per key block of `block_k`
    keys, e.g. `attn.compress` with `block = stride = block_k`), `H % Hk == 0`. Result:
    i32 `[B, H, ceil(Nq / block_q), k]`, exactly the layout `attn.attention` takes with
    the same `block_q` / `block_k`.

    The gate is per query block: rows `[b * block_q, (b + 1) * block_q)` of head `h`
    score key block `j` with `s_bj = Σ_t q_t · kb_j` (fp32, unscaled) under
    `score = dot` (default), or with `s_bj = Σ_t p_tj`, `p_t = softmax_j(scale * q_t · kb_j)`
    over the visible blocks (scale default `D^-1/2`) under `score = softmax`. With
    `block_q = 1` this is a per-token gate: MoBA's gate is `dot` (SEMANTICS §4); NSA
    ranks by the compression branch's probabilities, `softmax` (SEMANTICS §5).
    `group_heads` also sums the scores over the `H / Hk` query heads that share a
    key head, so the whole group makes one choice (its rows are equal).

    Positions: query row `t` sits at key position `t` (queries and keys share
    positions, as in prefill); the current block of query block `b` is
    `c = floor(b * block_q / block_k)`. Under `causal` only blocks lying entirely at or
    before the block's first query, `(j + 1) * block_k - 1 <= b * block_q`, are
    candidates (this needs `block_q` to divide `block_k`, so a query block never spans
    two key blocks). `include_current` forces `c` into the selection, where it counts
    towards `k`, and ranks the other `k - 1` among the remaining candidates (MoBA:
    `{c} ∪ top-(k-1)` of the past blocks). Ties go to the lower block index. Each row
    lists its chosen blocks in increasing order, padded with -1 at the end.

    ```mlir
    %idx = attn.block_topk %q, %kb
        {block_q = 1 : i64, block_k = 512 : i64, k = 3 : i64, causal, include_current}
        : tensor<1x8x4096x64xbf16>, tensor<1x8x8x64xbf16> -> tensor<1x8x4096x3xi32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$block_keys,
    I64Attr:$block_q,
    I64Attr:$block_k,
    I64Attr:$k,
    UnitAttr:$causal,
    UnitAttr:$include_current,
    UnitAttr:$group_heads,
    DefaultValuedAttr<Attn_BlockScoreAttr, "::tessera::attn::BlockScore::dot">:$score,
    OptionalAttr<F32Attr>:$scale
  );
  let results = (outs AnyRankedTensor:$indices);
  let assemblyFormat = [{
    $query `,` $block_keys attr-dict `:` type($query) `,` type($block_keys)
    `->` type($indices)
  }];
  let hasVerifier = 1;
}

def Attn_LshSortOp : Attn_Op<"lsh_sort", [Pure]> {
  let summary = "the permutation that sorts rows by an angular LSH bucket (HyperAttention)";
  let description = [{
    For input `[B, H, N, D]` and a projection `R` `[D, r]` (f32, `1 <= r <= 16`), the row
    hash is `h(x) = gray[Σ_i 2^i [(x R)_i > 0]]`, where `gray` ranks `0 .. 2^r - 1` in
    reflected Gray-code order so neighbouring buckets differ in one bit
    (SEMANTICS §3). The i32 result `[B, H, N]` is the stable sort of the rows by hash:
    `perm[i]` is the original row at sorted position `i`, so
    `attn.gather_rows %x[%perm]` sorts and `attn.scatter_rows` with the same `perm`
    un-sorts. `R` is an operand, so tests pass it explicitly and are deterministic.

    ```mlir
    %perm = attn.lsh_sort %q, %r : tensor<1x8x4096x64xf32>, tensor<64x7xf32>
        -> tensor<1x8x4096xi32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$projection);
  let results = (outs AnyRankedTensor:$perm);
  let assemblyFormat = [{
    $input `,` $projection attr-dict `:` type($input) `,` type($projection) `->` type($perm)
  }];
  let hasVerifier = 1;
}

def Attn_GatherRowsOp : Attn_Op<"gather_rows", [Pure]> {
  let summary = "reads rows of a [B, H, N(, D)] tensor at per-head i32 indices";
  let description = [{
    `out[b, h, i, ...] = x[b, h, idx[b, h, i], ...]`. `x` is `[B, H, N, D]` or
    `[B, H, N]` (e.g. an lse or a permutation); `idx` is i32 `[B or 1, H or 1, M]` (a
    size-1 dim broadcasts) or `[M]` (the same rows for every batch and head); the
    result is `x` with dim 2 replaced by `M`. An index outside `[0, N)` (e.g. a -1 pad) reads zeros. Sorts rows by an `attn.lsh_sort`
    permutation, and picks sampled key columns `J` given by the user.

    ```mlir
    %ks = attn.gather_rows %k[%perm] : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32>
        -> tensor<1x8x4096x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$indices);
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = [{
    $input `[` $indices `]` attr-dict `:` type($input) `,` type($indices) `->` type($output)
  }];
  let hasVerifier = 1;
}

def Attn_ScatterRowsOp : Attn_Op<"scatter_rows", [Pure]> {
  let summary = "writes rows of a [B, H, M(, D)] tensor at per-head i32 indices";
  let description = [{
    The inverse of `attn.gather_rows`: `out[b, h, idx[b, h, i], ...] = y[b, h, i, ...]`;
    the result is `y` with dim 2 replaced by `N` (given by the result type). Rows that
    no index names are zero; indices outside `[0, N)` are dropped; the indices of one
    (batch, head) must be distinct. With a permutation `p`,
    `scatter_rows(gather_rows(x, p), p) == x`: this un-sorts LSH-sorted rows.

    ```mlir
    %o = attn.scatter_rows %os[%perm] : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32>
        -> tensor<1x8x4096x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$indices);
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = [{
    $input `[` $indices `]` attr-dict `:` type($input) `,` type($indices) `->` type($output)
  }];
  let hasVerifier = 1;
}

def Attn_GateOp : Attn_Op<"gate", [Pure]> {
  let summary = "gated sum of partial attention outputs (NSA)";
  let description = [{
    `o[b, h, t, :] = Σ_i gates[b, h, t, i] * partials_i[b, h, t, :]`. `gates` is
    `[B, H, N, n]` (any float type, typically sigmoid outputs in [0, 1]) with `n` the
    number of partials (at least one); the partials and the result share one type
    `[B, H, N, Dv]`.

    ```mlir
    %o = attn.gate %g, %ocmp, %oslc, %owin : tensor<1x8x?x3xf32>, tensor<1x8x?x64xbf16>,
        tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$gates, Variadic<AnyRankedTensor>:$partials);
  let results = (outs AnyRankedTensor:$output);
  let assemblyFormat = [{
    $gates `,` $partials attr-dict `:` type($gates) `,` type($partials) `->` type($output)
  }];
  let hasVerifier = 1;
}

#endif // TESSERA_ATTN_BLOCK_OPS
