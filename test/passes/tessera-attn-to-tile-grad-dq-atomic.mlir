// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16 grad-dq-atomic=true" | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16 key-major-grad=false grad-dq-atomic=true" | FileCheck %s --check-prefix=QROWS
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16" | FileCheck %s --check-prefix=OFF

// grad-dq-atomic: the dK / dV grid also adds each pair's dS K into an f32 workspace
// [B, H, Nq, D] (tile.scatter_add: atomic on the GPU), which Δ's grid zeroes first; a
// last grid scales it into dQ. No dQ grid.
// CHECK-LABEL: func.func @grad_causal_gqa
// CHECK: %[[DELTA:.*]] = memref.alloc({{.*}}) : memref<?x?x?xf32>
// CHECK: %[[SUM:.*]] = memref.alloc({{.*}}) : memref<?x?x?x64xf32>
// CHECK: tile.grid
// CHECK: tile.store %{{.*}}, %[[DELTA]]
// CHECK: tile.store %{{.*}}, %[[SUM]]{{.*}} : tensor<32x64xf32>, memref<?x?x?x64xf32>
// In [key, query] tiles the share is (dS K)ᵀ = Kᵀ dSᵀ: head dims as rows.
// CHECK: tile.grid
// CHECK: %[[K:.*]] = tile.load %arg1{{.*}} -> tensor<16x64xf32>
// CHECK: scf.for
// CHECK: tile.dot %[[DST:[0-9]+]], %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x64xf32> -> tensor<16x64xf32>
// CHECK: %[[KT:.*]] = tile.trans %[[K]] : tensor<16x64xf32> -> tensor<64x16xf32>
// CHECK: %[[PART:.*]] = tile.dot %[[KT]], %[[DST]], %{{.*}} : tensor<64x16xf32>, tensor<16x32xf32> -> tensor<64x32xf32>
// CHECK: tile.scatter_add %[[PART]], %[[SUM]][{{.*}}] : tensor<64x32xf32>, memref<?x?x?x64xf32>
// CHECK: tile.store {{.*}}, %arg7
// CHECK: tile.store {{.*}}, %arg8
// CHECK: tile.grid
// CHECK-NOT: scf.for
// CHECK: %[[ACC:.*]] = tile.load %[[SUM]]{{.*}} -> tensor<32x64xf32>
// CHECK: %[[SCALED:.*]] = arith.mulf %[[ACC]], %{{.*}} : tensor<32x64xf32>
// CHECK: tile.store %[[SCALED]], %arg6
// CHECK-NOT: tile.grid
// [query, key] tiles (mma.sync): dS K, dS the left operand as computed.
// QROWS-LABEL: func.func @grad_causal_gqa
// QROWS: tile.grid
// QROWS: tile.grid
// QROWS: %[[DST:.*]] = tile.trans %[[DS:[0-9]+]] : tensor<32x16xf32> -> tensor<16x32xf32>
// QROWS: %[[PART:.*]] = tile.dot %[[DS]], %{{.*}}, %{{.*}} : tensor<32x16xf32>, tensor<16x64xf32> -> tensor<32x64xf32>
// QROWS: tile.scatter_add %[[PART]], %{{.*}} : tensor<32x64xf32>, memref<?x?x?x64xf32>
// QROWS: tile.grid
// QROWS-NOT: tile.grid
// Off (the default): no workspace, no scatter, the dQ grid.
// OFF-LABEL: func.func @grad_causal_gqa
// OFF-NOT: memref<?x?x?x64xf32>
// OFF-NOT: tile.scatter_add
// OFF: scf.for {{.*}} -> (tensor<32x64xf32>)
func.func @grad_causal_gqa(%q: tensor<?x4x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x64xf32>,
    %o: tensor<?x4x?x64xf32>, %l: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %l, %do {causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %dq, %dk, %dv : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
}
