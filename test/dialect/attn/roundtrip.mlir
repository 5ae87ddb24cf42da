// RUN: tessera-opt %s -split-input-file | tessera-opt -split-input-file | FileCheck %s
// Every attn op parses, verifies and prints back to a form that parses again.

// CHECK-LABEL: func.func @attention_plain
// CHECK: %[[O:.*]], %[[L:.*]] = attn.attention %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK-SAME: -> tensor<2x8x128x64xf32>, tensor<2x8x128xf32>
// CHECK: return %[[O]], %[[L]]
func.func @attention_plain(%q: tensor<2x8x128x64xf32>, %k: tensor<2x8x256x64xf32>,
                           %v: tensor<2x8x256x64xf32>)
    -> (tensor<2x8x128x64xf32>, tensor<2x8x128xf32>) {
  %o, %l = attn.attention %q, %k, %v
      : tensor<2x8x128x64xf32>, tensor<2x8x256x64xf32>, tensor<2x8x256x64xf32>
      -> tensor<2x8x128x64xf32>, tensor<2x8x128xf32>
  return %o, %l : tensor<2x8x128x64xf32>, tensor<2x8x128xf32>
}

// -----

// CHECK-LABEL: func.func @attention_gqa_causal_window_dynamic
// CHECK: attn.attention
// CHECK-SAME: {causal, scale = 1.250000e-01 : f32, window = 256 : i64}
// CHECK-SAME: tensor<?x16x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x32xbf16>
// CHECK-SAME: -> tensor<?x16x?x32xbf16>, tensor<?x16x?xf32>
func.func @attention_gqa_causal_window_dynamic(
    %q: tensor<?x16x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x32xbf16>)
    -> tensor<?x16x?x32xbf16> {
  %o, %l = attn.attention %q, %k, %v {causal, window = 256 : i64, scale = 0.125 : f32}
      : tensor<?x16x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x32xbf16>
      -> tensor<?x16x?x32xbf16>, tensor<?x16x?xf32>
  return %o : tensor<?x16x?x32xbf16>
}

// -----

// Softcapping score_mod, and a document mask reading a captured 1-D i32 tensor.
// CHECK-LABEL: func.func @attention_mods
// CHECK-SAME: %[[DOC:[^:]*]]: tensor<1024xi32>
// CHECK: attn.attention
// CHECK: score_mod {
// CHECK: ^bb0(%[[S:.*]]: f32, %{{.*}}: i32, %{{.*}}: i32, %{{.*}}: i32, %{{.*}}: i32):
// CHECK: %[[T:.*]] = math.tanh
// CHECK: attn.yield %{{.*}} : f32
// CHECK: } mask_mod {
// CHECK: ^bb0(%{{.*}}: i32, %{{.*}}: i32, %[[I:.*]]: i32, %[[J:.*]]: i32):
// CHECK: %[[II:.*]] = arith.index_cast %[[I]] : i32 to index
// CHECK: %[[DI:.*]] = tensor.extract %[[DOC]][%[[II]]] : tensor<1024xi32>
// CHECK: %[[SAME:.*]] = arith.cmpi eq, %[[DI]], %{{.*}} : i32
// CHECK: attn.yield %[[SAME]] : i1
func.func @attention_mods(%q: tensor<1x8x1024x64xf16>, %k: tensor<1x8x1024x64xf16>,
                          %v: tensor<1x8x1024x64xf16>, %doc: tensor<1024xi32>)
    -> tensor<1x8x1024x64xf16> {
  %o, %l = attn.attention %q, %k, %v {causal}
      : tensor<1x8x1024x64xf16>, tensor<1x8x1024x64xf16>, tensor<1x8x1024x64xf16>
      -> tensor<1x8x1024x64xf16>, tensor<1x8x1024xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        %c = arith.constant 5.0e+01 : f32
        %t = arith.divf %s, %c : f32
        %u = math.tanh %t : f32
        %r = arith.mulf %u, %c : f32
        attn.yield %r : f32
      } mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %ii = arith.index_cast %i : i32 to index
        %jj = arith.index_cast %j : i32 to index
        %di = tensor.extract %doc[%ii] : tensor<1024xi32>
        %dj = tensor.extract %doc[%jj] : tensor<1024xi32>
        %same = arith.cmpi eq, %di, %dj : i32
        attn.yield %same : i1
      }
  return %o : tensor<1x8x1024x64xf16>
}

// -----

