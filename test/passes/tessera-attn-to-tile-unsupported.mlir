// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile -verify-diagnostics

// Ops without a tile lowering yet fail with a located error, never a crash.
func.func @blocks(%q: tensor<1x1x128x64xf32>, %k: tensor<1x1x128x64xf32>, %v: tensor<1x1x128x64xf32>, %idx: tensor<1x1x2x2xi32>)
    -> (tensor<1x1x128x64xf32>, tensor<1x1x128xf32>) {
  // expected-error @+1 {{block_indices are not lowered to a tile program yet}}
  %o, %l = attn.attention %q, %k, %v blocks(%idx : tensor<1x1x2x2xi32>) {block_q = 64 : i64, block_k = 64 : i64} : tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32>, tensor<1x1x128x64xf32> -> tensor<1x1x128x64xf32>, tensor<1x1x128xf32>
  return %o, %l : tensor<1x1x128x64xf32>, tensor<1x1x128xf32>
}

// -----

func.func @passthrough(%q: tensor<1x1x8x64xf32>, %k: tensor<1x1x8x64xf32>, %v: tensor<1x1x8x64xf32>)
    -> (tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32> -> tensor<1x1x8x64xf32>, tensor<1x1x8xf32>
  // expected-error @+1 {{returning an argument unchanged is not supported}}
  return %q, %o, %l : tensor<1x1x8x64xf32>, tensor<1x1x8x64xf32>, tensor<1x1x8xf32>
}
