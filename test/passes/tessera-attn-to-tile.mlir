// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16" | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16 split=12" | FileCheck %s --check-prefix=CHUNKS
// RUN: tessera-opt %s -split-input-file --tessera-attn-to-tile="block-m=32 block-n=16 num-stages=1" | FileCheck %s --check-prefix=ONE-STAGE

// Full attention: one loop over every key tile, no mask arithmetic, buffers in
// destination-passing form, the tuning config on the grid.
// CHECK-LABEL: func.func @full
// CHECK-SAME: (%[[Q:[^:]+]]: memref<?x?x?x64xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK-SAME: %[[O:[^:]+]]: memref<?x?x?x64xf32, strided<[?, ?, ?, ?], offset: ?>>, %[[L:[^:]+]]: memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>)
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK: tile.grid[{{.*}}] config = <block_m = 32, block_n = 16, num_warps = 4, num_stages = 2, split = 1>
// CHECK: %[[QT:.*]] = tile.load %[[Q]]{{.*}} -> tensor<32x64xf32>
// CHECK: scf.for
// CHECK: %[[KT:.*]] = tile.trans
// CHECK: %[[S:.*]] = tile.dot %[[QT]], %[[KT]]
// CHECK: tile.reduce <max>
// CHECK: math.exp
// CHECK: tile.reduce <sum>
// CHECK: tile.dot
// CHECK: scf.yield
// CHECK: tile.store {{.*}}, %[[O]]
// CHECK: tile.store {{.*}}, %[[L]]
// CHECK-NOT: attn.attention
func.func @full(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// Causal: three key-tile loops (masked before, unmasked middle, masked diagonal); only
// the masked ones compare indices. Each loop starts where the last ends and says that it
// continues it (one GPU copy pipeline across all three).
// CHECK-LABEL: func.func @causal
// CHECK: %[[FIRST:.*]]:3 = scf.for %{{.*}} = %{{.*}} to %[[FULL_LO:[^ ]+]] step
// CHECK: arith.cmpi sle
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
// CHECK: %[[MIDDLE:.*]]:3 = scf.for %{{.*}} = %[[FULL_LO]] to %[[FULL_HI:[^ ]+]] step {{.*}} iter_args(%{{.*}} = %[[FIRST]]#0,
// CHECK-NOT: arith.cmpi
// CHECK: scf.yield
// CHECK-NEXT: } {tile.continues_previous}
// CHECK: scf.for %{{.*}} = %[[FULL_HI]] to {{.*}} iter_args(%{{.*}} = %[[MIDDLE]]#0,
// CHECK: arith.cmpi sle
// CHECK: scf.yield
// CHECK-NEXT: } {tile.continues_previous}
func.func @causal(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v {causal} : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// score_mod and mask_mod are inlined element-wise on the 32x16 score tile; a captured
// table becomes a tile.gather from its buffer, once per row for the query index and
// once per column for the key index. A first grid classifies the key tiles of
// a query tile in chunks of 32 (one program per chunk) and lists the ones it keeps
// anything of (2 t + 1 when whole) from the chunk's first place, then their count; a
// second joins the chunks' lists into one and stores the total; a mask that reads
// neither batch nor head is classified once ([1, 1, ...] lists). The attention grid
// walks the list, loads first, and evaluates mask_mod only on partial tiles.
// CHECK-LABEL: func.func @modifiers
// CHECK-SAME: %[[DOC:[^:]+]]: memref<?xi32, strided<[?], offset: ?>>
// CHECK: %[[LISTS:.*]] = memref.alloc(%[[ONE:.*]], %[[ONE]], {{.*}}) : memref<?x?x?x?xi32>
// CHECK: %[[COUNTS:.*]] = memref.alloc(%[[ONE]], %[[ONE]], {{.*}}) : memref<?x?x?xi32>
// CHECK: %[[CHUNK_COUNTS:.*]] = memref.alloc(%[[ONE]], %[[ONE]], {{.*}}) : memref<?x?x?x?xi32>
// CHECK: %[[HEAD_CHUNKS:.*]] = arith.muli %[[ONE]], %{{.*}} : index
// CHECK: tile.grid[{{.*}}, %[[HEAD_CHUNKS]], %[[ONE]]]
// CHECK: scf.for
// CHECK: tile.gather %[[DOC]]
// CHECK: tile.reduce <sum>
// CHECK: memref.store {{.*}}, %[[LISTS]]
// CHECK: memref.store {{.*}}, %[[CHUNK_COUNTS]]
// CHECK: tile.grid[{{.*}}, %[[ONE]], %[[ONE]]]
// CHECK: scf.for
// CHECK: %[[LISTED:.*]] = tile.load %[[LISTS]]{{.*}} -> tensor<32xi32>
// CHECK: tile.store %[[LISTED]], %[[LISTS]]
// CHECK: memref.load %[[CHUNK_COUNTS]]
// CHECK: memref.store {{.*}}, %[[COUNTS]]
// CHECK: tile.grid
// CHECK: memref.load %[[COUNTS]]
// CHECK: scf.for
// CHECK: memref.load %[[LISTS]]
// CHECK: tile.load
// CHECK: scf.if
// CHECK: math.tanh {{.*}} : tensor<32x16xf32>
// CHECK: } else {
// CHECK: math.tanh {{.*}} : tensor<32x16xf32>
// CHECK: tile.gather %[[DOC]]{{.*}} -> tensor<32xi32>
// CHECK: tile.gather %[[DOC]]{{.*}} -> tensor<16xi32>
// CHECK: arith.cmpi eq, {{.*}} : tensor<32x16xi32>
// CHECK: } {tile.speculable}
func.func @modifiers(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>, %doc: tensor<?xi32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
    score_mod {
    ^bb0(%s: f32, %b: i32, %h: i32, %i: i32, %j: i32):
      %t = math.tanh %s : f32
      attn.yield %t : f32
    }
    mask_mod {
    ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
      %ii = arith.index_cast %i : i32 to index
      %jj = arith.index_cast %j : i32 to index
      %di = tensor.extract %doc[%ii] : tensor<?xi32>
      %dj = tensor.extract %doc[%jj] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      attn.yield %same : i1
    }
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// A mask the classification can bound: per key tile it first computes the mask over
// the tile's row and key ranges by interval arithmetic (scalar floor divisions of the
// ends); a tile surely empty is skipped, one surely whole listed as whole, and only the
// rest evaluated element-wise — i // 48 once per row, j // 80 once per column.
// CHECK-LABEL: func.func @bounded_mask
// CHECK: tile.grid
// CHECK: scf.for
// CHECK: arith.floordivsi {{.*}} : i32
// CHECK: arith.floordivsi {{.*}} : i32
// CHECK: %[[NONE:.*]] = arith.ori
// CHECK: scf.if %[[NONE]] -> (i32)
// CHECK: } else {
// CHECK: scf.if {{.*}} -> (i32)
// CHECK: arith.floordivsi {{.*}} : tensor<32xi32>
// CHECK: arith.floordivsi {{.*}} : tensor<16xi32>
// CHECK: arith.cmpi eq, {{.*}} : tensor<32x16xi32>
// CHECK: tile.reduce <sum>
// CHECK: tile.grid
func.func @bounded_mask(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
    mask_mod {
    ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
      %c48 = arith.constant 48 : i32
      %c80 = arith.constant 80 : i32
      %bi = arith.floordivsi %i, %c48 : i32
      %bj = arith.floordivsi %j, %c80 : i32
      %same = arith.cmpi eq, %bi, %bj : i32
      attn.yield %same : i1
    }
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// GQA: the key/value head is the query head divided by the group size.
// CHECK-LABEL: func.func @gqa
// CHECK: %[[H:.*]] = tile.program_id 1 : index
// CHECK: %[[HK:.*]] = arith.divsi %[[H]], %{{.*}} : index
// CHECK: tile.load %{{.*}}[%{{.*}}, %[[HK]],
func.func @gqa(%q: tensor<2x8x?x64xf32>, %k: tensor<2x2x?x64xf32>, %v: tensor<2x2x?x64xf32>)
    -> (tensor<2x8x?x64xf32>, tensor<2x8x?xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<2x8x?x64xf32>, tensor<2x2x?x64xf32>, tensor<2x2x?x64xf32> -> tensor<2x8x?x64xf32>, tensor<2x8x?xf32>
  return %o, %l : tensor<2x8x?x64xf32>, tensor<2x8x?xf32>
}

// -----

// Lightning Attention-2: one program per (head, batch); the 64x64 state is carried by the
// block loop as Sᵀ (its 64 value columns fill the 4 warps' rows), updated by (Vᵀ Λk) K,
// read by Q Sᵀᵀ, and stored once, after it, transposed; the decay enters as exp2 of its
// log2, the intra-block decay mask made in the loop (not held across it in registers).
// CHECK-LABEL: func.func @lightning
// CHECK: tile.grid
// CHECK: %[[LAMBDA:.*]] = memref.load
// CHECK: math.log2 %[[LAMBDA]]
// CHECK: %[[S:.*]] = scf.for {{.*}} iter_args(%[[ST:.*]] = {{.*}}) -> (tensor<64x64xf32>)
// CHECK: %[[SB:.*]] = tile.trans %[[ST]]
// CHECK: tile.dot {{.*}}, %[[SB]], {{.*}} : tensor<32x64xf32>, tensor<64x64xf32>
// CHECK: math.exp2 {{.*}} : tensor<32x32xf32>
// CHECK: tile.store {{.*}} : tensor<32x64xf32>
// CHECK: %[[VT:.*]] = tile.trans {{.*}} : tensor<32x64xf32> -> tensor<64x32xf32>
// CHECK: %[[VW:.*]] = arith.mulf %[[VT]]
// CHECK: tile.dot %[[VW]], {{.*}} : tensor<64x32xf32>, tensor<32x64xf32> -> tensor<64x64xf32>
// CHECK: scf.yield {{.*}} : tensor<64x64xf32>
// CHECK: %[[OUT:.*]] = tile.trans %[[S]]
// CHECK: tile.store %[[OUT]], {{.*}} : tensor<64x64xf32>
// split = 12: a piece must fill the warps' rows, so 12 sequence chunks of the whole
// state. A first grid stores each chunk's own state but the last's (never read: 11
// programs) in a workspace; a scan (one program
// per head, batch and 16-column band of the state, loading the next chunk's own band a step
// ahead) replaces each by
// the decayed sum of those before it; in the last grid a chunk starts from its own
// entry. The sweep grids put the split index first (it varies fastest: a head's
// programs run side by side).
// CHUNKS-LABEL: func.func @lightning
// CHUNKS: %[[STATES:.*]] = memref.alloc({{.*}}) : memref<?x?x12x64x64xf32>
// CHUNKS: tile.grid[%c11{{.*}}, {{.*}}, {{.*}}]
// CHUNKS: scf.for {{.*}} -> (tensor<64x64xf32>)
// CHUNKS: tile.store {{.*}}, %[[STATES]]
// CHUNKS: tile.grid[{{.*}}, {{.*}}, %c4{{.*}}]
// CHUNKS: %[[FIRST:.*]] = tile.load %[[STATES]]{{.*}} -> tensor<64x16xf32>
// CHUNKS: scf.for {{.*}} iter_args(%[[SUM:.*]] = {{.*}}, %[[OWN:.*]] = %[[FIRST]]) -> (tensor<64x16xf32>, tensor<64x16xf32>)
// CHUNKS: %[[NEXT:.*]] = tile.load %[[STATES]]
// CHUNKS: tile.store %[[SUM]], %[[STATES]]
// CHUNKS: math.exp2
// CHUNKS: %[[NEW:.*]] = arith.addf {{.*}}, %[[OWN]] : tensor<64x16xf32>
// CHUNKS: scf.yield %[[NEW]], %[[NEXT]]
// CHUNKS: tile.grid[%c12{{.*}}, {{.*}}, {{.*}}]
// CHUNKS: %[[START:.*]] = tile.load %[[STATES]]
// CHUNKS: scf.for {{.*}} iter_args({{.*}} = %[[START]]) -> (tensor<64x64xf32>)
func.func @lightning(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>, %lam: tensor<?xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x64x64xf32>) {
  %o, %s = attn.linear_attention %q, %k, %v decay(%lam : tensor<?xf32>) {causal} : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x64x64xf32>
  return %o, %s : tensor<?x?x?x64xf32>, tensor<?x?x64x64xf32>
}

// -----

// A decode step: the token is row 0 of tiles of 16 rows per warp (64 with 4 warps);
// the state is loaded, decayed, updated by φ(k)ᵀv and stored back, o = φ(q) S'. With
// split = 12 the value columns go to 4 programs of 16.
// CHECK-LABEL: func.func @decode
// CHECK: tile.grid
// CHECK: %[[S0:.*]] = tile.load {{.*}} -> tensor<64x64xf32>
// CHECK: %[[KT:.*]] = tile.trans {{.*}} : tensor<64x64xf32> -> tensor<64x64xf32>
// CHECK: %[[S1:.*]] = tile.dot %[[KT]], {{.*}} : tensor<64x64xf32>, tensor<64x64xf32> -> tensor<64x64xf32>
// CHECK: tile.dot {{.*}}, %[[S1]], {{.*}} : tensor<64x64xf32>, tensor<64x64xf32> -> tensor<64x64xf32>
// CHECK: tile.store %[[S1]]
// CHUNKS-LABEL: func.func @decode
// CHUNKS: tile.grid[{{.*}}, {{.*}}, %c4]
// CHUNKS: tile.load {{.*}} -> tensor<64x16xf32>
// CHUNKS: tile.store {{.*}} : tensor<64x16xf32>
func.func @decode(%q: tensor<?x?x1x64xf32>, %k: tensor<?x?x1x64xf32>, %v: tensor<?x?x1x64xf32>, %s0: tensor<?x?x64x64xf32>)
    -> (tensor<?x?x1x64xf32>, tensor<?x?x64x64xf32>) {
  %o, %s = attn.linear_decode %q, %k, %v, %s0 : tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x64x64xf32> -> tensor<?x?x1x64xf32>, tensor<?x?x64x64xf32>
  return %o, %s : tensor<?x?x1x64xf32>, tensor<?x?x64x64xf32>
}

// -----

// The gradient: three sweeps of the forward's kind with the roles of q, k, v and the
// output gradient G permuted, one program per query head each. dQ walks the blocks first
// to last (rows G, keys V, values K); dK (rows V, keys G, values Q), then dV (rows K,
// keys Q, values G), walk them last to first. A grouped sweep has two grids, of which a
// shape's launch runs the one with programs (no branch per block): heads where groups
// are one head (storing dK / dV directly), else none; and heads where groups are larger
// (storing f32 per head, summed by one more grid per key / value head, also empty for
// groups of one), else none.
// CHECK-LABEL: func.func @lightning_grad
// CHECK-SAME: (%[[Q:[a-z0-9]+]]: {{.*}}, %[[K:[a-z0-9]+]]: {{.*}}, %[[V:[a-z0-9]+]]: {{.*}}, %[[G:[a-z0-9]+]]: {{.*}}, %[[LAM:[a-z0-9]+]]: {{.*}}, %[[DQ:[a-z0-9]+]]: {{.*}}, %[[DK:[a-z0-9]+]]: {{.*}}, %[[DV:[a-z0-9]+]]:
// CHECK: tile.grid
// CHECK: scf.for {{.*}} -> (tensor<64x64xf32>)
// CHECK: %[[QG:.*]] = tile.load %[[G]]
// CHECK: tile.load %[[V]]
// CHECK: tile.load %[[K]]
// CHECK: tile.dot %[[QG]]
// CHECK: tile.store {{.*}}, %[[DQ]]
// CHECK: %[[SEVERAL:.*]] = arith.cmpi ne, %[[H:.*]], %[[KVH:.*]] : index
// CHECK: %[[SUM_HEADS:.*]] = arith.select %[[SEVERAL]], %[[H]], %{{.*}} : index
// CHECK: %[[ONE_HEADS:.*]] = arith.cmpi eq, %[[H]], %[[KVH]] : index
// CHECK: %[[ALONE_HEADS:.*]] = arith.select %[[ONE_HEADS]], %[[H]], %{{.*}} : index
// CHECK: %[[SEVERAL_KV:.*]] = arith.cmpi ne, %[[KVH]], %[[H]] : index
// CHECK: %[[SUM_KV_HEADS:.*]] = arith.select %[[SEVERAL_KV]], %[[KVH]], %{{.*}} : index
// CHECK: %[[DK_SUM:.*]] = memref.alloc({{.*}}, %[[SUM_HEADS]], {{.*}}) : memref<?x?x?x64xf32>
// CHECK: tile.grid[{{.*}}, %[[ALONE_HEADS]], {{.*}}]
// CHECK: scf.for {{.*}} -> (tensor<64x64xf32>)
// CHECK: arith.subi
// CHECK: %[[KV:.*]] = tile.load %[[V]]
// CHECK: tile.load %[[G]]
// CHECK: tile.load %[[Q]]
// CHECK: tile.dot %[[KV]]
// CHECK-NOT: scf.if
// CHECK: tile.store {{.*}}, %[[DK]]
// CHECK: tile.grid[{{.*}}, %[[SUM_HEADS]], {{.*}}]
// CHECK: scf.for {{.*}} -> (tensor<64x64xf32>)
// CHECK-NOT: scf.if
// CHECK: tile.store {{.*}}, %[[DK_SUM]]
// CHECK: tile.grid[%[[SUM_KV_HEADS]], {{.*}}]
// CHECK: scf.for
// CHECK: scf.for {{.*}} -> (tensor<32x64xf32>)
// CHECK: tile.load %[[DK_SUM]]
// CHECK: tile.store {{.*}}, %[[DK]]
// CHECK: %[[DV_SUM:.*]] = memref.alloc({{.*}}) : memref<?x?x?x64xf32>
// CHECK: tile.grid
// CHECK: scf.for {{.*}} -> (tensor<64x64xf32>)
// CHECK: %[[VK:.*]] = tile.load %[[K]]
// CHECK: tile.load %[[Q]]
// CHECK: tile.load %[[G]]
// CHECK: tile.dot %[[VK]]
// CHECK: tile.store {{.*}}, %[[DV]]
// CHECK: tile.grid
// CHECK: tile.store {{.*}}, %[[DV_SUM]]
// CHECK: tile.grid
// CHECK: tile.load %[[DV_SUM]]
// CHECK: tile.store {{.*}}, %[[DV]]
// With split = 12 (one piece of 64 value columns, so 12 sequence chunks) each sweep
// first stores every chunk's own state (from zero over its blocks), a scan (one program
// per head, batch and band of columns walking the chunks) turns those into the states the chunks start
// from, and the sweep's programs start from them.
// CHUNKS-LABEL: func.func @lightning_grad
// CHUNKS: %[[OWN_S:.*]] = memref.alloc({{.*}}) : memref<?x?x12x64x64xf32>
// CHUNKS: tile.grid[%c11{{.*}}, {{.*}}, {{.*}}]
// CHUNKS: tile.store {{.*}}, %[[OWN_S]]
// CHUNKS: tile.grid[{{.*}}, {{.*}}, %c4{{.*}}]
// CHUNKS: tile.store {{.*}}, %[[OWN_S]]
// CHUNKS: tile.grid[%c12{{.*}}, {{.*}}, {{.*}}]
// CHUNKS: tile.load %[[OWN_S]]
// CHUNKS: %[[OWN_DSK:.*]] = memref.alloc({{.*}}) : memref<?x?x12x64x64xf32>
// CHUNKS: tile.grid[%c11{{.*}}, {{.*}}, {{.*}}]
// CHUNKS: tile.store {{.*}}, %[[OWN_DSK]]
// CHUNKS: tile.grid[{{.*}}, {{.*}}, %c4{{.*}}]
// CHUNKS: tile.store {{.*}}, %[[OWN_DSK]]
// CHUNKS: tile.grid[%c12{{.*}}, {{.*}}, {{.*}}]
// CHUNKS: tile.load %[[OWN_DSK]]
// CHUNKS: scf.for
func.func @lightning_grad(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>, %do: tensor<?x?x?x64xf32>, %lam: tensor<?xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>) {
  %dq, %dk, %dv = attn.linear_attention_grad %q, %k, %v, %do decay(%lam : tensor<?xf32>) {causal} : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>
  return %dq, %dk, %dv : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>
}

// -----

// Block-sparse attention: a pass over the list checks that its blocks ascend (no
// repeats possible), finds its last listed entry and, for a list that ascends with no -1
// inside, how many of its tiles lie before each causal / window bound. Then, if any
// tile is listed: a loop with no branch in the body over an ascending list's whole
// tiles (here no bound cuts a tile before them), and a masked loop continuing it for
// the rest — the partial tiles of an ascending list, every tile of one that does not
// ascend. It has no branch around its products either: a tile that is not listed, a
// repeat (a scalar search of the earlier entries, for a list that does not ascend) or
// out of range is masked whole (its keys all taken as past the end). Both load
// K / V before their products (so a GPU can prefetch them) and read clamped places, so
// each is speculable. With one stage (nothing prefetched) the masked-or-not loop
// alone, entry j read in iteration j (a GPU reads it an iteration early itself:
// tessera-tgpu-read-ahead).
// CHECK-LABEL: func.func @block_sparse
// CHECK-SAME: %[[LIST:[^:]+]]: memref<?x?x?x?xi32
// CHECK: tile.grid
// CHECK: %[[SCAN:.*]]:9 = scf.for
// CHECK: memref.load %[[LIST]]
// CHECK: arith.cmpi sgt
// CHECK: scf.if
// CHECK: scf.for %{{.*}} = %[[WHOLE:[^ ]+]] to %[[WHOLE_END:[^ ]+]] step
// CHECK: memref.load %[[LIST]]
// CHECK: %[[K1:.*]] = tile.load
// CHECK-NOT: scf.if
// CHECK: tile.trans %[[K1]]
// CHECK-NOT: scf.if
// CHECK: } {tile.speculable}
// CHECK: scf.for %{{.*}} = %[[WHOLE_END]] to
// CHECK: %[[ENTRY:.*]] = memref.load %[[LIST]]
// CHECK: scf.if %[[SCAN]]#1 -> (i1)
// CHECK: } else {
// CHECK: scf.for
// CHECK: arith.cmpi eq, %{{.*}}, %[[ENTRY]]
// CHECK: %[[K:.*]] = tile.load
// CHECK: %[[V:.*]] = tile.load
// CHECK-NOT: scf.if
// CHECK: tile.trans %[[K]]
// CHECK-NOT: scf.if
// CHECK: %[[END:.*]] = arith.select %[[VISIT:[^,]+]], %{{.*}}, %c0_i32
// CHECK: %[[ENDS:.*]] = tensor.splat %[[END]]
// CHECK: arith.cmpi slt, %{{.*}}, %[[ENDS]]
// CHECK-NOT: scf.if
// CHECK: tile.dot {{.*}}, %[[V]]
// CHECK: } {tile.continues_previous, tile.speculable}
// ONE-STAGE-LABEL: func.func @block_sparse
// ONE-STAGE: scf.if
// ONE-STAGE: scf.for %[[J:[^ ]+]] = {{.*}} iter_args(%{{.*}}) -> (tensor
// ONE-STAGE-NEXT: arith.divsi %[[J]]
// ONE-STAGE: memref.load
// ONE-STAGE-NOT: scf.yield %{{.*}} : i32,
// ONE-STAGE: } {tile.speculable}
func.func @block_sparse(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>, %list: tensor<?x?x?x?xi32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v blocks(%list : tensor<?x?x?x?xi32>) {block_q = 64 : i64, block_k = 64 : i64} : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// Compression: one program per pooled row, the block read in tiles of block_m rows
// (64 = 2 x 32), summed over rows and scaled by 1 / block.
// CHECK-LABEL: func.func @compress
// CHECK: tile.grid
// CHECK: scf.for
// CHECK: %[[ROWS:.*]] = tile.load {{.*}} -> tensor<32x64xf32>
// CHECK: tile.reduce <sum> %[[ROWS]] axis 0
// CHECK: arith.constant dense<1.562500e-02> : tensor<64xf32>
// CHECK: tile.store {{.*}} : tensor<64xf32>
func.func @compress(%k: tensor<?x?x?x64xf32>) -> tensor<?x?x?x64xf32> {
  %kb = attn.compress %k {block = 64 : i64, stride = 64 : i64} : tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>
  return %kb : tensor<?x?x?x64xf32>
}

// -----

// Top-k: a score grid into an f32 scratch [B, H, blocks, NB], then a selection grid
// that merges a [rows, k] list with each tile of block_n scores.
// CHECK-LABEL: func.func @topk
// CHECK: %[[SCORES:.*]] = memref.alloc({{.*}}) : memref<?x?x?x?xf32>
// CHECK: tile.grid
// CHECK: tile.dot {{.*}} -> tensor<32x16xf32>
// CHECK: tile.store {{.*}}, %[[SCORES]]
// CHECK: tile.grid
// CHECK: tile.load %[[SCORES]]{{.*}} {padding = 0xFF800000 : f32} : memref<?x?x?x?xf32> -> tensor<32x16xf32>
// CHECK: tile.reduce <max> {{.*}} -> tensor<32xf32>
// CHECK: tile.store {{.*}} : tensor<32x3xi32>
func.func @topk(%q: tensor<?x?x?x64xf32>, %kb: tensor<?x?x?x64xf32>) -> tensor<?x?x?x3xi32> {
  %idx = attn.block_topk %q, %kb {block_q = 1 : i64, block_k = 64 : i64, k = 3 : i64, causal, include_current}
      : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x3xi32>
  return %idx : tensor<?x?x?x3xi32>
}

// -----

// LSH sort, in products only, as a counting sort in four grids. 1: per row tile, the
// hash codes (R padded to 16 columns) transposed onto one row per bucket slot (64: 16 per
// warp), each slot's count a row sum. 2: per (head, batch), over chunks of 64 tiles, the
// exclusive prefix of the counts (a triangular product, totals carried as ones times the
// counts), the buckets' starts (three byte-wise products by a triangle) added after.
// 3: per row tile, each row's rank (a triangular product within the tile on top of its
// tile's offsets). 4: perm[rank] = row.
// CHECK-LABEL: func.func @lsh
// CHECK: %[[COUNTS:.*]] = memref.alloc({{.*}}) : memref<?x?x?x64xi32>
// CHECK: tile.grid
// CHECK: tile.dot {{.*}} : tensor<32x64xf32>, tensor<64x16xf32> -> tensor<32x16xf32>
// CHECK: tile.dot {{.*}} : tensor<64x16xf32>, tensor<16x32xf32> -> tensor<64x32xf32>
// CHECK: tile.reduce <sum> {{.*}} axis 1 : tensor<64x32xi32> -> tensor<64xi32>
// CHECK: tile.store {{.*}}, %[[COUNTS]]{{.*}} : tensor<64xi32>
// CHECK: %[[OFFSETS:.*]] = memref.alloc({{.*}}) : memref<?x?x?x64xi32>
// CHECK: tile.grid
// CHECK: scf.for
// CHECK: tile.load %[[COUNTS]]{{.*}} -> tensor<64x64xi32>
// CHECK: tile.store {{.*}}, %[[OFFSETS]]
// CHECK-COUNT-3: tile.dot {{.*}} : tensor<64x64xf32>, tensor<64x64xf32> -> tensor<64x64xf32>
// CHECK: scf.for
// CHECK: tile.load %[[OFFSETS]]
// CHECK: tile.store {{.*}}, %[[OFFSETS]]
// CHECK: %[[RANKS:.*]] = memref.alloc({{.*}}) : memref<?x?x?xi32>
// CHECK: tile.grid
// CHECK: tile.load %[[OFFSETS]]{{.*}} -> tensor<64xi32>
// CHECK: tile.dot {{.*}} : tensor<32x32xf32>, tensor<32x64xf32> -> tensor<32x64xf32>
// CHECK: tile.store {{.*}}, %[[RANKS]]{{.*}} : tensor<32xi32>
// CHECK: tile.grid
// CHECK: memref.load %[[RANKS]]
// CHECK: tile.store {{.*}} : tensor<1xi32>
func.func @lsh(%x: tensor<?x?x?x64xf32>, %r: tensor<64x3xf32>) -> tensor<?x?x?xi32> {
  %p = attn.lsh_sort %x, %r : tensor<?x?x?x64xf32>, tensor<64x3xf32> -> tensor<?x?x?xi32>
  return %p : tensor<?x?x?xi32>
}

// -----

// Gather and scatter move one row per step; the scatter first clears its output. The
// gathered intermediate takes its row count from the index list.
// CHECK-LABEL: func.func @rows
// CHECK: %[[M:.*]] = memref.dim %arg1, %c0
// CHECK: memref.alloc(%{{.*}}, %{{.*}}, %[[M]])
// CHECK: tile.grid
// CHECK: %[[I:.*]] = memref.load %arg1
// CHECK: tile.load {{.*}} -> tensor<64xf32>
// CHECK: tile.grid
// CHECK: tile.store %{{.*}} : tensor<32x64xf32>
// CHECK: tile.grid
func.func @rows(%x: tensor<?x?x?x64xf32>, %j: tensor<?xi32>) -> tensor<?x?x?x64xf32> {
  %g = attn.gather_rows %x[%j] : tensor<?x?x?x64xf32>, tensor<?xi32> -> tensor<?x?x?x64xf32>
  %s = attn.scatter_rows %g[%j] : tensor<?x?x?x64xf32>, tensor<?xi32> -> tensor<?x?x?x64xf32>
  return %s : tensor<?x?x?x64xf32>
}

// -----

// Merge and gate: element-wise over row tiles.
// CHECK-LABEL: func.func @combine
// CHECK: tile.grid
// CHECK: math.log
// CHECK: tile.store {{.*}} : tensor<32x64xf32>
// CHECK: tile.store {{.*}} : tensor<32xf32>
// CHECK: tile.grid
// CHECK: tile.load {{.*}} -> tensor<32x1xf32>
// CHECK: tile.reduce <sum> {{.*}} axis 1
func.func @combine(%oa: tensor<?x?x?x64xf32>, %la: tensor<?x?x?xf32>, %ob: tensor<?x?x?x64xf32>,
                   %lb: tensor<?x?x?xf32>, %g: tensor<?x?x?x1xf32>) -> tensor<?x?x?x64xf32> {
  %o, %l = attn.merge %oa, %la, %ob, %lb : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  %r = attn.gate %g, %o : tensor<?x?x?x1xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>
  return %r : tensor<?x?x?x64xf32>
}

// -----

// Per-token block lists (block_q = 1): the tile visits the union of its rows' lists in
// increasing order (a while loop on the next listed block), each block masked to the
// rows that listed it.
// CHECK-LABEL: func.func @token_lists
// CHECK: tile.grid
// CHECK: tile.load %arg3{{.*}} {padding = -1 : i32} : memref<?x?x?x?xi32, strided<[?, ?, ?, ?], offset: ?>> -> tensor<32x1xi32>
// CHECK: scf.while
// CHECK: scf.condition
// CHECK: tile.dot
func.func @token_lists(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>,
                       %idx: tensor<?x?x?x?xi32>) -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v blocks(%idx : tensor<?x?x?x?xi32>) {causal, block_q = 1 : i64, block_k = 32 : i64}
      : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// Shifts and masks in a mask_mod (Morton-style blocks) are bounded per tile: '>>' by a
// constant maps the ends of the row and key ranges, '&' by 7 lands in [0, 7], so the
// tile is decided by scalars before any element-wise evaluation.
// CHECK-LABEL: func.func @shifted_blocks
// CHECK: tile.grid
// CHECK: scf.for
// CHECK-COUNT-4: arith.shrsi {{.*}} : i32
// CHECK: %[[LO:.*]] = arith.constant 0 : i32
// CHECK: %[[HI:.*]] = arith.constant 7 : i32
// CHECK: arith.cmpi sge, %[[LO]],
// CHECK: arith.cmpi slt, %[[HI]],
// CHECK: %[[NONE:.*]] = arith.ori
// CHECK: scf.if %[[NONE]] -> (i32)
// CHECK: arith.shrsi {{.*}} : tensor<32xi32>
// CHECK: arith.shrsi {{.*}} : tensor<16xi32>
// CHECK: arith.andi {{.*}} : tensor<16xi32>
func.func @shifted_blocks(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
    mask_mod {
    ^bb0(%b: i32, %h: i32, %i: i32, %j: i32):
      %c5 = arith.constant 5 : i32
      %c7 = arith.constant 7 : i32
      %bi = arith.shrsi %i, %c5 : i32
      %bj = arith.shrsi %j, %c5 : i32
      %x = arith.andi %bj, %c7 : i32
      %same = arith.cmpi sle, %bi, %bj : i32
      %small = arith.cmpi slt, %x, %c7 : i32
      %keep = arith.andi %same, %small : i1
      attn.yield %keep : i1
    }
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}

// -----

// A window without causal keeps |j - (i + Nk - Nq)| < w: the key tiles visited run from
// the first row's lower edge to the last row's diagonal + w, the whole tiles from the
// last row's lower edge to the first row's diagonal + w; boundary tiles compare both edges.
// CHECK-LABEL: func.func @bidirectional_window
// CHECK: tile.grid
// CHECK: %[[DIAG:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: %[[LAST:.*]] = arith.addi %[[DIAG]], %{{.*}} : index
// CHECK: arith.addi %[[LAST]], %{{.*}} : index
// CHECK: arith.addi %[[DIAG]], %{{.*}} : index
// CHECK: arith.addi %[[DIAG]], %{{.*}} : index
// CHECK: scf.for
// CHECK: arith.cmpi slt
// CHECK: arith.cmpi slt
// CHECK: arith.cmpi sgt
// CHECK: scf.for
// CHECK: scf.for
func.func @bidirectional_window(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x64xf32>)
    -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v {window = 8 : i64} : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}
