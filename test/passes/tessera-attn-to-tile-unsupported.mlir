// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile -verify-diagnostics

// Block lists whose blocks do not tile by the config fail with a located error.
func.func @blocks(%q: tensor<1x1x128x64xf32>, %k: tensor<1x1x128x64xf32>, %v: tensor<1x1x128x64xf32>, %idx: tensor<1x1x3x2xi32>)
    -> (tensor<1x1x128x64xf32>, tensor<1x1x128xf32>) {
  // expected-error @+1 {{block_q (48) must be 1 or a multiple of the config's block_m (64) and block_k (64) a multiple of its block_n (64)}}
  %o, %l = attn.attention %q, %k, %v blocks(%idx : tensor<1x1x3x2xi32>) {block_q = 48 : i64, block_k = 64 : i64} : tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32> -> tensor<1x1x128x64xf32>, tensor<1x1x128xf32>
  return %o, %l : tensor<1x1x128x64xf32>, tensor<1x1x128xf32>
}

// -----

func.func @passthrough(%q: tensor<1x1x8x64xf32>, %k: tensor<1x1x8x64xf32>, %v: tensor<1x1x8x64xf32>)
    -> (tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32> -> tensor<1x1x8x64xf32>, tensor<1x1x8xf32>
  // expected-error @+1 {{returning an argument unchanged is not supported}}
  return %q, %o, %l : tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8xf32>
}

// -----

// The counting sort keeps one tile column per bucket: at most 2^10 buckets.
func.func @lsh_bits(%x: tensor<1x1x128x64xf32>, %r: tensor<64x11xf32>) -> tensor<1x1x128xi32> {
  // expected-error @+1 {{sorts by at most 10 hash bits, got 11}}
  %p = attn.lsh_sort %x, %r : tensor<1x1x128x64xf32>, tensor<64x11xf32> -> tensor<1x1x128xi32>
  return %p : tensor<1x1x128xi32>
}

// -----

// The backward differentiates score_mod; an op without a derivative rule is named.
func.func @grad_no_derivative(%q: tensor<1x1x8x64xf32>, %l: tensor<1x1x8xf32>)
    -> (tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q
      : tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        // expected-error @+1 {{score_mod: the compiler cannot differentiate 'math.atan' with respect to the score (no derivative rule)}}
        %a = math.atan %s : f32
        attn.yield %a : f32
      }
  return %dq, %dk, %dv : tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>
}

// -----

func.func @grad_blocks(%q: tensor<1x1x128x64xf32>, %l: tensor<1x1x128xf32>, %idx: tensor<1x1x3x2xi32>)
    -> (tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>) {
  // expected-error @+1 {{block_q (48) must be 1 or a multiple of the config's block_m (64) and block_k (64) a multiple of its block_n (64)}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q blocks(%idx : tensor<1x1x3x2xi32>) {block_q = 48 : i64, block_k = 64 : i64}
      : tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128xf32>
  return %dq, %dk, %dv : tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>
}