// CHECK-LABEL: func.func @attention_blocks
// CHECK-SAME: %[[IDX:[^:]*]]: tensor<1x1x16x4xi32>
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} blocks(%[[IDX]] : tensor<1x1x16x4xi32>)
// CHECK-SAME: block_k = 64 : i64, block_q = 64 : i64
func.func @attention_blocks(%q: tensor<1x8x1024x64xf32>, %k: tensor<1x8x1024x64xf32>,
                            %v: tensor<1x8x1024x64xf32>, %idx: tensor<1x1x16x4xi32>)
    -> tensor<1x8x1024x64xf32> {
  %o, %l = attn.attention %q, %k, %v blocks(%idx : tensor<1x1x16x4xi32>)
      {block_q = 64 : i64, block_k = 64 : i64}
      : tensor<1x8x1024x64xf32>, tensor<1x8x1024x64xf32>, tensor<1x8x1024x64xf32>
      -> tensor<1x8x1024x64xf32>, tensor<1x8x1024xf32>
  return %o : tensor<1x8x1024x64xf32>
}

// -----

// CHECK-LABEL: func.func @merge
// CHECK: %[[O:.*]], %[[L:.*]] = attn.merge %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<1x8x?x64xf32>, tensor<1x8x?xf32>
// CHECK: return %[[O]], %[[L]]
func.func @merge(%oa: tensor<1x8x?x64xf32>, %la: tensor<1x8x?xf32>,
                 %ob: tensor<1x8x?x64xf32>, %lb: tensor<1x8x?xf32>)
    -> (tensor<1x8x?x64xf32>, tensor<1x8x?xf32>) {
  %o, %l = attn.merge %oa, %la, %ob, %lb : tensor<1x8x?x64xf32>, tensor<1x8x?xf32>
  return %o, %l : tensor<1x8x?x64xf32>, tensor<1x8x?xf32>
}

// -----

// CHECK-LABEL: func.func @linear_plain
// CHECK: %[[O:.*]], %[[S:.*]] = attn.linear_attention %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x8x?x64xf32>
// CHECK-NOT: feature_map
// CHECK: return %[[O]], %[[S]]
func.func @linear_plain(%q: tensor<2x8x?x64xf32>, %k: tensor<2x8x?x64xf32>,
                        %v: tensor<2x8x?x32xf32>)
    -> (tensor<2x8x?x32xf32>, tensor<2x8x64x32xf32>) {
  %o, %s = attn.linear_attention %q, %k, %v
      : tensor<2x8x?x64xf32>, tensor<2x8x?x64xf32>, tensor<2x8x?x32xf32>
      -> tensor<2x8x?x32xf32>, tensor<2x8x64x32xf32>
  return %o, %s : tensor<2x8x?x32xf32>, tensor<2x8x64x32xf32>
}

// -----

