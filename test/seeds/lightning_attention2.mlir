// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// Seed: Lightning Attention-2 (SEMANTICS §2): O = [(Q Kᵀ) ⊙ M] V with M_ts = λ_h^(t-s)
// for t >= s; no softmax, no scale, no normaliser. The per-head decay is
// λ_h = exp(-s_h) with the ALiBi slopes s_h = 2^(-8(h+1)/H), H = 8. The prefill's final
// state then feeds one recurrent decode step (S_t = λ S_{t-1} + k_tᵀ v_t, o_t = q_t S_t).

// CHECK-LABEL: func.func @lightning_attention2
// CHECK: %[[LAM:.*]] = arith.constant dense<[0.60653{{[0-9]*}}, {{.*}}, 0.99610{{[0-9]*}}]> : tensor<8xf32>
// CHECK: %[[O:.*]], %[[S:.*]] = attn.linear_attention %{{.*}}, %{{.*}}, %{{.*}} decay(%[[LAM]] : tensor<8xf32>) {causal}
// CHECK-SAME: -> tensor<2x8x?x128xbf16>, tensor<2x8x128x128xf32>
// CHECK: %[[OT:.*]], %[[ST:.*]] = attn.linear_decode %{{.*}}, %{{.*}}, %{{.*}}, %[[S]] decay(%[[LAM]] : tensor<8xf32>)
// CHECK: return %[[O]], %[[OT]], %[[ST]]
func.func @lightning_attention2(%q: tensor<2x8x?x128xbf16>, %k: tensor<2x8x?x128xbf16>,
                                %v: tensor<2x8x?x128xbf16>, %qt: tensor<2x8x1x128xbf16>,
                                %kt: tensor<2x8x1x128xbf16>, %vt: tensor<2x8x1x128xbf16>)
    -> (tensor<2x8x?x128xbf16>, tensor<2x8x1x128xbf16>, tensor<2x8x128x128xf32>) {
  %lam = arith.constant dense<[6.06530660e-01, 7.78800783e-01, 8.82496903e-01,
                               9.39413063e-01, 9.69233234e-01, 9.84496437e-01,
                               9.92217938e-01, 9.96101369e-01]> : tensor<8xf32>
  %o, %state = attn.linear_attention %q, %k, %v decay(%lam : tensor<8xf32>) {causal}
      : tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>
      -> tensor<2x8x?x128xbf16>, tensor<2x8x128x128xf32>
  %ot, %next = attn.linear_decode %qt, %kt, %vt, %state decay(%lam : tensor<8xf32>)
      : tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16>, tensor<2x8x1x128xbf16>,
        tensor<2x8x128x128xf32> -> tensor<2x8x1x128xbf16>, tensor<2x8x128x128xf32>
  return %o, %ot, %next
      : tensor<2x8x?x128xbf16>, tensor<2x8x1x128xbf16>, tensor<2x8x128x128xf32>
}
