// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// Seed: NSA (SEMANTICS §5) in fla's configuration: mean-pooled compression with
// l = d = 64, selection of n = 16 blocks of l' = 64 keys ranked by the compression
// branch's attention probabilities summed over each GQA group (16 query heads share 1
// key/value head), a sliding window of w = 512, and per-token gates given as input.
//   o_t = g_cmp Attn(q_t, K_cmp, V_cmp) + g_slc Attn(q_t, K_slc, V_slc) + g_win Attn(q_t, window)

// CHECK-LABEL: func.func @nsa
// CHECK: %[[KC:.*]] = attn.compress %{{.*}} {block = 64 : i64, stride = 64 : i64} : tensor<1x1x4096x64xbf16> -> tensor<1x1x64x64xbf16>
// CHECK: %[[VC:.*]] = attn.compress %{{.*}} {block = 64 : i64, stride = 64 : i64}
// CHECK: %[[OCMP:.*]], %{{.*}} = attn.attention %{{.*}}, %[[KC]], %[[VC]] :
// CHECK: mask_mod {
// CHECK: attn.yield %{{.*}} : i1
// CHECK: %[[IDX:.*]] = attn.block_topk %{{.*}}, %[[KC]] {block_k = 64 : i64, block_q = 1 : i64, causal, group_heads, include_current, k = 16 : i64, score = #attn.block_score<softmax>}
// CHECK-SAME: -> tensor<1x16x4096x16xi32>
// CHECK: %[[OSLC:.*]], %{{.*}} = attn.attention %{{.*}}, %{{.*}}, %{{.*}} blocks(%[[IDX]] : tensor<1x16x4096x16xi32>) {block_k = 64 : i64, block_q = 1 : i64, causal}
// CHECK: %[[OWIN:.*]], %{{.*}} = attn.attention %{{.*}}, %{{.*}}, %{{.*}} {causal, window = 512 : i64}
// CHECK: %[[O:.*]] = attn.gate %{{.*}}, %[[OCMP]], %[[OSLC]], %[[OWIN]] : tensor<1x16x4096x3xf32>
// CHECK: return %[[O]]
func.func @nsa(%q: tensor<1x16x4096x64xbf16>, %k: tensor<1x1x4096x64xbf16>,
               %v: tensor<1x1x4096x64xbf16>, %g: tensor<1x16x4096x3xf32>)
    -> tensor<1x16x4096x64xbf16> {
  // Compression branch: compressed block j covers keys [64 j, 64 j + 64) and is visible
  // to query i only once it is complete: 64 j + 63 <= i.
  %kc = attn.compress %k {block = 64 : i64, stride = 64 : i64}
      : tensor<1x1x4096x64xbf16> -> tensor<1x1x64x64xbf16>
  %vc = attn.compress %v {block = 64 : i64, stride = 64 : i64}
      : tensor<1x1x4096x64xbf16> -> tensor<1x1x64x64xbf16>
  %ocmp, %lcmp = attn.attention %q, %kc, %vc
      : tensor<1x16x4096x64xbf16>, tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16>
      -> tensor<1x16x4096x64xbf16>, tensor<1x16x4096xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %c64 = arith.constant 64 : i32
        %c63 = arith.constant 63 : i32
        %start = arith.muli %j, %c64 : i32
        %last = arith.addi %start, %c63 : i32
        %visible = arith.cmpi sle, %last, %i : i32
        attn.yield %visible : i1
      }
  // Selection branch: the group's 16 best blocks (current block forced), token-causal.
  %idx = attn.block_topk %q, %kc
      {block_q = 1 : i64, block_k = 64 : i64, k = 16 : i64, causal, include_current,
       group_heads, score = #attn.block_score<softmax>}
      : tensor<1x16x4096x64xbf16>, tensor<1x1x64x64xbf16> -> tensor<1x16x4096x16xi32>
  %oslc, %lslc = attn.attention %q, %k, %v blocks(%idx : tensor<1x16x4096x16xi32>)
      {causal, block_q = 1 : i64, block_k = 64 : i64}
      : tensor<1x16x4096x64xbf16>, tensor<1x1x4096x64xbf16>, tensor<1x1x4096x64xbf16>
      -> tensor<1x16x4096x64xbf16>, tensor<1x16x4096xf32>
  // Window branch: keys in [i - 511, i].
  %owin, %lwin = attn.attention %q, %k, %v {causal, window = 512 : i64}
      : tensor<1x16x4096x64xbf16>, tensor<1x1x4096x64xbf16>, tensor<1x1x4096x64xbf16>
      -> tensor<1x16x4096x64xbf16>, tensor<1x16x4096xf32>
  %o = attn.gate %g, %ocmp, %oslc, %owin
      : tensor<1x16x4096x3xf32>, tensor<1x16x4096x64xbf16>, tensor<1x16x4096x64xbf16>,
        tensor<1x16x4096x64xbf16> -> tensor<1x16x4096x64xbf16>
  return %o : tensor<1x16x4096x64xbf16>
}
