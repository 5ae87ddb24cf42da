// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16" | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16 key-major-grad=false" | FileCheck %s --check-prefix=QROWS
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="grad-query-tile=16" | FileCheck %s --check-prefix=NARROW
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="grad-query-tile=16 key-major-grad=false" | FileCheck %s --check-prefix=NARROW

// The softmax backward: Δ per query tile, dK / dV per key tile over the query tiles of
// its group's heads that see it, dQ per query tile; scores recomputed from L.
// CHECK-LABEL: func.func @grad_causal_gqa
// CHECK: %[[DELTA:.*]] = memref.alloc({{.*}}) : memref<?x?x?xf32>
// CHECK: tile.grid
// CHECK: %[[O:.*]] = tile.load %arg3{{.*}} -> tensor<32x64xf32>
// CHECK: %[[DO:.*]] = tile.load %arg5{{.*}} -> tensor<32x64xf32>
// CHECK: %[[OD:.*]] = arith.mulf %[[O]], %[[DO]]
// CHECK: %[[ROWSUM:.*]] = tile.reduce <sum> %[[OD]] axis 1
// CHECK: tile.store %[[ROWSUM]], %[[DELTA]]
// The key-tile grid: one program per (key tile, key/value head, batch). Its pair tiles
// are [key, query]: Sᵀ = K Qᵀ accumulated onto −L/τ (no score_mod), P = exp2 of one
// multiply, dPᵀ accumulated onto −Δ, then Pᵀ and dSᵀ are the left operands of dV and dK
// as they stand (no transpose).
// CHECK: tile.grid
// CHECK: %[[K:.*]] = tile.load %arg1{{.*}} -> tensor<16x64xf32>
// CHECK: scf.for {{.*}} iter_args(%[[DK:.*]] = %{{.*}}, %[[DV:.*]] = %{{.*}}) -> (tensor<16x64xf32>, tensor<16x64xf32>)
// CHECK: scf.for
// CHECK: %[[Q:.*]] = tile.load %arg0{{.*}} -> tensor<32x64xf32>
// CHECK: %[[DOQ:.*]] = tile.load %arg5{{.*}} -> tensor<32x64xf32>
// CHECK: scf.if
// CHECK: %[[LSE:.*]] = tile.load %arg4{{.*}} -> tensor<32xf32>
// CHECK: %[[MINUSL:.*]] = tile.broadcast %{{.*}} axis 0 : tensor<32xf32> -> tensor<16x32xf32>
// CHECK: %[[QT:.*]] = tile.trans %[[Q]] : tensor<32x64xf32> -> tensor<64x32xf32>
// CHECK: %[[ST:.*]] = tile.dot %[[K]], %[[QT]], %[[MINUSL]] {{.*}} -> tensor<16x32xf32>
// CHECK: %[[E:.*]] = arith.mulf %[[ST]], %{{.*}} : tensor<16x32xf32>
// CHECK: %[[P:.*]] = math.exp2 %[[E]] : tensor<16x32xf32>
// CHECK: %[[DELTAT:.*]] = tile.load %[[DELTA]]
// CHECK: %[[NEG:.*]] = arith.negf %[[DELTAT]] : tensor<32xf32>
// CHECK: %[[MINUS:.*]] = tile.broadcast %[[NEG]] axis 0 : tensor<32xf32> -> tensor<16x32xf32>
// CHECK: %[[DOT:.*]] = tile.trans %[[DOQ]] : tensor<32x64xf32> -> tensor<64x32xf32>
// CHECK: %[[DPT:.*]] = tile.dot %{{.*}}, %[[DOT]], %[[MINUS]]
// CHECK: %[[DST:.*]] = arith.mulf %[[P]], %[[DPT]] : tensor<16x32xf32>
// CHECK: tile.dot %[[DST]], %[[Q]], %{{.*}} : tensor<16x32xf32>, tensor<32x64xf32> -> tensor<16x64xf32>
// CHECK: tile.dot %[[P]], %[[DOQ]], %{{.*}} : tensor<16x32xf32>, tensor<32x64xf32> -> tensor<16x64xf32>
// CHECK: tile.store {{.*}}, %arg7
// CHECK: tile.store {{.*}}, %arg8
// key-major-grad=false (mma.sync targets): [query, key] tiles, P and dS transposed for
// the dV and dK products.
// QROWS-LABEL: func.func @grad_causal_gqa
// QROWS: tile.grid
// QROWS: tile.grid
// QROWS: %[[S:.*]] = tile.dot %{{.*}}, %{{.*}}, %{{.*}} : tensor<32x64xf32>, tensor<64x16xf32> -> tensor<32x16xf32>
// QROWS: %[[P:.*]] = math.exp2 %{{.*}} : tensor<32x16xf32>
// QROWS: %[[DS:.*]] = arith.mulf %[[P]], %{{.*}} : tensor<32x16xf32>
// QROWS: %[[DST:.*]] = tile.trans %[[DS]] : tensor<32x16xf32> -> tensor<16x32xf32>
// QROWS: tile.dot %[[DST]], %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x64xf32> -> tensor<16x64xf32>
// QROWS: %[[PT:.*]] = tile.trans %[[P]] : tensor<32x16xf32> -> tensor<16x32xf32>
// QROWS: tile.dot %[[PT]], %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x64xf32> -> tensor<16x64xf32>
// grad-query-tile=16: the dK / dV grid walks 16-query [key, query] tiles (also where
// key-major-grad is off: 16 queries cannot be product rows), asks narrow products, and
// reads K / V per product; so does the dQ grid its Q / dO.
// NARROW-LABEL: func.func @grad_causal_gqa
// NARROW: tile.grid
// NARROW: tile.grid{{.*}} config = <block_m = 64, block_n = 16, {{.*}}> attributes {tile.left_operands_per_use, tile.narrow_products}
// NARROW: %[[K:.*]] = tile.load %arg1{{.*}} -> tensor<64x64xf32>
// NARROW: %[[Q:.*]] = tile.load %arg0{{.*}} -> tensor<16x64xf32>
// NARROW: %[[QT:.*]] = tile.trans %[[Q]] : tensor<16x64xf32> -> tensor<64x16xf32>
// NARROW: tile.dot %[[K]], %[[QT]], %{{.*}} -> tensor<64x16xf32>
// NARROW: tile.grid{{.*}} config = <block_m = 64, block_n = 64, {{.*}}> attributes {tile.left_operands_per_use}
// The query-tile grid: dQ.
// CHECK: tile.grid
// CHECK: scf.for {{.*}} -> (tensor<32x64xf32>)
// CHECK: tile.store {{.*}}, %arg6
func.func @grad_causal_gqa(%q: tensor<?x4x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x64xf32>,
    %o: tensor<?x4x?x64xf32>, %l: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %l, %do {causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %dq, %dk, %dv : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
}

// -----

// score_mod's derivative is generated: soft-capping c tanh(s / c) has slope
// (1 - tanh²) (c / c), evaluated next to the capped score.
// CHECK-LABEL: func.func @grad_softcap
// CHECK: %[[T:.*]] = math.tanh %{{.*}} : tensor<32x16xf32>
// CHECK: %[[SQ:.*]] = arith.mulf %[[T]], %[[T]] : tensor<32x16xf32>
// CHECK: arith.subf %{{.*}}, %[[SQ]]
func.func @grad_softcap(%q: tensor<?x1x?x64xf32>, %o: tensor<?x1x?x64xf32>, %l: tensor<?x1x?xf32>)
    -> (tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %l, %o
      : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?xf32>
      score_mod {
      ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
        %c = arith.constant 3.0e+01 : f32
        %t = arith.divf %s, %c : f32
        %u = math.tanh %t : f32
        %r = arith.mulf %u, %c : f32
        attn.yield %r : f32
      }
  return %dq, %dk, %dv : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>
}

// -----

// A table gradient: zeroed by a grid of zero-tile stores (per tile of the last dim and
// entry of the first), then each pair of the dQ grid adds dS' ∘ ∂f/∂bias (here 1) at
// the entries the score_mod read, masked by the pairs it keeps.
// CHECK-LABEL: func.func @grad_bias_table
// CHECK: %[[LAST:.*]] = memref.dim %arg6, %c1{{.*}} : memref<?x?xf32
// CHECK: %[[TILES:.*]] = arith.ceildivsi %[[LAST]], %c32
// CHECK: %[[HEADS:.*]] = memref.dim %arg6, %c0
// CHECK: tile.grid[%[[TILES]], %[[HEADS]]] config
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : tensor<32xf32>
// CHECK: tile.store %[[ZERO]], %arg6[%{{.*}}, %{{.*}}] : tensor<32xf32>, memref<?x?xf32
// CHECK: tile.gather %arg2
// CHECK: tile.scatter_add %{{.*}}, %arg6[%{{.*}}, %{{.*}}] mask(%{{.*}} : tensor<32x16xi1>) : tensor<32x16xf32>, memref<?x?xf32
func.func @grad_bias_table(%q: tensor<?x2x?x64xf32>, %l: tensor<?x2x?xf32>, %bias: tensor<?x?xf32>)
    -> (tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x?xf32>) {
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
  return %dq, %dk, %dv, %dbias : tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x?xf32>
}

// -----

// A mask_mod is classified once per tile pair (the mask's verdict by interval
// arithmetic, else element-wise: kept pairs in the low 16 bits, pairs kept-or-past-an-end
// above; class 0 / 1 / 2), into a table both walks read through lists: per key tile the
// query tiles that keep any of it (the transposed lists, dK / dV) and per query tile its
// key tiles (dQ). A mask reading neither batch nor head has one table. Each walk visits
// listed tiles only, from clamped places under count > 0 (tile.speculable); a tile
// listed whole and kept whole by the window bounds runs without mask arithmetic.
// CHECK-LABEL: func.func @grad_mask_mod_window
// CHECK: %[[CLASSES:.*]] = memref.alloc(%[[ONE:.*]], %[[ONE]], %{{.*}}, %{{.*}}) : memref<?x?x?x?xi32>
// CHECK: tile.grid
// CHECK: scf.for
// CHECK: %[[HIGH:.*]] = arith.shli %{{.*}}, %{{.*}} : tensor<32x16xi32>
// CHECK: %[[PACKED:.*]] = arith.addi %{{.*}}, %[[HIGH]] : tensor<32x16xi32>
// CHECK: tile.reduce <sum> %[[PACKED]] axis 1
// CHECK: arith.andi %{{.*}}, %c65535_i32
// CHECK: memref.store %{{.*}}, %[[CLASSES]]
// CHECK: %[[QLIST:.*]] = memref.alloc({{.*}}) : memref<?x?x?x?xi32>
// CHECK: %[[QCOUNT:.*]] = memref.alloc({{.*}}) : memref<?x?x?xi32>
// CHECK: tile.grid
// CHECK: memref.load %[[CLASSES]]
// CHECK: memref.store %{{.*}}, %[[QLIST]]
// CHECK: memref.store %{{.*}}, %[[QCOUNT]]
// CHECK: %[[KLIST:.*]] = memref.alloc({{.*}}) : memref<?x?x?x?xi32>
// CHECK: %[[KCOUNT:.*]] = memref.alloc({{.*}}) : memref<?x?x?xi32>
// CHECK: tile.grid
// CHECK: memref.load %[[CLASSES]]
// CHECK: memref.store %{{.*}}, %[[KLIST]]
// CHECK: tile.grid
// CHECK: %[[N:.*]] = memref.load %[[QCOUNT]][%{{.*}}, %{{.*}}, %[[KT:.*]]] : memref<?x?x?xi32>
// CHECK: %[[NIDX:.*]] = arith.index_cast %[[N]]
// CHECK: %[[SOME:.*]] = arith.cmpi sgt, %[[NIDX]]
// CHECK: scf.if %[[SOME]]
// CHECK: scf.for %[[E:.*]] = %{{.*}} to %[[NIDX]]
// CHECK: %[[PLACE:.*]] = arith.minsi %[[E]]
// CHECK: %[[ENTRY:.*]] = memref.load %[[QLIST]][%{{.*}}, %{{.*}}, %[[KT]], %[[PLACE]]]
// CHECK: %[[WHOLE:.*]] = arith.trunci %[[ENTRY]] : i32 to i1
// CHECK: arith.andi %[[WHOLE]]
// CHECK: math.exp
// CHECK: {tile.speculable}
// CHECK: tile.grid
// CHECK: memref.load %[[KCOUNT]]
// CHECK: memref.load %[[KLIST]]
// CHECK: {tile.speculable}
func.func @grad_mask_mod_window(%q: tensor<?x1x?x64xf32>, %o: tensor<?x1x?x64xf32>, %l: tensor<?x1x?xf32>)
    -> (tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %l, %o {window = 48 : i64}
      : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %c = arith.constant 3 : i32
        %r = arith.remsi %j, %c : i32
        %z = arith.constant 0 : i32
        %t = arith.cmpi ne, %r, %z : i32
        attn.yield %t : i1
      }
  return %dq, %dk, %dv : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>
}