// CHECK-LABEL: func.func @linear_feature_map_normalize
// CHECK: attn.linear_attention
// CHECK-SAME: {causal, feature_map = #attn.feature_map<elu_plus_one>, normalize, scale = 1.250000e-01 : f32}
func.func @linear_feature_map_normalize(%q: tensor<1x4x128x64xbf16>,
    %k: tensor<1x2x128x64xbf16>, %v: tensor<1x2x128x64xbf16>) -> tensor<1x4x128x64xbf16> {
  %o, %s = attn.linear_attention %q, %k, %v
      {feature_map = #attn.feature_map<elu_plus_one>, causal, normalize, scale = 0.125 : f32}
      : tensor<1x4x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>
      -> tensor<1x4x128x64xbf16>, tensor<1x4x64x64xf32>
  return %o : tensor<1x4x128x64xbf16>
}

// -----

// CHECK-LABEL: func.func @linear_decay_state
// CHECK-SAME: %[[LAM:[^:]*]]: tensor<8xf32>, %[[S0:[^:]*]]: tensor<2x8x64x64xf32>
// CHECK: attn.linear_attention %{{.*}}, %{{.*}}, %{{.*}} decay(%[[LAM]] : tensor<8xf32>) initial_state(%[[S0]] : tensor<2x8x64x64xf32>) {causal, feature_map = #attn.feature_map<relu>}
func.func @linear_decay_state(%q: tensor<2x8x?x64xbf16>, %k: tensor<2x8x?x64xbf16>,
    %v: tensor<2x8x?x64xbf16>, %lam: tensor<8xf32>, %s0: tensor<2x8x64x64xf32>)
    -> tensor<2x8x64x64xf32> {
  %o, %s = attn.linear_attention %q, %k, %v decay(%lam : tensor<8xf32>)
      initial_state(%s0 : tensor<2x8x64x64xf32>) {causal, feature_map = #attn.feature_map<relu>}
      : tensor<2x8x?x64xbf16>, tensor<2x8x?x64xbf16>, tensor<2x8x?x64xbf16>
      -> tensor<2x8x?x64xbf16>, tensor<2x8x64x64xf32>
  return %s : tensor<2x8x64x64xf32>
}

// -----

// A constant decay inside (0, 1] is accepted; only the initial state is optional here.
// CHECK-LABEL: func.func @linear_constant_decay_only_state
// CHECK: %[[LAM:.*]] = arith.constant dense<[
// CHECK: attn.linear_attention %{{.*}}, %{{.*}}, %{{.*}} decay(%[[LAM]] : tensor<2xf32>) {causal}
// CHECK: attn.linear_attention %{{.*}}, %{{.*}}, %{{.*}} initial_state(%{{.*}} : tensor<1x2x16x16xf32>) :
func.func @linear_constant_decay_only_state(%q: tensor<1x2x32x16xf32>,
    %s0: tensor<1x2x16x16xf32>) -> (tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>) {
  %lam = arith.constant dense<[0.5, 1.0]> : tensor<2xf32>
  %o1, %s1 = attn.linear_attention %q, %q, %q decay(%lam : tensor<2xf32>) {causal}
      : tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>
      -> tensor<1x2x32x16xf32>, tensor<1x2x16x16xf32>
  %o2, %s2 = attn.linear_attention %q, %q, %q initial_state(%s0 : tensor<1x2x16x16xf32>)
      : tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>
      -> tensor<1x2x32x16xf32>, tensor<1x2x16x16xf32>
  return %o1, %o2 : tensor<1x2x32x16xf32>, tensor<1x2x32x16xf32>
}

// -----

// CHECK-LABEL: func.func @linear_decode
// CHECK: %[[O:.*]], %[[S:.*]] = attn.linear_decode %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<16xf32>) :
// CHECK-SAME: -> tensor<2x16x1x128xbf16>, tensor<2x16x128x128xf32>
// CHECK: attn.linear_decode %{{.*}}, %{{.*}}, %{{.*}}, %[[S]] {feature_map = #attn.feature_map<elu_plus_one>, scale = 5.000000e-01 : f32} :
func.func @linear_decode(%q: tensor<2x16x1x128xbf16>, %k: tensor<2x4x1x128xbf16>,
    %v: tensor<2x4x1x128xbf16>, %s0: tensor<2x16x128x128xf32>, %lam: tensor<16xf32>)
    -> tensor<2x16x128x128xf32> {
  %o, %s1 = attn.linear_decode %q, %k, %v, %s0 decay(%lam : tensor<16xf32>)
      : tensor<2x16x1x128xbf16>, tensor<2x4x1x128xbf16>, tensor<2x4x1x128xbf16>,
        tensor<2x16x128x128xf32> -> tensor<2x16x1x128xbf16>, tensor<2x16x128x128xf32>
  %o2, %s2 = attn.linear_decode %q, %k, %v, %s1
      {feature_map = #attn.feature_map<elu_plus_one>, scale = 0.5 : f32}
      : tensor<2x16x1x128xbf16>, tensor<2x4x1x128xbf16>, tensor<2x4x1x128xbf16>,
        tensor<2x16x128x128xf32> -> tensor<2x16x1x128xbf16>, tensor<2x16x128x128xf32>
  return %s2 : tensor<2x16x128x128xf32>
}

// -----

// CHECK-LABEL: func.func @compress
// CHECK: attn.compress %{{.*}} {block = 32 : i64, stride = 16 : i64} : tensor<1x8x1024x64xbf16> -> tensor<1x8x63x64xbf16>
// CHECK: attn.compress %{{.*}} {block = 64 : i64, stride = 64 : i64} : tensor<?x8x?x64xf32> -> tensor<?x8x?x64xf32>
func.func @compress(%k: tensor<1x8x1024x64xbf16>, %v: tensor<?x8x?x64xf32>)
    -> (tensor<1x8x63x64xbf16>, tensor<?x8x?x64xf32>) {
  %kc = attn.compress %k {block = 32 : i64, stride = 16 : i64, pool = #attn.pool<mean>}
      : tensor<1x8x1024x64xbf16> -> tensor<1x8x63x64xbf16>
  %vc = attn.compress %v {block = 64 : i64, stride = 64 : i64}
      : tensor<?x8x?x64xf32> -> tensor<?x8x?x64xf32>
  return %kc, %vc : tensor<1x8x63x64xbf16>, tensor<?x8x?x64xf32>
}

// -----

// CHECK-LABEL: func.func @block_topk
// CHECK: %[[I1:.*]] = attn.block_topk %{{.*}}, %{{.*}} {block_k = 512 : i64, block_q = 1 : i64, causal, include_current, k = 3 : i64} : tensor<1x8x4096x64xbf16>, tensor<1x8x8x64xbf16> -> tensor<1x8x4096x3xi32>
// CHECK: %[[I2:.*]] = attn.block_topk %{{.*}}, %{{.*}} {block_k = 64 : i64, block_q = 64 : i64, group_heads, k = 16 : i64, scale = 1.250000e-01 : f32, score = #attn.block_score<softmax>} : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16> -> tensor<1x8x?x16xi32>
func.func @block_topk(%q: tensor<1x8x4096x64xbf16>, %kb: tensor<1x8x8x64xbf16>,
                      %q2: tensor<1x8x?x64xbf16>, %kb2: tensor<1x2x?x64xbf16>)
    -> (tensor<1x8x4096x3xi32>, tensor<1x8x?x16xi32>) {
  %i1 = attn.block_topk %q, %kb
      {block_q = 1 : i64, block_k = 512 : i64, k = 3 : i64, causal, include_current}
      : tensor<1x8x4096x64xbf16>, tensor<1x8x8x64xbf16> -> tensor<1x8x4096x3xi32>
  %i2 = attn.block_topk %q2, %kb2
      {block_q = 64 : i64, block_k = 64 : i64, k = 16 : i64, group_heads,
       score = #attn.block_score<softmax>, scale = 0.125 : f32}
      : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16> -> tensor<1x8x?x16xi32>
  return %i1, %i2 : tensor<1x8x4096x3xi32>, tensor<1x8x?x16xi32>
}

// -----

// CHECK-LABEL: func.func @lsh_sort_gather_scatter
// CHECK: %[[P:.*]] = attn.lsh_sort %{{.*}}, %{{.*}} : tensor<1x8x?x64xf32>, tensor<64x7xf32> -> tensor<1x8x?xi32>
// CHECK: %[[XS:.*]] = attn.gather_rows %{{.*}}[%[[P]]] : tensor<1x8x?x64xf32>, tensor<1x8x?xi32> -> tensor<1x8x?x64xf32>
// CHECK: attn.gather_rows %{{.*}}[%{{.*}}] : tensor<1x8x?x64xf32>, tensor<1x1x256xi32> -> tensor<1x8x256x64xf32>
// CHECK: attn.gather_rows %{{.*}}[%{{.*}}] : tensor<1x8x?x64xf32>, tensor<256xi32> -> tensor<1x8x256x64xf32>
// CHECK: attn.scatter_rows %[[XS]][%[[P]]] : tensor<1x8x?x64xf32>, tensor<1x8x?xi32> -> tensor<1x8x?x64xf32>
// CHECK: attn.scatter_rows %{{.*}}[%[[P]]] : tensor<1x8x?xf32>, tensor<1x8x?xi32> -> tensor<1x8x?xf32>
func.func @lsh_sort_gather_scatter(%x: tensor<1x8x?x64xf32>, %r: tensor<64x7xf32>,
                                   %j: tensor<1x1x256xi32>, %l: tensor<1x8x?xf32>,
                                   %jflat: tensor<256xi32>)
    -> (tensor<1x8x?x64xf32>, tensor<1x8x256x64xf32>, tensor<1x8x?xf32>, tensor<1x8x256x64xf32>) {
  %p = attn.lsh_sort %x, %r : tensor<1x8x?x64xf32>, tensor<64x7xf32> -> tensor<1x8x?xi32>
  %xs = attn.gather_rows %x[%p] : tensor<1x8x?x64xf32>, tensor<1x8x?xi32> -> tensor<1x8x?x64xf32>
  %xj = attn.gather_rows %x[%j] : tensor<1x8x?x64xf32>, tensor<1x1x256xi32> -> tensor<1x8x256x64xf32>
  %xf = attn.gather_rows %x[%jflat] : tensor<1x8x?x64xf32>, tensor<256xi32> -> tensor<1x8x256x64xf32>
  %xu = attn.scatter_rows %xs[%p] : tensor<1x8x?x64xf32>, tensor<1x8x?xi32> -> tensor<1x8x?x64xf32>
  %lu = attn.scatter_rows %l[%p] : tensor<1x8x?xf32>, tensor<1x8x?xi32> -> tensor<1x8x?xf32>
  return %xu, %xj, %lu, %xf
      : tensor<1x8x?x64xf32>, tensor<1x8x256x64xf32>, tensor<1x8x?xf32>, tensor<1x8x256x64xf32>
}

// -----

// CHECK-LABEL: func.func @gate
// CHECK: %[[O:.*]] = attn.gate %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<1x8x?x3xf32>, tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xbf16>
// CHECK: attn.gate %{{.*}}, %[[O]] : tensor<1x8x?x1xf32>, tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xbf16>
func.func @gate(%g: tensor<1x8x?x3xf32>, %a: tensor<1x8x?x64xbf16>, %b: tensor<1x8x?x64xbf16>,
                %c: tensor<1x8x?x64xbf16>, %g1: tensor<1x8x?x1xf32>) -> tensor<1x8x?x64xbf16> {
  %o = attn.gate %g, %a, %b, %c : tensor<1x8x?x3xf32>, tensor<1x8x?x64xbf16>,
      tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xbf16>
  %o1 = attn.gate %g1, %o : tensor<1x8x?x1xf32>, tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xbf16>
  return %o1 : tensor<1x8x?x64xbf16>
}

// -----

// CHECK-LABEL: func.func @linear_attention_grad
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = attn.linear_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} decay(%{{.*}} : tensor<4xf32>) {causal, feature_map = #attn.feature_map<elu_plus_one>}
func.func @linear_attention_grad(%q: tensor<1x4x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>, %do: tensor<1x4x?x64xf32>, %lam: tensor<4xf32>)
    -> (tensor<1x4x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>) {
  %dq, %dk, %dv = attn.linear_attention_grad %q, %k, %v, %do decay(%lam : tensor<4xf32>) {causal, feature_map = #attn.feature_map<elu_plus_one>}
      : tensor<1x4x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x4x?x64xf32> -> tensor<1x4x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %dq, %dk, %dv : tensor<1x4x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
}

// -----

// CHECK-LABEL: func.func @attention_grad_mods
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = attn.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {causal, window = 32 : i64}
// CHECK-SAME: tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>, tensor<?x8x?x32xf32>, tensor<?x8x?xf32> score_mod
// CHECK: math.tanh
// CHECK: mask_mod
// CHECK: return %[[DQ]], %[[DK]], %[[DV]]
func.func @attention_grad_mods(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x32xf32>,
    %o: tensor<?x8x?x32xf32>, %l: tensor<?x8x?xf32>, %do: tensor<?x8x?x32xf32>)
    -> (tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %l, %do {causal, window = 32 : i64}
      : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>, tensor<?x8x?x32xf32>, tensor<?x8x?xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        %u = math.tanh %s : f32
        attn.yield %u : f32
      } mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %t = arith.cmpi sge, %i, %j : i32
        attn.yield %t : i1
      }
  return %dq, %dk, %dv : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x32xf32>
}

// -----

// CHECK-LABEL: func.func @attention_grad_blocks
// CHECK: attn.attention_grad {{.*}} blocks(%{{.*}} : tensor<1x1x2x4xi32>) {block_k = 64 : i64, block_q = 64 : i64, scale = 1.250000e-01 : f32}
func.func @attention_grad_blocks(%q: tensor<1x1x128x64xf32>, %o: tensor<1x1x128x64xf32>,
    %l: tensor<1x1x128xf32>, %idx: tensor<1x1x2x4xi32>)
    -> (tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %l, %o blocks(%idx : tensor<1x1x2x4xi32>)
      {block_q = 64 : i64, block_k = 64 : i64, scale = 0.125 : f32}
      : tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128xf32>
  return %dq, %dk, %dv : tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>
}

// -----

// CHECK-LABEL: func.func @attention_grad_table
// CHECK: %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} = attn.attention_grad {{.*}} table_grads(%arg2 : tensor<?x?xf32> -> tensor<?x?xf32>) {causal}
func.func @attention_grad_table(%q: tensor<?x2x?x64xf32>, %l: tensor<?x2x?xf32>, %bias: tensor<?x?xf32>)
    -> (tensor<?x2x?x64xf32>, tensor<?x?xf32>) {
  %dq, %dk, %dv, %dbias = attn.attention_grad %q, %q, %q, %q, %l, %q
      table_grads(%bias : tensor<?x?xf32> -> tensor<?x?xf32>) {causal}
      : tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        %hi = arith.index_cast %h : i32 to index
        %d = arith.subi %i, %j : i32
        %di = arith.index_cast %d : i32 to index
        %t = tensor.extract %bias[%hi, %di] : tensor<?x?xf32>
        %r = arith.addf %s, %t : f32
        attn.yield %r : f32
      }
  return %dq, %dbias : tensor<?x2x?x64xf32>, tensor<?x?xf32>
}
