// RUN: tessera-opt %s | tessera-opt | FileCheck %s
// Seed: HyperAttention's non-causal core (SEMANTICS §3) with r = 7 hash bits, blocks of
// b = 256 and m = 256 sampled key columns, N = 4096. R and the samples J are inputs, so
// the result is deterministic. (The causal variant recurses on halves of this routine and
// merges by log-sum-exp; it composes from the same ops.)
//  1. sort queries and keys by their Gray-ordered LSH bucket;
//  2. exact attention inside each diagonal block of the sorted order;
//  3. attention over the sampled keys, weighted N/m (score + log(N/m)), skipping the
//     samples that fall in the query's own block (their sorted position is read from a
//     captured 1-D tensor);
//  4. merge the two parts by log-sum-exp and un-sort the rows.

// CHECK-LABEL: func.func @hyperattention
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<1x8x4096x64xf32>, %[[K:[^:]*]]: tensor<1x8x4096x64xf32>, %[[V:[^:]*]]: tensor<1x8x4096x64xf32>, %[[R:[^:]*]]: tensor<64x7xf32>, %[[J:[^:]*]]: tensor<1x8x256xi32>)
// CHECK: %[[PQ:.*]] = attn.lsh_sort %[[Q]], %[[R]] : tensor<1x8x4096x64xf32>, tensor<64x7xf32> -> tensor<1x8x4096xi32>
// CHECK: %[[PK:.*]] = attn.lsh_sort %[[K]], %[[R]]
// CHECK: %[[QS:.*]] = attn.gather_rows %[[Q]][%[[PQ]]]
// CHECK: %[[KS:.*]] = attn.gather_rows %[[K]][%[[PK]]]
// CHECK: %[[VS:.*]] = attn.gather_rows %[[V]][%[[PK]]]
// CHECK: %[[OB:.*]], %[[LB:.*]] = attn.attention %[[QS]], %[[KS]], %[[VS]] :
// CHECK: mask_mod {
// CHECK: arith.divsi
// CHECK: %[[KJ:.*]] = attn.gather_rows %[[K]][%[[J]]] : tensor<1x8x4096x64xf32>, tensor<1x8x256xi32> -> tensor<1x8x256x64xf32>
// CHECK: %[[VJ:.*]] = attn.gather_rows %[[V]][%[[J]]]
// CHECK: %[[INV:.*]] = attn.scatter_rows %{{.*}}[%[[PK]]] : tensor<1x8x4096xi32>, tensor<1x8x4096xi32> -> tensor<1x8x4096xi32>
// CHECK: %[[POS:.*]] = attn.gather_rows %[[INV]][%[[J]]] : tensor<1x8x4096xi32>, tensor<1x8x256xi32> -> tensor<1x8x256xi32>
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[POS]]
// CHECK: %[[OS:.*]], %[[LS:.*]] = attn.attention %[[QS]], %[[KJ]], %[[VJ]] :
// CHECK: score_mod {
// CHECK: arith.addf
// CHECK: } mask_mod {
// CHECK: tensor.extract %[[FLAT]]
// CHECK: %[[OM:.*]], %[[LM:.*]] = attn.merge %[[OB]], %[[LB]], %[[OS]], %[[LS]]
// CHECK: %[[O:.*]] = attn.scatter_rows %[[OM]][%[[PQ]]] : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32> -> tensor<1x8x4096x64xf32>
// CHECK: %[[L:.*]] = attn.scatter_rows %[[LM]][%[[PQ]]] : tensor<1x8x4096xf32>
// CHECK: return %[[O]], %[[L]]
func.func @hyperattention(%q: tensor<1x8x4096x64xf32>, %k: tensor<1x8x4096x64xf32>,
                          %v: tensor<1x8x4096x64xf32>, %r: tensor<64x7xf32>,
                          %samples: tensor<1x8x256xi32>)
    -> (tensor<1x8x4096x64xf32>, tensor<1x8x4096xf32>) {
  // 1. Sort.
  %pq = attn.lsh_sort %q, %r : tensor<1x8x4096x64xf32>, tensor<64x7xf32> -> tensor<1x8x4096xi32>
  %pk = attn.lsh_sort %k, %r : tensor<1x8x4096x64xf32>, tensor<64x7xf32> -> tensor<1x8x4096xi32>
  %qs = attn.gather_rows %q[%pq]
      : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32> -> tensor<1x8x4096x64xf32>
  %ks = attn.gather_rows %k[%pk]
      : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32> -> tensor<1x8x4096x64xf32>
  %vs = attn.gather_rows %v[%pk]
      : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32> -> tensor<1x8x4096x64xf32>

  // 2. Block-diagonal attention in sorted order.
  %ob, %lb = attn.attention %qs, %ks, %vs
      : tensor<1x8x4096x64xf32>, tensor<1x8x4096x64xf32>, tensor<1x8x4096x64xf32>
      -> tensor<1x8x4096x64xf32>, tensor<1x8x4096xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %bs = arith.constant 256 : i32
        %bi = arith.divsi %i, %bs : i32
        %bj = arith.divsi %j, %bs : i32
        %same = arith.cmpi eq, %bi, %bj : i32
        attn.yield %same : i1
      }

  // 3. Sampled columns J, and each sample's position in the sorted key order
  //    (inverse permutation of %pk read at J), flattened for the mask to read.
  %kj = attn.gather_rows %k[%samples]
      : tensor<1x8x4096x64xf32>, tensor<1x8x256xi32> -> tensor<1x8x256x64xf32>
  %vj = attn.gather_rows %v[%samples]
      : tensor<1x8x4096x64xf32>, tensor<1x8x256xi32> -> tensor<1x8x256x64xf32>
  %iota = tensor.generate {
  ^bb0(%b: index, %h: index, %n: index):
    %n32 = arith.index_cast %n : index to i32
    tensor.yield %n32 : i32
  } : tensor<1x8x4096xi32>
  %inv = attn.scatter_rows %iota[%pk]
      : tensor<1x8x4096xi32>, tensor<1x8x4096xi32> -> tensor<1x8x4096xi32>
  %pos = attn.gather_rows %inv[%samples]
      : tensor<1x8x4096xi32>, tensor<1x8x256xi32> -> tensor<1x8x256xi32>
  %flat = tensor.collapse_shape %pos [[0, 1, 2]] : tensor<1x8x256xi32> into tensor<2048xi32>
  %os, %ls = attn.attention %qs, %kj, %vj
      : tensor<1x8x4096x64xf32>, tensor<1x8x256x64xf32>, tensor<1x8x256x64xf32>
      -> tensor<1x8x4096x64xf32>, tensor<1x8x4096xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        %logw = arith.constant 2.77258872 : f32  // log(N / m) = log(4096 / 256)
        %w = arith.addf %s, %logw : f32
        attn.yield %w : f32
      } mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %heads = arith.constant 8 : i32
        %m = arith.constant 256 : i32
        %bs = arith.constant 256 : i32
        %bh = arith.muli %b, %heads : i32
        %row = arith.addi %bh, %h : i32
        %base = arith.muli %row, %m : i32
        %at = arith.addi %base, %j : i32
        %ati = arith.index_cast %at : i32 to index
        %p = tensor.extract %flat[%ati] : tensor<2048xi32>
        %bp = arith.divsi %p, %bs : i32
        %bi = arith.divsi %i, %bs : i32
        %other = arith.cmpi ne, %bp, %bi : i32
        attn.yield %other : i1
      }

  // 4. Merge and un-sort.
  %om, %lm = attn.merge %ob, %lb, %os, %ls : tensor<1x8x4096x64xf32>, tensor<1x8x4096xf32>
  %o = attn.scatter_rows %om[%pq]
      : tensor<1x8x4096x64xf32>, tensor<1x8x4096xi32> -> tensor<1x8x4096x64xf32>
  %l = attn.scatter_rows %lm[%pq]
      : tensor<1x8x4096xf32>, tensor<1x8x4096xi32> -> tensor<1x8x4096xf32>
  return %o, %l : tensor<1x8x4096x64xf32>, tensor<1x8x4096xf32>
}