// -----

// A document mask: the classification bounds each table read over the tile's rows
// (keys) by the least and greatest id of one vector gather, so a tile whose rows and
// keys lie in different documents is empty, and one in a single document whole,
// without the element-wise count.
// CHECK-LABEL: func.func @grad_document
// CHECK: tile.grid
// CHECK: tile.grid
// CHECK: scf.for
// CHECK: %[[IDS:.*]] = tile.gather %arg3[%{{.*}}] : memref<?xi32{{.*}}>, tensor<32xi32> -> tensor<32xi32>
// CHECK: %[[LEAST:.*]] = tile.reduce <min> %{{.*}} axis 0 : tensor<32xi32>
// CHECK: %[[MOST:.*]] = tile.reduce <max> %{{.*}} axis 0 : tensor<32xi32>
// CHECK: tile.gather %arg3
// CHECK: tile.reduce <min>
// CHECK: tile.reduce <max>
// CHECK: scf.if
// CHECK: tile.gather %arg3[%{{.*}}] : memref<?xi32{{.*}}>, tensor<32xi32> -> tensor<32xi32>
// CHECK: arith.cmpi eq, %{{.*}} : tensor<32x16xi32>
func.func @grad_document(%q: tensor<?x1x?x64xf32>, %o: tensor<?x1x?x64xf32>, %l: tensor<?x1x?xf32>, %doc: tensor<?xi32>)
    -> (tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>) {
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %l, %o {causal}
      : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?xf32>
      mask_mod {
      ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
        %ii = arith.index_cast %i : i32 to index
        %jj = arith.index_cast %j : i32 to index
        %di = tensor.extract %doc[%ii] : tensor<?xi32>
        %dj = tensor.extract %doc[%jj] : tensor<?xi32>
        %same = arith.cmpi eq, %di, %dj : i32
        attn.yield %same : i1
      }
  return %dq, %dk, %dv : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>
}
