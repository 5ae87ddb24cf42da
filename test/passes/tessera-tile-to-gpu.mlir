// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(tessera-tile-to-tgpu, tessera-tile-to-gpu, gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s
// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(tessera-tile-to-tgpu{wgmma=true}, tessera-tile-to-gpu, gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=WGMMA
// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(tessera-tile-to-tgpu{wgmma=true}, tessera-tgpu-outline-kernels{min-blocks=4}, tessera-tile-to-gpu, gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s --check-prefix=BLOCKS
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tile-to-gpu | FileCheck %s --check-prefix=HANDOFF

// A tile program becomes a kernel in a gpu.module: one block per program (32 x num_warps
// threads), tile.dot as mma.sync m16n8k16, the key tile staged in shared memory and read
// with ldmatrix, the row reduction finished with quad shuffles; the host function keeps
// a launch record with the grid as a formula of its arguments' sizes.
// CHECK-LABEL: func.func @scores
// CHECK-SAME: tessera.launches = [{block = 128 : i64, grid = [array<i64: 0, 0, 64>], kernel = "scores_kernel0", smem = 10240 : i64}]
// CHECK-NOT: tile.grid
// CHECK: gpu.module @scores_kernels
// CHECK: gpu.func @scores_kernel0
// CHECK-SAME: kernel
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: %[[ARENA:.*]] = gpu.dynamic_shared_memory
// CHECK: %[[SMEM:.*]] = memref.view %[[ARENA]]{{.*}} to memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK: gpu.block_id x
// CHECK: tgpu.barrier
// CHECK: vector.load {{.*}} : memref<?x64xbf16, strided<[?, 1], offset: ?>>, vector<8xbf16>
// CHECK: vector.store {{.*}}, %[[SMEM]]
// CHECK: tgpu.barrier
// CHECK: nvgpu.ldmatrix %[[SMEM]]
// CHECK: nvvm.mma.sync
// CHECK-SAME: shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK: gpu.shuffle xor
// CHECK: gpu.shuffle xor
// CHECK: memref.store
// CHECK: gpu.return
// With wgmma (Hopper) the same program stages both operands in dynamic shared memory
// (1024-byte aligned, 128-byte swizzle) with cp.async, fences them for the async proxy
// and multiplies with one wgmma per 16 columns of the contraction; the accumulator keeps
// the mma.sync layout, so the row reduction is unchanged.
// WGMMA-LABEL: func.func @scores
// WGMMA-SAME: smem = 17408 : i64
// WGMMA: gpu.func @scores_kernel0
// WGMMA: %[[ARENA:.*]] = gpu.dynamic_shared_memory
// WGMMA: memref.view %[[ARENA]]
// WGMMA: memref.view %[[ARENA]]
// WGMMA: nvgpu.device_async_copy {{.*}}, 8, {{.*}} {bypassL1}
// WGMMA: tgpu.async_commit_group
// WGMMA: nvgpu.device_async_copy {{.*}}, 8, {{.*}} {bypassL1}
// WGMMA: tgpu.async_commit_group
// WGMMA: tgpu.async_wait pending = 0
// WGMMA: tgpu.fence_async_shared
// WGMMA: tgpu.barrier
// WGMMA: nvvm.wgmma.fence.aligned
// WGMMA: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 64, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// WGMMA-COUNT-3: nvvm.wgmma.mma_async {{.*}} D[<f32>, <one>]
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA: tgpu.warpgroup_wait {{.*}}pending = 0
// WGMMA: gpu.shuffle xor
// min_blocks asks ptxas to leave registers for that many blocks per SM.
// BLOCKS-LABEL: func.func @scores
// BLOCKS: gpu.func @scores_kernel0
// BLOCKS-SAME: nvvm.minctasm = 4 : i32
func.func @scores(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                  %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                  %m: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %q, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %ktt = tile.trans %kt : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    %mx = tile.reduce <max> %s axis 1 : tensor<64x64xf32> -> tensor<64xf32>
    tile.store %mx, %m[%row] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}


// -----

