// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// Seed: FlashAttention-style causal softmax attention with a sliding window of 256 keys
// (keep i - 256 < j <= i, SEMANTICS §1), grouped-query heads (16 query heads over 4
// key/value heads), bf16 inputs, dynamic batch and sequence length.

// CHECK-LABEL: func.func @softmax_causal_window
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<?x16x?x128xbf16>, %[[K:[^:]*]]: tensor<?x4x?x128xbf16>, %[[V:[^:]*]]: tensor<?x4x?x128xbf16>)
// CHECK: %[[O:.*]], %[[L:.*]] = attn.attention %[[Q]], %[[K]], %[[V]] {causal, window = 256 : i64}
// CHECK-SAME: -> tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>
// CHECK: return %[[O]], %[[L]]
func.func @softmax_causal_window(%q: tensor<?x16x?x128xbf16>, %k: tensor<?x4x?x128xbf16>,
                                 %v: tensor<?x4x?x128xbf16>)
    -> (tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v {causal, window = 256 : i64}
      : tensor<?x16x?x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>
      -> tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>
  return %o, %lse : tensor<?x16x?x128xbf16>, tensor<?x16x?xf32>
}
