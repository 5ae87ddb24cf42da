// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile -verify-diagnostics

// Block lists whose blocks do not tile by the config fail with a located error.
func.func @blocks(%q: tensor<1x1x128x64xf32>, %k: tensor<1x1x128x64xf32>, %v: tensor<1x1x128x64xf32>, %idx: tensor<1x1x3x2xi32>)
    -> (tensor<1x1x128x64xf32>, tensor<1x1x128xf32>) {
  // expected-error @+1 {{block_q (48) and block_k (64) must be multiples of the config's block_m (64) and block_n (64)}}
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