// Each product waits only for its own operands' copy groups: Q·Kᵀ leaves V's copies in
// flight (wait_group 1), P·V waits for them. exp2 is one ex2.approx.ftz per element.
// CHECK-LABEL: func.func @two_products
// CHECK: nvvm.mma.sync
// WGMMA-LABEL: func.func @two_products
// WGMMA-COUNT-3: tgpu.async_commit_group
// WGMMA-NEXT: tgpu.async_wait pending = 1
// WGMMA-NEXT: tgpu.fence_async_shared
// WGMMA-NEXT: tgpu.barrier
// WGMMA: nvvm.wgmma.mma_async
// WGMMA: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"
// WGMMA-NOT: math.exp2
// WGMMA: tgpu.async_wait pending = 0
// WGMMA-NEXT: tgpu.fence_async_shared
// WGMMA-NEXT: tgpu.barrier
// WGMMA: wgmma.mma_async
func.func @two_products(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                        %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                        %v: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                        %o: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %q, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %vt = tile.load %v[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %ktt = tile.trans %kt : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    %p = math.exp2 %s : tensor<64x64xf32>
    %pb = arith.truncf %p : tensor<64x64xf32> to tensor<64x64xbf16>
    %out = tile.dot %pb, %vt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    tile.store %out, %o[%row, %c0] : tensor<64x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Two stages at D = 128: double-buffering K and V (80 KiB) would leave two blocks per
// SM, K alone (64 KiB) three, so only K is copied an iteration ahead. Each iteration
// copies its own V, then the next K (the prologue Q and the first K), waits for its K
// (wait_group 2: V and the next K fly on), then for V before P·V (wait_group 1); ptxas
// is asked for three blocks per SM.
// CHECK-LABEL: func.func @key_loop
// CHECK: nvvm.mma.sync
// WGMMA-LABEL: func.func @key_loop
// WGMMA-SAME: smem = 66560
// WGMMA: gpu.func @key_loop_kernel0
// WGMMA-SAME: nvvm.minctasm = 3 : i32
// WGMMA-COUNT-2: tgpu.async_commit_group
// WGMMA: scf.for
// WGMMA: tgpu.barrier
// WGMMA-NOT: nvvm.cp.async.wait.group
// WGMMA: tgpu.async_commit_group
// WGMMA-NOT: nvvm.cp.async.wait.group
// WGMMA: tgpu.async_commit_group
// WGMMA-NEXT: tgpu.async_wait pending = 2
// WGMMA: nvvm.wgmma.mma_async
// WGMMA: tgpu.async_wait pending = 1
// WGMMA: wgmma.mma_async
func.func @key_loop(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A right operand narrowed from a loaded f32 tile (a hash projection) has no 16-bit load
// to stage: it is computed in the accumulator layout, stored to shared memory and read
// back by ldmatrix. A one-element tile (a row mover's index) is held by every thread and
// stored by the first.
// CHECK-LABEL: func.func @narrowed_operand
// CHECK: gpu.func @narrowed_operand_kernel0
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK: tgpu.barrier
// CHECK: memref.store {{.*}} : memref<64x24xbf16, #gpu.address_space<workgroup>>
// CHECK: tgpu.barrier
// CHECK: nvgpu.ldmatrix
// CHECK: nvvm.mma.sync
// CHECK: %[[FIRST:.*]] = arith.cmpi eq, %[[TID]], %{{.*}} : index
// CHECK: %[[OK:.*]] = arith.andi %[[FIRST]]
// CHECK: scf.if %[[OK]]
// CHECK-NEXT: memref.store {{.*}} : memref<?xi32, strided<[1], offset: ?>>
func.func @narrowed_operand(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                            %r: memref<64x7xf32, strided<[?, ?], offset: ?>>,
                            %o: memref<?x16xf32, strided<[?, ?], offset: ?>>,
                            %ids: memref<?xi32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %x, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %xt = tile.load %x[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %rt = tile.load %r[%c0, %c0] : memref<64x7xf32, strided<[?, ?], offset: ?>> -> tensor<64x16xf32>
    %rb = arith.truncf %rt : tensor<64x16xf32> to tensor<64x16xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x16xf32>
    %p = tile.dot %xt, %rb, %zero : tensor<64x64xbf16>, tensor<64x16xbf16> -> tensor<64x16xf32>
    tile.store %p, %o[%row, %c0] : tensor<64x16xf32>, memref<?x16xf32, strided<[?, ?], offset: ?>>
    %ci = arith.index_cast %i : index to i32
    %s = tensor.splat %ci : tensor<1xi32>
    tile.store %s, %ids[%i] : tensor<1xi32>, memref<?xi32, strided<[?], offset: ?>>
  }
  return
}

// -----

// A narrow tile (a gate column, [64, 1]) takes RowSpan: each thread loads its rows whole
// and reduces them with no shuffle; the row result is stored by quad leaders.
// CHECK-LABEL: func.func @narrow_column
// CHECK: gpu.func @narrow_column_kernel0
// CHECK-COUNT-2: memref.load %{{.*}} : memref<?x?x3xf32
// CHECK-NOT: gpu.shuffle
// CHECK: memref.store
func.func @narrow_column(%gates: memref<?x?x3xf32, strided<[?, ?, ?], offset: ?>>,
                         %out: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %n = memref.dim %gates, %c1 : memref<?x?x3xf32, strided<[?, ?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %g = tile.load %gates[%c0, %row, %c2] : memref<?x?x3xf32, strided<[?, ?, ?], offset: ?>> -> tensor<64x1xf32>
    %r = tile.reduce <sum> %g axis 1 : tensor<64x1xf32> -> tensor<64xf32>
    tile.store %r, %out[%row] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}

// -----

// A while loop (the per-token list walk) carries its tiles as slots: a [64] row tile is
// two f32 per thread with four warps.
// CHECK-LABEL: func.func @while_rows
// CHECK: scf.while (%{{.*}} = %{{.*}}, %[[A:.*]] = %{{.*}}, %[[B:.*]] = %{{.*}}) : (i32, f32, f32) -> (i32, f32, f32)
// CHECK: scf.condition(%{{.*}}) %{{.*}}, %{{.*}}, %{{.*}} : i32, f32, f32
// CHECK: ^bb0(%{{.*}}: i32, %[[X:.*]]: f32, %[[Y:.*]]: f32):
// CHECK: arith.addf %[[X]]
// CHECK: arith.addf %[[Y]]
// CHECK: scf.yield {{.*}} : i32, f32, f32
// The element-wise op stays on tiles cast from its operands' slots, its result cast
// back to slots, for tessera-convert-tgpu-to-nvvm.
// HANDOFF-LABEL: gpu.func @while_rows_kernel0
// HANDOFF: ^bb0(%{{.*}}: i32, %[[X:.*]]: f32, %[[Y:.*]]: f32):
// HANDOFF: %[[T:.*]] = builtin.unrealized_conversion_cast %[[X]], %[[Y]] : f32, f32 to tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
// HANDOFF: %[[ONES:.*]] = builtin.unrealized_conversion_cast %[[C:.*]], %[[C]] : f32, f32 to tensor<64xf32
// HANDOFF: %[[S:.*]] = arith.addf %[[T]], %[[ONES]] : tensor<64xf32, #tgpu.slice
// HANDOFF: %[[SLOTS:.*]]:2 = builtin.unrealized_conversion_cast %[[S]] : tensor<64xf32, {{.*}}> to f32, f32
// HANDOFF: scf.yield %{{.*}}, %[[SLOTS]]#0, %[[SLOTS]]#1 : i32, f32, f32
func.func @while_rows(%x: memref<?xf32, strided<[?], offset: ?>>) {
  %n = arith.constant 3 : i32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %zero = arith.constant 0 : i32
    %one = arith.constant 1 : i32
    %t0 = tile.load %x[%c0] : memref<?xf32, strided<[?], offset: ?>> -> tensor<64xf32>
    %ones = arith.constant dense<1.0> : tensor<64xf32>
    %r:2 = scf.while (%i = %zero, %t = %t0) : (i32, tensor<64xf32>) -> (i32, tensor<64xf32>) {
      %go = arith.cmpi slt, %i, %n : i32
      scf.condition(%go) %i, %t : i32, tensor<64xf32>
    } do {
    ^bb0(%i2: i32, %t2: tensor<64xf32>):
      %next = arith.addi %i2, %one : i32
      %u = arith.addf %t2, %ones : tensor<64xf32>
      scf.yield %next, %u : i32, tensor<64xf32>
    }
    tile.store %r#1, %x[%c0] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}

// -----

// Broadcasts into a narrow tile: a row value over its row, a short vector (every thread
// holds it whole) over every row; each thread stores its rows' three columns.
// CHECK-LABEL: func.func @narrow_broadcast
// CHECK-NOT: gpu.shuffle
// CHECK: memref.store %{{.*}}, %{{.*}}[%[[ROW:.*]], %c0]
// CHECK: memref.store %{{.*}}, %{{.*}}[%[[ROW]], %c1]
// CHECK: memref.store %{{.*}}, %{{.*}}[%[[ROW]], %c2]
func.func @narrow_broadcast(%out: memref<?x3xi32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %rows = tile.range %c0 : tensor<64xi32>
    %slots = tile.range %c0 : tensor<3xi32>
    %wide = tile.broadcast %slots axis 0 : tensor<3xi32> -> tensor<64x3xi32>
    %mine = tile.broadcast %rows axis 1 : tensor<64xi32> -> tensor<64x3xi32>
    %sum = arith.addi %wide, %mine : tensor<64x3xi32>
    tile.store %sum, %out[%c0, %c0] : tensor<64x3xi32>, memref<?x3xi32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Linear attention's shapes: Kᵀ (a transposed load) is a left operand read from K's
// staging buffer with ldmatrix .trans; the computed state, read whole as a right operand,
// is staged from registers (stores between two barriers) into the dynamic shared arena.
// CHECK-LABEL: func.func @state_product
// CHECK: gpu.func @state_product_kernel0
// CHECK: %[[ARENA:.*]] = gpu.dynamic_shared_memory
// CHECK-COUNT-3: memref.view %[[ARENA]]
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// CHECK: nvvm.mma.sync
// CHECK: tgpu.barrier
// CHECK: memref.store {{.*}} : memref<64x72xbf16, #gpu.address_space<workgroup>>
// CHECK: tgpu.barrier
// CHECK: nvgpu.ldmatrix
// CHECK: nvvm.mma.sync
// CHECK: gpu.return
// With wgmma the state goes to a 128-byte-swizzled buffer: every pair of a thread's
// accumulator slots is stored at one per-thread base XOR its 16-byte chunk (8 columns)
// plus a constant row offset (8 rows = 512 elements), not at an address of its own.
// The state takes the bytes of K's buffer, dead by then (tessera-tgpu-allocate-shared):
// one barrier for K's readers and the state's earlier ones.
// WGMMA-LABEL: func.func @state_product
// WGMMA: tgpu.warpgroup_wait {{.*}}pending = 0
// WGMMA: tgpu.barrier
// WGMMA-NEXT: %[[G8:.*]] = arith.muli %{{.*}}, %c8
// WGMMA-NEXT: %[[LANE:.*]] = arith.addi %{{.*}}, %[[G8]]
// WGMMA-NEXT: %[[ROW:.*]] = arith.muli %{{.*}}, %c64
// WGMMA-NEXT: %[[BASE:.*]] = arith.addi %[[ROW]], %[[LANE]]
// WGMMA-NEXT: vector.from_elements
// WGMMA-NEXT: vector.store %{{.*}}, %[[BUF:.*]][%[[BASE]]]
// WGMMA-NEXT: %[[ROW8:.*]] = arith.addi %[[BASE]], %c512
// WGMMA-NEXT: vector.from_elements
// WGMMA-NEXT: vector.store %{{.*}}, %[[BUF]][%[[ROW8]]]
// WGMMA-NEXT: %[[CHUNK1:.*]] = arith.xori %[[BASE]], %c8
// WGMMA-NEXT: vector.from_elements
// WGMMA-NEXT: vector.store %{{.*}}, %[[BUF]][%[[CHUNK1]]]
// WGMMA: %[[CHUNK7:.*]] = arith.xori %[[BASE]], %c56
// WGMMA: tgpu.fence_async_shared
// WGMMA-NEXT: tgpu.barrier
func.func @state_product(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                         %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                         %v: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                         %o: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant dense<0.000000e+00> : tensor<64x64xf32>
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %qt = tile.load %q[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %vt = tile.load %v[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %ktt = tile.trans %kt : tensor<64x64xbf16> -> tensor<64x64xbf16>
    %s = tile.dot %ktt, %vt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    %sb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
    %out = tile.dot %qt, %sb, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    tile.store %out, %o[%c0, %c0] : tensor<64x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A stored splat (a zero fill) is stored like a computed tile: one 32-bit store per
// column pair of each thread's accumulator slots, under one bounds test per row (each
// thread holds rows g and g + 8 of its warp's 16, 8 pairs each).
// CHECK-LABEL: func.func @zero_fill
// CHECK: gpu.func
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<2xbf16>
// CHECK: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NOT: scf.if
// CHECK: vector.store %[[ZERO]]
// CHECK-NEXT: {{^ *[}]$}}
// CHECK: scf.if
// CHECK-COUNT-8: vector.store %[[ZERO]]
// CHECK-NEXT: {{^ *[}]$}}
// CHECK-NOT: vector.store
func.func @zero_fill(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant dense<0.0> : tensor<64x64xbf16>
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    tile.store %zero, %x[%c0, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A buffer allocated between grids becomes a trailing argument of the function and of
// every kernel, its shape recorded as formulas of the other arguments; a row tile
// reduced to a scalar combines lanes by shuffles, then warps through shared memory.
// CHECK-LABEL: func.func @workspace
// CHECK-SAME: %{{.*}}: memref<?x64xf32, strided<[?, ?], offset: ?>>, %[[WS:.*]]: memref<?xi32>
// CHECK-SAME: tessera.workspaces = [{dtype = "i32", shape = [array<i64: 0, 0, 64>]}]
// CHECK: gpu.func @workspace_kernel0
// CHECK: gpu.shuffle xor
// CHECK: gpu.shuffle xor
// CHECK: gpu.shuffle xor
// CHECK: tgpu.barrier
// CHECK: memref.store
// CHECK: gpu.func @workspace_kernel1
// CHECK: memref.load
func.func @workspace(%x: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %x, %c0 : memref<?x64xf32, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c64 : index
  %counts = memref.alloc(%tiles) : memref<?xi32>
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.program_id 0 : index
    %m0 = arith.muli %t, %c64 : index
    %rows = tile.range %m0 : tensor<64xi32>
    %sum = tile.reduce <sum> %rows axis 0 : tensor<64xi32> -> tensor<i32>
    %s = tensor.extract %sum[] : tensor<i32>
    memref.store %s, %counts[%t] : memref<?xi32>
  }
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.program_id 0 : index
    %s = memref.load %counts[%t] : memref<?xi32>
    %f = arith.sitofp %s : i32 to f32
    %v = tensor.splat %f : tensor<64x64xf32>
    %m0 = arith.muli %t, %c64 : index
    tile.store %v, %x[%m0, %c0] : tensor<64x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// An accumulator scaled along its rows (an online softmax's rescale) is multiplied only
// by warps whose factors are not all 1: a vote, then a branch that keeps the slots. A
// 16-bit block stored once after the loop goes out through a swizzled buffer no later op
// reads (the copies into it landed first), positions from an opaque thread index, then
// 16-byte rows.
// CHECK-LABEL: func.func @rescaled_output
// CHECK: nvvm.vote.sync  all
// WGMMA-LABEL: func.func @rescaled_output
// WGMMA: scf.for
// WGMMA: %[[ALL:.*]] = nvvm.vote.sync  all %{{.*}}, %{{.*}} -> i1
// WGMMA-NEXT: scf.if %[[ALL]]
// WGMMA-NEXT: scf.yield %
// WGMMA: } else {
// WGMMA: arith.mulf
// WGMMA: nvvm.wgmma.mma_async
// WGMMA: tgpu.async_wait pending = 0
// WGMMA-NEXT: tgpu.fence_async_shared
// WGMMA-NEXT: tgpu.barrier
// WGMMA-NEXT: arith.index_castui
// WGMMA-NEXT: llvm.inline_asm has_side_effects asm_dialect = att "", "=r,0"
// WGMMA-COUNT-16: vector.store {{.*}} vector<2xbf16>
// WGMMA-NEXT: tgpu.barrier
// WGMMA: vector.store {{.*}} {alignment = 16 : i64} : memref<?x64xbf16, strided<[?, 1], offset: ?>>, vector<8xbf16>
func.func @rescaled_output(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                           %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                           %f: memref<?xf32, strided<[?], offset: ?>>,
                           %o: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x64xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %zero) -> (tensor<64x64xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
      %alpha = tile.load %f[%n0] : memref<?xf32, strided<[?], offset: ?>> -> tensor<64xf32>
      %ab = tile.broadcast %alpha axis 1 : tensor<64xf32> -> tensor<64x64xf32>
      %scaled = arith.mulf %a, %ab : tensor<64x64xf32>
      %ktt = tile.trans %kt : tensor<64x64xbf16> -> tensor<64x64xbf16>
      %next = tile.dot %qt, %ktt, %scaled : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
      scf.yield %next : tensor<64x64xf32>
    }
    %ob = arith.truncf %acc : tensor<64x64xf32> to tensor<64x64xbf16>
    tile.store %ob, %o[%row, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A scatter-add: each thread adds the elements it holds (32 of a 64 x 64 accumulator
// over 4 warps) with red.global.add.f32 at the table's strided address, each under a
// branch on the mask and the table's bounds.
// CHECK-LABEL: func.func @scatter_add
// CHECK: gpu.func @scatter_add_kernel0
// CHECK: %[[BASE:.*]], %[[OFFSET:.*]], %[[SIZES:.*]]:2, %[[STRIDES:.*]]:2 = memref.extract_strided_metadata
// CHECK: %[[PTR:.*]] = memref.extract_aligned_pointer_as_index
// CHECK: %[[INSIDE:.*]] = arith.cmpi ult, %{{.*}}, %[[SIZES]]#1
// CHECK: %[[ADD:.*]] = arith.andi %{{.*}}, %[[INSIDE]]
// CHECK: scf.if %[[ADD]] {
// CHECK-NEXT: llvm.inline_asm has_side_effects asm_dialect = att "{{.*}}cvta.to.global.u64 g, $0;{{.*}}red.global.add.f32 [g], $1;{{.*}}", "l,f"
// CHECK-COUNT-31: red.global.add.f32 [g], $1;
// CHECK-NOT: red.global
// CHECK: gpu.return
func.func @scatter_add(%values: memref<?x64xf32>, %table: memref<?x?xf32>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %rows = memref.dim %values, %c0 : memref<?x64xf32>
  %tiles = arith.ceildivsi %rows, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %p = tile.program_id 0 : index
    %m = arith.muli %p, %c64 : index
    %v = tile.load %values[%m, %c0] : memref<?x64xf32> -> tensor<64x64xf32>
    %r = tile.range %m : tensor<64xi32>
    %cols = tile.range %c0 : tensor<64xi32>
    %rb = tile.broadcast %r axis 1 : tensor<64xi32> -> tensor<64x64xi32>
    %cb = tile.broadcast %cols axis 0 : tensor<64xi32> -> tensor<64x64xi32>
    %rel = arith.subi %rb, %cb : tensor<64x64xi32>
    %keep = arith.cmpi sge, %rb, %cb : tensor<64x64xi32>
    %h = arith.index_cast %p : index to i32
    %heads = tensor.splat %h : tensor<64x64xi32>
    tile.scatter_add %v, %table[%heads, %rel] mask(%keep : tensor<64x64xi1>) : tensor<64x64xf32>, memref<?x?xf32>, tensor<64x64xi32>, tensor<64x64xi32>
  }
  return
}
