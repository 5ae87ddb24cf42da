// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// Seed: MoBA (SEMANTICS §4), blocks of B = 512 keys, k = 3 (the current block counts).
// The gate of the query at t is q_t · mean(K[block i]) for the blocks entirely before t;
// {current} ∪ top-2 is attended with the token-level causal mask. The gate is per query
// token (block_q = 1), so the index tensor has one row per query.

// CHECK-LABEL: func.func @moba
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<1x8x4096x64xbf16>, %[[K:[^:]*]]: tensor<1x8x4096x64xbf16>, %[[V:[^:]*]]: tensor<1x8x4096x64xbf16>)
// CHECK: %[[KB:.*]] = attn.compress %[[K]] {block = 512 : i64, stride = 512 : i64} : tensor<1x8x4096x64xbf16> -> tensor<1x8x8x64xbf16>
// CHECK: %[[IDX:.*]] = attn.block_topk %[[Q]], %[[KB]] {block_k = 512 : i64, block_q = 1 : i64, causal, include_current, k = 3 : i64}
// CHECK-SAME: -> tensor<1x8x4096x3xi32>
// CHECK: %[[O:.*]], %{{.*}} = attn.attention %[[Q]], %[[K]], %[[V]] blocks(%[[IDX]] : tensor<1x8x4096x3xi32>) {block_k = 512 : i64, block_q = 1 : i64, causal}
// CHECK: return %[[O]]
func.func @moba(%q: tensor<1x8x4096x64xbf16>, %k: tensor<1x8x4096x64xbf16>,
                %v: tensor<1x8x4096x64xbf16>) -> tensor<1x8x4096x64xbf16> {
  %kb = attn.compress %k {block = 512 : i64, stride = 512 : i64, pool = #attn.pool<mean>}
      : tensor<1x8x4096x64xbf16> -> tensor<1x8x8x64xbf16>
  %idx = attn.block_topk %q, %kb
      {block_q = 1 : i64, block_k = 512 : i64, k = 3 : i64, causal, include_current}
      : tensor<1x8x4096x64xbf16>, tensor<1x8x8x64xbf16> -> tensor<1x8x4096x3xi32>
  %o, %lse = attn.attention %q, %k, %v blocks(%idx : tensor<1x8x4096x3xi32>)
      {causal, block_q = 1 : i64, block_k = 512 : i64}
      : tensor<1x8x4096x64xbf16>, tensor<1x8x4096x64xbf16>, tensor<1x8x4096x64xbf16>
      -> tensor<1x8x4096x64xbf16>, tensor<1x8x4096xf32>
  return %o : tensor<1x8x4096x64xbf16>
}
