// RUN: tessera-opt %s -split-input-file -verify-diagnostics
// One case per verifier diagnostic of the attn dialect.

//===----------------------------------------------------------------------===//
// attn.attention
//===----------------------------------------------------------------------===//

func.func @attention_query_rank(%q: tensor<8x128x64xf32>, %k: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{query must have rank 4, got 'tensor<8x128x64xf32>'}}
  %o, %l = attn.attention %q, %k, %k : tensor<8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_lse_rank(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{lse must have rank 3}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128x1xf32>
  return
}

// -----

func.func @attention_element_type(%q: tensor<1x8x128x64xi8>) {
  // expected-error @+1 {{query element type must be f32, f16 or bf16, got 'i8'}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xi8>, tensor<1x8x128x64xi8>,
      tensor<1x8x128x64xi8> -> tensor<1x8x128x64xi8>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_mixed_types(%q: tensor<1x8x128x64xf16>, %k: tensor<1x8x128x64xbf16>) {
  // expected-error @+1 {{query, key and value must share one element type}}
  %o, %l = attn.attention %q, %k, %k : tensor<1x8x128x64xf16>, tensor<1x8x128x64xbf16>,
      tensor<1x8x128x64xbf16> -> tensor<1x8x128x64xf16>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_output_type(%q: tensor<1x8x128x64xf16>) {
  // expected-error @+1 {{output element type must match the query's}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf16>, tensor<1x8x128x64xf16>,
      tensor<1x8x128x64xf16> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_lse_type(%q: tensor<1x8x128x64xf16>) {
  // expected-error @+1 {{lse element type must be f32}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf16>, tensor<1x8x128x64xf16>,
      tensor<1x8x128x64xf16> -> tensor<1x8x128x64xf16>, tensor<1x8x128xf16>
  return
}

// -----

func.func @attention_dynamic_head_dim(%q: tensor<1x8x128x?xf32>) {
  // expected-error @+1 {{head dims (query dim 3, value dim 3) must be static}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x?xf32>, tensor<1x8x128x?xf32>,
      tensor<1x8x128x?xf32> -> tensor<1x8x128x?xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<2x8x128x64xf32>, %k: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{batch of key mismatch: 2 vs 1}}
  %o, %l = attn.attention %q, %k, %k : tensor<2x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<2x8x128x64xf32>, tensor<2x8x128xf32>
  return
}

// -----

func.func @attention_kv_heads(%q: tensor<1x8x128x64xf32>, %k: tensor<1x4x128x64xf32>,
                              %v: tensor<1x2x128x64xf32>) {
  // expected-error @+1 {{key/value heads mismatch: 4 vs 2}}
  %o, %l = attn.attention %q, %k, %v : tensor<1x8x128x64xf32>, tensor<1x4x128x64xf32>,
      tensor<1x2x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_kv_length(%q: tensor<1x8x128x64xf32>, %k: tensor<1x8x128x64xf32>,
                               %v: tensor<1x8x64x64xf32>) {
  // expected-error @+1 {{key/value length mismatch: 128 vs 64}}
  %o, %l = attn.attention %q, %k, %v : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x64x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<1x8x128x64xf32>, %k: tensor<1x8x128x32xf32>) {
  // expected-error @+1 {{query/key head dim mismatch: 64 vs 32}}
  %o, %l = attn.attention %q, %k, %k : tensor<1x8x128x64xf32>, tensor<1x8x128x32xf32>,
      tensor<1x8x128x32xf32> -> tensor<1x8x128x32xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_gqa(%q: tensor<1x8x128x64xf32>, %k: tensor<1x3x128x64xf32>) {
  // expected-error @+1 {{query heads (8) must be a multiple of key/value heads (3)}}
  %o, %l = attn.attention %q, %k, %k : tensor<1x8x128x64xf32>, tensor<1x3x128x64xf32>,
      tensor<1x3x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_output_dim(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{output dim 2 mismatch: 64 vs 128}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x64x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_lse_dim(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{lse dim 1 mismatch: 4 vs 8}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x4x128xf32>
  return
}

// -----

func.func @attention_output_head_dim(%q: tensor<1x8x128x64xf32>, %v: tensor<1x8x128x32xf32>) {
  // expected-error @+1 {{output head dim mismatch: 64 vs 32}}
  %o, %l = attn.attention %q, %q, %v : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x32xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_scale(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{scale must be positive and finite, got 0}}
  %o, %l = attn.attention %q, %q, %q {scale = 0.0 : f32} : tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_window_size(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{window must be >= 1, got 0}}
  %o, %l = attn.attention %q, %q, %q {causal, window = 0 : i64} : tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_blocks_without_sizes(%q: tensor<1x8x128x64xf32>, %i: tensor<1x8x2x4xi32>) {
  // expected-error @+1 {{block_indices requires block_q and block_k, and they require it}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<1x8x2x4xi32>)
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_sizes_without_blocks(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{block_indices requires block_q and block_k, and they require it}}
  %o, %l = attn.attention %q, %q, %q {block_q = 64 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_blocks_batch(%q: tensor<1x8x128x64xf32>, %i: tensor<5x8x2x4xi32>) {
  // expected-error @+1 {{block_indices batch mismatch: 5 vs 1}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<5x8x2x4xi32>)
      {block_q = 64 : i64, block_k = 64 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_blocks_rank(%q: tensor<1x8x128x64xf32>, %i: tensor<8x2x4xi32>) {
  // expected-error @+1 {{block_indices must have rank 4}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<8x2x4xi32>)
      {block_q = 64 : i64, block_k = 64 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_blocks_type(%q: tensor<1x8x128x64xf32>, %i: tensor<1x8x2x4xi64>) {
  // expected-error @+1 {{block_indices element type must be i32}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<1x8x2x4xi64>)
      {block_q = 64 : i64, block_k = 64 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_block_size(%q: tensor<1x8x128x64xf32>, %i: tensor<1x8x2x4xi32>) {
  // expected-error @+1 {{block sizes must be >= 1, got 0}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<1x8x2x4xi32>)
      {block_q = 64 : i64, block_k = 0 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_blocks_heads(%q: tensor<1x8x128x64xf32>, %i: tensor<1x2x2x4xi32>) {
  // expected-error @+1 {{block_indices heads mismatch: 2 vs 8}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<1x2x2x4xi32>)
      {block_q = 64 : i64, block_k = 64 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_blocks_count(%q: tensor<1x8x128x64xf32>, %i: tensor<1x8x4x4xi32>) {
  // expected-error @+1 {{block_indices dim 2 must be ceil(Nq / block_q)}}
  %o, %l = attn.attention %q, %q, %q blocks(%i : tensor<1x8x4x4xi32>)
      {block_q = 64 : i64, block_k = 64 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @score_mod_blocks(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{score_mod must have exactly one block}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        cf.br ^bb1
      ^bb1:
        %c = arith.constant 0.0 : f32
        attn.yield %c : f32
      }
  return
}

// -----

func.func @score_mod_arity(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{score_mod must take 5 arguments}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f32):
        attn.yield %s : f32
      }
  return
}

// -----

func.func @score_mod_arg_type(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{score_mod argument #0 must be 'f32', got 'f16'}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f16, %b: i32, %h: i32, %i: i32, %j: i32):
        %c = arith.constant 0.0 : f32
        attn.yield %c : f32
      }
  return
}

// -----

func.func @mask_mod_arg_type(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{mask_mod argument #3 must be 'i32', got 'index'}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: index):
        %t = arith.constant true
        attn.yield %t : i1
      }
  return
}

// -----

func.func @mod_not_arith(%q: tensor<1x8x128x64xf32>) {
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        // expected-error @+1 {{is not allowed in score_mod: only scalar arith/math ops and tensor.extract}}
        %e = tensor.empty() : tensor<4xf32>
        attn.yield %s : f32
      }
  return
}

// -----

func.func @mod_not_scalar(%q: tensor<1x8x128x64xf32>) {
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        // expected-error @+1 {{in score_mod must produce a scalar}}
        %c = arith.constant dense<1.0> : tensor<4xf32>
        attn.yield %s : f32
      }
  return
}

// -----

func.func @mod_extract_i64(%q: tensor<1x8x128x64xf32>, %t: tensor<128x128xi64>) {
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %ii = arith.index_cast %i : i32 to index
        // expected-error @+1 {{in mask_mod: only i32 or f32 tensors defined outside may be read}}
        %x = tensor.extract %t[%ii, %ii] : tensor<128x128xi64>
        %z = arith.constant 0 : i64
        %c = arith.cmpi eq, %x, %z : i64
        attn.yield %c : i1
      }
  return
}

// -----

func.func @mod_no_yield(%q: tensor<1x8x128x64xf32>) {
  // expected-error @+1 {{score_mod must end with attn.yield}}
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        llvm.unreachable
      }
  return
}

// -----

func.func @mask_mod_yield_type(%q: tensor<1x8x128x64xf32>) {
  %o, %l = attn.attention %q, %q, %q : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        // expected-error @+1 {{in mask_mod must yield one 'i1'}}
        attn.yield %i : i32
      }
  return
}

// -----

func.func @yield_outside(%x: f32) {
  // expected-error @+1 {{expects parent op to be one of 'attn.attention, attn.attention_grad, attn.linear_attention'}}
  attn.yield %x : f32
}

//===----------------------------------------------------------------------===//
// attn.merge
//===----------------------------------------------------------------------===//

// -----

func.func @merge_rank(%o: tensor<8x?x64xf32>, %l: tensor<1x8x?xf32>) {
  // expected-error @+1 {{out_a must have rank 4}}
  %r, %s = attn.merge %o, %l, %o, %l : tensor<8x?x64xf32>, tensor<1x8x?xf32>
  return
}

// -----

func.func @merge_lse_rank(%o: tensor<1x8x?x64xf32>, %l: tensor<1x8x?x1xf32>) {
  // expected-error @+1 {{lse_a must have rank 3}}
  %r, %s = attn.merge %o, %l, %o, %l : tensor<1x8x?x64xf32>, tensor<1x8x?x1xf32>
  return
}

// -----

func.func @merge_lse_type(%o: tensor<1x8x?x64xf32>, %l: tensor<1x8x?xf16>) {
  // expected-error @+1 {{lse_a element type must be f32}}
  %r, %s = attn.merge %o, %l, %o, %l : tensor<1x8x?x64xf32>, tensor<1x8x?xf16>
  return
}

// -----

func.func @merge_lse_dim(%o: tensor<1x8x16x64xf32>, %l: tensor<1x8x32xf32>) {
  // expected-error @+1 {{lse dim 2 mismatch: 32 vs 16}}
  %r, %s = attn.merge %o, %l, %o, %l : tensor<1x8x16x64xf32>, tensor<1x8x32xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.linear_attention
//===----------------------------------------------------------------------===//

// -----

func.func @linear_rank(%q: tensor<8x?x64xf32>, %k: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{query must have rank 4}}
  %o, %s = attn.linear_attention %q, %k, %k : tensor<8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_element_type(%q: tensor<1x8x?x64xi32>) {
  // expected-error @+1 {{query element type must be f32, f16 or bf16, got 'i32'}}
  %o, %s = attn.linear_attention %q, %q, %q : tensor<1x8x?x64xi32>, tensor<1x8x?x64xi32>,
      tensor<1x8x?x64xi32> -> tensor<1x8x?x64xi32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_mixed_types(%q: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x64xbf16>) {
  // expected-error @+1 {{query, key and value must share one element type}}
  %o, %s = attn.linear_attention %q, %q, %v : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_output_type(%q: tensor<1x8x?x64xbf16>) {
  // expected-error @+1 {{output element type must match the query's}}
  %o, %s = attn.linear_attention %q, %q, %q : tensor<1x8x?x64xbf16>, tensor<1x8x?x64xbf16>,
      tensor<1x8x?x64xbf16> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_dynamic_head_dim(%q: tensor<1x8x?x?xf32>) {
  // expected-error @+1 {{head dims (query dim 3, value dim 3) must be static}}
  %o, %s = attn.linear_attention %q, %q, %q : tensor<1x8x?x?xf32>, tensor<1x8x?x?xf32>,
      tensor<1x8x?x?xf32> -> tensor<1x8x?x?xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_batch(%q: tensor<1x8x?x64xf32>, %v: tensor<2x8x?x64xf32>) {
  // expected-error @+1 {{batch of value mismatch: 1 vs 2}}
  %o, %s = attn.linear_attention %q, %q, %v : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<2x8x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_length(%q: tensor<1x8x128x64xf32>, %k: tensor<1x8x64x64xf32>) {
  // expected-error @+1 {{query/key length mismatch: 128 vs 64}}
  %o, %s = attn.linear_attention %q, %k, %k : tensor<1x8x128x64xf32>, tensor<1x8x64x64xf32>,
      tensor<1x8x64x64xf32> -> tensor<1x8x128x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_kv_heads(%q: tensor<1x8x?x64xf32>, %k: tensor<1x4x?x64xf32>,
                           %v: tensor<1x2x?x64xf32>) {
  // expected-error @+1 {{key/value heads mismatch: 4 vs 2}}
  %o, %s = attn.linear_attention %q, %k, %v : tensor<1x8x?x64xf32>, tensor<1x4x?x64xf32>,
      tensor<1x2x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_output_dim(%q: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{output dim 1 mismatch: 4 vs 8}}
  %o, %s = attn.linear_attention %q, %q, %q : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x64xf32> -> tensor<1x4x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_gqa(%q: tensor<1x8x?x64xf32>, %k: tensor<1x5x?x64xf32>) {
  // expected-error @+1 {{query heads (8) must be a multiple of key/value heads (5)}}
  %o, %s = attn.linear_attention %q, %k, %k : tensor<1x8x?x64xf32>, tensor<1x5x?x64xf32>,
      tensor<1x5x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_output_head_dim(%q: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x32xf32>) {
  // expected-error @+1 {{output head dim mismatch: 64 vs 32}}
  %o, %s = attn.linear_attention %q, %q, %v : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x32xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x32xf32>
  return
}

// -----

func.func @linear_scale(%q: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{scale must be positive and finite, got -1}}
  %o, %s = attn.linear_attention %q, %q, %q {scale = -1.0 : f32} : tensor<1x8x?x64xf32>,
      tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_state_type(%q: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{final_state element type must be f32}}
  %o, %s = attn.linear_attention %q, %q, %q : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xbf16>
  return
}

// -----

func.func @linear_state_rank(%q: tensor<1x8x?x64xf32>) {
  // expected-error @+1 {{final_state must have rank 4}}
  %o, %s = attn.linear_attention %q, %q, %q : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x64xf32> -> tensor<1x8x?x64xf32>, tensor<8x64x64xf32>
  return
}

// -----

func.func @linear_state_dim(%q: tensor<1x8x?x64xf32>, %v: tensor<1x8x?x32xf32>) {
  // expected-error @+1 {{final_state dim 3 mismatch: 64 vs 32}}
  %o, %s = attn.linear_attention %q, %q, %v : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>,
      tensor<1x8x?x32xf32> -> tensor<1x8x?x32xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_initial_state_dim(%q: tensor<1x8x?x64xf32>, %s0: tensor<1x4x64x64xf32>) {
  // expected-error @+1 {{initial_state dim 1 mismatch: 4 vs 8}}
  %o, %s = attn.linear_attention %q, %q, %q initial_state(%s0 : tensor<1x4x64x64xf32>)
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
      -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_decay_rank(%q: tensor<1x8x?x64xf32>, %d: tensor<1x8xf32>) {
  // expected-error @+1 {{decay must have rank 1}}
  %o, %s = attn.linear_attention %q, %q, %q decay(%d : tensor<1x8xf32>) {causal}
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
      -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_decay_type(%q: tensor<1x8x?x64xf32>, %d: tensor<8xf16>) {
  // expected-error @+1 {{decay element type must be f32}}
  %o, %s = attn.linear_attention %q, %q, %q decay(%d : tensor<8xf16>) {causal}
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
      -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_decay_heads(%q: tensor<1x8x?x64xf32>, %d: tensor<4xf32>) {
  // expected-error @+1 {{decay length and query heads mismatch: 4 vs 8}}
  %o, %s = attn.linear_attention %q, %q, %q decay(%d : tensor<4xf32>) {causal}
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
      -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_decay_values(%q: tensor<1x2x?x64xf32>) {
  %d = arith.constant dense<[0.5, 1.5]> : tensor<2xf32>
  // expected-error @+1 {{decay values must lie in (0, 1], got 1.5}}
  %o, %s = attn.linear_attention %q, %q, %q decay(%d : tensor<2xf32>) {causal}
      : tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
      -> tensor<1x2x?x64xf32>, tensor<1x2x64x64xf32>
  return
}

// -----

func.func @linear_decay_without_causal(%q: tensor<1x8x?x64xf32>, %d: tensor<8xf32>) {
  // expected-error @+1 {{decay requires causal}}
  %o, %s = attn.linear_attention %q, %q, %q decay(%d : tensor<8xf32>)
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
      -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @linear_normalize_state(%q: tensor<1x8x?x64xf32>, %s0: tensor<1x8x64x64xf32>) {
  // expected-error @+1 {{normalize cannot be combined with initial_state: the state carries no normaliser}}
  %o, %s = attn.linear_attention %q, %q, %q initial_state(%s0 : tensor<1x8x64x64xf32>)
      {causal, normalize}
      : tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>, tensor<1x8x?x64xf32>
      -> tensor<1x8x?x64xf32>, tensor<1x8x64x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.linear_decode
//===----------------------------------------------------------------------===//

// -----

func.func @decode_one_token(%q: tensor<1x8x2x64xf32>, %s0: tensor<1x8x64x64xf32>) {
  // expected-error @+1 {{decodes one token: query dim 2 must be 1, got 2}}
  %o, %s = attn.linear_decode %q, %q, %q, %s0 : tensor<1x8x2x64xf32>, tensor<1x8x2x64xf32>,
      tensor<1x8x2x64xf32>, tensor<1x8x64x64xf32> -> tensor<1x8x2x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @decode_state_dim(%q: tensor<1x8x1x64xf32>, %s0: tensor<1x8x32x64xf32>) {
  // expected-error @+1 {{state dim 2 mismatch: 32 vs 64}}
  %o, %s = attn.linear_decode %q, %q, %q, %s0 : tensor<1x8x1x64xf32>, tensor<1x8x1x64xf32>,
      tensor<1x8x1x64xf32>, tensor<1x8x32x64xf32> -> tensor<1x8x1x64xf32>, tensor<1x8x64x64xf32>
  return
}

// -----

func.func @decode_new_state_type(%q: tensor<1x8x1x64xf32>, %s0: tensor<1x8x64x64xf32>) {
  // expected-error @+1 {{new_state element type must be f32}}
  %o, %s = attn.linear_decode %q, %q, %q, %s0 : tensor<1x8x1x64xf32>, tensor<1x8x1x64xf32>,
      tensor<1x8x1x64xf32>, tensor<1x8x64x64xf32> -> tensor<1x8x1x64xf32>, tensor<1x8x64x64xf16>
  return
}

// -----

func.func @decode_decay_heads(%q: tensor<1x8x1x64xf32>, %s0: tensor<1x8x64x64xf32>,
                              %d: tensor<2xf32>) {
  // expected-error @+1 {{decay length and query heads mismatch: 2 vs 8}}
  %o, %s = attn.linear_decode %q, %q, %q, %s0 decay(%d : tensor<2xf32>)
      : tensor<1x8x1x64xf32>, tensor<1x8x1x64xf32>, tensor<1x8x1x64xf32>, tensor<1x8x64x64xf32>
      -> tensor<1x8x1x64xf32>, tensor<1x8x64x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.compress
//===----------------------------------------------------------------------===//

// -----

func.func @compress_rank(%k: tensor<8x1024x64xf32>) {
  // expected-error @+1 {{input must have rank 4}}
  %c = attn.compress %k {block = 64 : i64, stride = 64 : i64}
      : tensor<8x1024x64xf32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @compress_element_type(%k: tensor<1x8x1024x64xi32>) {
  // expected-error @+1 {{input element type must be f32, f16 or bf16, got 'i32'}}
  %c = attn.compress %k {block = 64 : i64, stride = 64 : i64}
      : tensor<1x8x1024x64xi32> -> tensor<1x8x16x64xi32>
  return
}

// -----

func.func @compress_block(%k: tensor<1x8x1024x64xf32>) {
  // expected-error @+1 {{block must be >= 1, got 0}}
  %c = attn.compress %k {block = 0 : i64, stride = 64 : i64}
      : tensor<1x8x1024x64xf32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @compress_stride(%k: tensor<1x8x1024x64xf32>) {
  // expected-error @+1 {{stride must be >= 1, got -2}}
  %c = attn.compress %k {block = 64 : i64, stride = -2 : i64}
      : tensor<1x8x1024x64xf32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @compress_output_type(%k: tensor<1x8x1024x64xf32>) {
  // expected-error @+1 {{output element type must match the input's}}
  %c = attn.compress %k {block = 64 : i64, stride = 64 : i64}
      : tensor<1x8x1024x64xf32> -> tensor<1x8x16x64xbf16>
  return
}

// -----

func.func @compress_output_dim(%k: tensor<1x8x1024x64xf32>) {
  // expected-error @+1 {{output dim 3 mismatch: 32 vs 64}}
  %c = attn.compress %k {block = 64 : i64, stride = 64 : i64}
      : tensor<1x8x1024x64xf32> -> tensor<1x8x16x32xf32>
  return
}

// -----

func.func @compress_block_count(%k: tensor<1x8x1024x64xf32>) {
  // expected-error @+1 {{output dim 2 must be floor((N - block) / stride) + 1 = 63, got 64}}
  %c = attn.compress %k {block = 32 : i64, stride = 16 : i64}
      : tensor<1x8x1024x64xf32> -> tensor<1x8x64x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.block_topk
//===----------------------------------------------------------------------===//

// -----

func.func @topk_rank(%q: tensor<1x8x128x64xf32>, %kb: tensor<8x2x64xf32>) {
  // expected-error @+1 {{block_keys must have rank 4}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_element_type(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xi8>) {
  // expected-error @+1 {{block_keys element type must be f32, f16 or bf16, got 'i8'}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xi8> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_index_type(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{indices element type must be i32, got 'i64'}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x1xi64>
  return
}

// -----

func.func @topk_k(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{k must be >= 1, got 0}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 0 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x0xi32>
  return
}

// -----

func.func @topk_block_q(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{block_q must be >= 1, got 0}}
  %i = attn.block_topk %q, %kb {block_q = 0 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_causal_blocks(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{causal needs block_q (64) to divide block_k (96)}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 96 : i64, k = 1 : i64, causal}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_scale_dot(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{scale applies only to the softmax score}}
  %i = attn.block_topk %q, %kb
      {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64, scale = 0.5 : f32}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_scale_value(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{scale must be positive and finite, got 0}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64,
      score = #attn.block_score<softmax>, scale = 0.0 : f32}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_batch(%q: tensor<1x8x128x64xf32>, %kb: tensor<2x8x2x64xf32>) {
  // expected-error @+1 {{batch of block_keys mismatch: 1 vs 2}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<2x8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_head_dim(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x32xf32>) {
  // expected-error @+1 {{query/block_keys head dim mismatch: 64 vs 32}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x32xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_gqa(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x3x2x64xf32>) {
  // expected-error @+1 {{query heads (8) must be a multiple of block_keys heads (3)}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64, group_heads}
      : tensor<1x8x128x64xf32>, tensor<1x3x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_query_blocks(%q: tensor<1x8x130x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{indices dim 2 mismatch: 2 vs 3}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x130x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x1xi32>
  return
}

// -----

func.func @topk_count(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x8x2x64xf32>) {
  // expected-error @+1 {{indices dim 3 mismatch: 2 vs 1}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64}
      : tensor<1x8x128x64xf32>, tensor<1x8x2x64xf32> -> tensor<1x8x2x2xi32>
  return
}

// -----

func.func @topk_result_heads(%q: tensor<1x8x128x64xf32>, %kb: tensor<1x2x2x64xf32>) {
  // expected-error @+1 {{indices dim 1 mismatch: 2 vs 8}}
  %i = attn.block_topk %q, %kb {block_q = 64 : i64, block_k = 64 : i64, k = 1 : i64, group_heads}
      : tensor<1x8x128x64xf32>, tensor<1x2x2x64xf32> -> tensor<1x2x2x1xi32>
  return
}

//===----------------------------------------------------------------------===//
// attn.lsh_sort
//===----------------------------------------------------------------------===//

// -----

func.func @lsh_rank(%x: tensor<8x128x64xf32>, %r: tensor<64x7xf32>) {
  // expected-error @+1 {{input must have rank 4}}
  %p = attn.lsh_sort %x, %r : tensor<8x128x64xf32>, tensor<64x7xf32> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_projection_rank(%x: tensor<1x8x128x64xf32>, %r: tensor<64xf32>) {
  // expected-error @+1 {{projection must have rank 2}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<64xf32> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_input_type(%x: tensor<1x8x128x64xi32>, %r: tensor<64x7xf32>) {
  // expected-error @+1 {{input element type must be f32, f16 or bf16, got 'i32'}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xi32>, tensor<64x7xf32> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_perm_type(%x: tensor<1x8x128x64xf32>, %r: tensor<64x7xf32>) {
  // expected-error @+1 {{perm element type must be i32, got 'index'}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<64x7xf32> -> tensor<1x8x128xindex>
  return
}

// -----

func.func @lsh_projection_type(%x: tensor<1x8x128x64xf32>, %r: tensor<64x7xbf16>) {
  // expected-error @+1 {{projection element type must be f32}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<64x7xbf16> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_projection_rows(%x: tensor<1x8x128x64xf32>, %r: tensor<32x7xf32>) {
  // expected-error @+1 {{projection rows and head dim mismatch: 32 vs 64}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<32x7xf32> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_bits(%x: tensor<1x8x128x64xf32>, %r: tensor<64x17xf32>) {
  // expected-error @+1 {{hash bits (projection dim 1) must be in [1, 16], got 17}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<64x17xf32> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_no_bits(%x: tensor<1x8x128x64xf32>, %r: tensor<64x0xf32>) {
  // expected-error @+1 {{hash bits (projection dim 1) must be in [1, 16], got 0}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<64x0xf32> -> tensor<1x8x128xi32>
  return
}

// -----

func.func @lsh_perm_dim(%x: tensor<1x8x128x64xf32>, %r: tensor<64x7xf32>) {
  // expected-error @+1 {{perm dim 2 mismatch: 64 vs 128}}
  %p = attn.lsh_sort %x, %r : tensor<1x8x128x64xf32>, tensor<64x7xf32> -> tensor<1x8x64xi32>
  return
}

//===----------------------------------------------------------------------===//
// attn.gather_rows / attn.scatter_rows
//===----------------------------------------------------------------------===//

// -----

func.func @gather_rank(%x: tensor<128x64xf32>, %i: tensor<1x8x16xi32>) {
  // expected-error @+1 {{input must have rank 3 or 4, got 'tensor<128x64xf32>'}}
  %g = attn.gather_rows %x[%i] : tensor<128x64xf32>, tensor<1x8x16xi32> -> tensor<16x64xf32>
  return
}

// -----

func.func @gather_index_rank(%x: tensor<1x8x128x64xf32>, %i: tensor<8x16xi32>) {
  // expected-error @+1 {{indices must have rank 1 or 3}}
  %g = attn.gather_rows %x[%i] : tensor<1x8x128x64xf32>, tensor<8x16xi32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gather_index_type(%x: tensor<1x8x128x64xf32>, %i: tensor<1x8x16xi64>) {
  // expected-error @+1 {{indices element type must be i32, got 'i64'}}
  %g = attn.gather_rows %x[%i] : tensor<1x8x128x64xf32>, tensor<1x8x16xi64> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gather_result_type(%x: tensor<1x8x128x64xf32>, %i: tensor<1x8x16xi32>) {
  // expected-error @+1 {{output and input must share rank and element type}}
  %g = attn.gather_rows %x[%i] : tensor<1x8x128x64xf32>, tensor<1x8x16xi32> -> tensor<1x8x16x64xf16>
  return
}

// -----

func.func @gather_row_shape(%x: tensor<1x8x128x64xf32>, %i: tensor<1x8x16xi32>) {
  // expected-error @+1 {{row shape dim 3 mismatch: 32 vs 64}}
  %g = attn.gather_rows %x[%i] : tensor<1x8x128x64xf32>, tensor<1x8x16xi32> -> tensor<1x8x16x32xf32>
  return
}

// -----

func.func @gather_index_heads(%x: tensor<1x8x128x64xf32>, %i: tensor<1x4x16xi32>) {
  // expected-error @+1 {{indices dim 1 mismatch: 4 vs 8}}
  %g = attn.gather_rows %x[%i] : tensor<1x8x128x64xf32>, tensor<1x4x16xi32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gather_index_count(%x: tensor<1x8x128x64xf32>, %i: tensor<1x8x16xi32>) {
  // expected-error @+1 {{index count and output rows mismatch: 16 vs 32}}
  %g = attn.gather_rows %x[%i] : tensor<1x8x128x64xf32>, tensor<1x8x16xi32> -> tensor<1x8x32x64xf32>
  return
}

// -----

func.func @scatter_index_count(%y: tensor<1x8x16xf32>, %i: tensor<1x8x32xi32>) {
  // expected-error @+1 {{index count and input rows mismatch: 32 vs 16}}
  %s = attn.scatter_rows %y[%i] : tensor<1x8x16xf32>, tensor<1x8x32xi32> -> tensor<1x8x128xf32>
  return
}

// -----

func.func @scatter_too_many_rows(%y: tensor<1x8x256x64xf32>, %i: tensor<1x8x256xi32>) {
  // expected-error @+1 {{scatters 256 distinct rows into 128}}
  %s = attn.scatter_rows %y[%i] : tensor<1x8x256x64xf32>, tensor<1x8x256xi32> -> tensor<1x8x128x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.gate
//===----------------------------------------------------------------------===//

// -----

func.func @gate_no_partials(%g: tensor<1x8x16x1xf32>) {
  // expected-error @+1 {{needs at least one partial output}}
  %o = "attn.gate"(%g) : (tensor<1x8x16x1xf32>) -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gate_partial_types(%g: tensor<1x8x16x2xf32>, %a: tensor<1x8x16x64xf32>,
                              %b: tensor<1x8x16x64xbf16>) {
  // expected-error @+1 {{partial outputs must share one type}}
  %o = attn.gate %g, %a, %b : tensor<1x8x16x2xf32>, tensor<1x8x16x64xf32>,
      tensor<1x8x16x64xbf16> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gate_partial_rank(%g: tensor<1x8x16x1xf32>, %a: tensor<8x16x64xf32>) {
  // expected-error @+1 {{partial output must have rank 4}}
  %o = attn.gate %g, %a : tensor<1x8x16x1xf32>, tensor<8x16x64xf32> -> tensor<8x16x64xf32>
  return
}

// -----

func.func @gate_gates_type(%g: tensor<1x8x16x1xi32>, %a: tensor<1x8x16x64xf32>) {
  // expected-error @+1 {{gates element type must be f32, f16 or bf16, got 'i32'}}
  %o = attn.gate %g, %a : tensor<1x8x16x1xi32>, tensor<1x8x16x64xf32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gate_output_type(%g: tensor<1x8x16x1xf32>, %a: tensor<1x8x16x64xf32>) {
  // expected-error @+1 {{output type must equal the partial outputs' type}}
  %o = attn.gate %g, %a : tensor<1x8x16x1xf32>, tensor<1x8x16x64xf32> -> tensor<1x8x16x64xf16>
  return
}

// -----

func.func @gate_gates_dim(%g: tensor<1x8x32x1xf32>, %a: tensor<1x8x16x64xf32>) {
  // expected-error @+1 {{gates dim 2 mismatch: 32 vs 16}}
  %o = attn.gate %g, %a : tensor<1x8x32x1xf32>, tensor<1x8x16x64xf32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @gate_count(%g: tensor<1x8x16x3xf32>, %a: tensor<1x8x16x64xf32>) {
  // expected-error @+1 {{gate count and partial outputs mismatch: 3 vs 2}}
  %o = attn.gate %g, %a, %a : tensor<1x8x16x3xf32>, tensor<1x8x16x64xf32>,
      tensor<1x8x16x64xf32> -> tensor<1x8x16x64xf32>
  return
}

// -----

func.func @grad_decay_not_causal(%q: tensor<1x4x8x64xf32>, %do: tensor<1x4x8x64xf32>, %lam: tensor<4xf32>) {
  // expected-error @+1 {{decay requires causal}}
  %dq, %dk, %dv = attn.linear_attention_grad %q, %q, %q, %do decay(%lam : tensor<4xf32>)
      : tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32> -> tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  return
}

// -----

func.func @grad_output_shape(%q: tensor<1x4x8x64xf32>, %do: tensor<1x4x9x64xf32>) {
  // expected-error @+1 {{output dim 2 mismatch: 9 vs 8}}
  %dq, %dk, %dv = attn.linear_attention_grad %q, %q, %q, %do
      : tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x9x64xf32> -> tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// attn.attention_grad (the checks it shares with attn.attention run once each above)
//===----------------------------------------------------------------------===//

// -----

func.func @attention_grad_lse_type(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf16>) {
  // expected-error @+1 {{lse element type must be f32}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q : tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf16>
  return
}

// -----

func.func @attention_grad_heads(%q: tensor<1x8x128x64xf32>, %k: tensor<1x3x128x64xf32>, %l: tensor<1x8x128xf32>) {
  // expected-error @+1 {{query heads (8) must be a multiple of key/value heads (3)}}
  %dq, %dk, %dv = attn.attention_grad %q, %k, %k, %q, %l, %q : tensor<1x8x128x64xf32>,
      tensor<1x3x128x64xf32>, tensor<1x3x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_grad_window(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>) {
  // expected-error @+1 {{window must be >= 1, got 0}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q {window = 0 : i64} : tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_grad_score_mod_result(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>) {
  // expected-error @+1 {{score_mod argument #0 must be 'f32', got 'i32'}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q : tensor<1x8x128x64xf32>,
      tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: i32, %b: i32, %h: i32, %i: i32, %j: i32):
        %f = arith.sitofp %s : i32 to f32
        attn.yield %f : f32
      }
  return
}

// -----

func.func @attention_grad_output_gradient(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>, %do: tensor<1x8x128x32xf32>) {
  // expected-error @+1 {{'attn.attention_grad' op failed to verify that all of {output, grad_output} have same type}}
  %dq, %dk, %dv = "attn.attention_grad"(%q, %q, %q, %q, %l, %do) ({}, {}) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 0, 0>} : (tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>, tensor<1x8x128x32xf32>) -> (tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>)
  return
}

// -----

func.func @attention_grad_int_table(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>, %doc: tensor<?xi32>) {
  // expected-error @+1 {{table_grads #0 must be an f32 table (an integer table has no gradient), got 'tensor<?xi32>'}}
  %dq, %dk, %dv, %dd = attn.attention_grad %q, %q, %q, %q, %l, %q table_grads(%doc : tensor<?xi32> -> tensor<?xi32>)
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

func.func @attention_grad_unread_table(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>, %t: tensor<?xf32>) {
  // expected-error @+1 {{table_grads #0 is not read by score_mod}}
  %dq, %dk, %dv, %dt = attn.attention_grad %q, %q, %q, %q, %l, %q table_grads(%t : tensor<?xf32> -> tensor<?xf32>)
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Parse errors inside modifier regions (custom<ModRegions>, AttnOps.cpp): a located
// diagnostic, never a use of a freed region.
//===----------------------------------------------------------------------===//

// Fuzzer mutant 41:191: score_mod uses %i before mask_mod's block argument defines it,
// then mask_mod fails to parse; the parser freed mask_mod under score_mod's uses.
func.func @attention_grad_mod_parse_error(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
        %t = arith.cmpi sge, %i, %j : i32
        attn.yield %t : i1
      } mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
      // expected-error @+1 {{redefinition of block '^bb0'}}
      ^bb0(%s: f32):
      }
  return
}

// -----

// The same error in attn.attention's regions.
func.func @attention_mod_parse_error(%q: tensor<1x8x128x64xf32>) {
  %o, %l = attn.attention %q, %q, %q
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>
      -> tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
        %t = arith.cmpi sge, %i, %j : i32
        attn.yield %t : i1
      } mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
      // expected-error @+1 {{redefinition of block '^bb0'}}
      ^bb0(%s: f32):
      }
  return
}

// -----

// An op before attn.attention_grad uses %x before score_mod defines it, then score_mod
// fails to parse: the parser freed score_mod under that use.
func.func @attention_grad_outer_use_parse_error(%q: tensor<1x8x128x64xf32>, %l: tensor<1x8x128xf32>) {
  %z = arith.addf %x, %x : f32
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %q, %l, %q
      : tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128x64xf32>, tensor<1x8x128xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        %x = math.tanh %s : f32
        attn.yield %x : f32
      // expected-error @+1 {{redefinition of block '^bb0'}}
      ^bb0(%s2: f32):
      }
  return
}
