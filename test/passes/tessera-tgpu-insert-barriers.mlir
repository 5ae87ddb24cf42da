// RUN: tessera-opt %s -split-input-file --tessera-tgpu-insert-barriers | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-insert-barriers \
// RUN:   --tessera-tgpu-insert-barriers | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-insert-barriers=report=true \
// RUN:   -o /dev/null 2>&1 | FileCheck %s --check-prefix=REPORT
// A block barrier goes right before the first access that conflicts with one made since
// the last barrier; a second run adds nothing (the second RUN line checks the same);
// report=true says at each op why (REPORT, in the order they are put in).

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
!buf = !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// A tile written to shared memory and read back in another layout (a conversion through
// shared memory): read after write; then written again: write after read.
// CHECK-LABEL: func.func @read_after_write
// CHECK: %[[B:.*]] = tgpu.local_alloc
// CHECK-NEXT: tgpu.local_store %{{.*}}, %[[B]]
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: %[[R:.*]] = tgpu.local_load %[[B]]
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_store %{{.*}}, %[[B]]
// CHECK-NEXT: return %[[R]]
func.func @read_after_write(%x: tensor<64x64xbf16, #acc>) -> tensor<64x64xbf16, #opb> {
  %b = tgpu.local_alloc : () -> !buf
  tgpu.local_store %x, %b : tensor<64x64xbf16, #acc>, !buf
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it reads what tgpu.local_store wrote
  %r = tgpu.local_load %b : !buf -> tensor<64x64xbf16, #opb>
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it writes what tgpu.local_load read
  tgpu.local_store %x, %b : tensor<64x64xbf16, #acc>, !buf
  return %r : tensor<64x64xbf16, #opb>
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
!buf = !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
!two = !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
// Reads after reads, accesses of other buffers and of another constant stage need no
// barrier; the same stage does, and so does a stage not known to differ.
// CHECK-LABEL: func.func @no_conflict
// CHECK: tgpu.local_store %{{.*}}, %[[A:.*]] :
// CHECK-NEXT: tgpu.local_store %{{.*}}, %[[D:[^\[]*]][%[[C0:[a-z0-9_]+]]] :
// CHECK-NEXT: tgpu.local_load %[[D]][%[[C1:[a-z0-9_]+]]] :
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load %[[A]]
// CHECK-NEXT: tgpu.local_load %[[A]]
// CHECK-NEXT: tgpu.local_load %[[D]][%[[C0]]]
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_store %{{.*}}, %[[D]][%{{.*}}]
// CHECK-NEXT: return
func.func @no_conflict(%x: tensor<64x64xbf16, #acc>, %s: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = tgpu.local_alloc : () -> !buf
  %d = tgpu.local_alloc : () -> !two
  tgpu.local_store %x, %a : tensor<64x64xbf16, #acc>, !buf
  tgpu.local_store %x, %d[%c0] : tensor<64x64xbf16, #acc>, !two
  %r0 = tgpu.local_load %d[%c1] : !two -> tensor<64x64xbf16, #opb>
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it reads what tgpu.local_store wrote
  %r1 = tgpu.local_load %a : !buf -> tensor<64x64xbf16, #opb>
  %r2 = tgpu.local_load %a : !buf -> tensor<64x64xbf16, #opb>
  %r3 = tgpu.local_load %d[%c0] : !two -> tensor<64x64xbf16, #opb>
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it writes what tgpu.local_load read
  tgpu.local_store %x, %d[%s] : tensor<64x64xbf16, #acc>, !two
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
!kbuf = !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
// A double-buffered cp.async loop: the copy of tile i + 1 into stage (i + 1) % 2 flies
// while stage i % 2 is read. The barrier goes after the wait (the data lands there),
// before the read; the next iteration's copy overwrites what an earlier iteration read,
// so a barrier goes before it too. The copy before the loop needs none.
// CHECK-LABEL: func.func @pipelined_copies
// CHECK: tgpu.async_copy
// CHECK-NEXT: tgpu.async_commit_group
// CHECK-NEXT: scf.for
// CHECK: tgpu.barrier
// CHECK-NEXT: tgpu.async_copy %{{.*}} into %[[K:[^\[]*]][%[[NEXT:[a-z0-9_]+]]] :
// CHECK-NEXT: %[[G:.*]] = tgpu.async_commit_group
// CHECK-NEXT: tgpu.async_wait %[[G]] pending = 1
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load %[[K]][%[[CUR:[a-z0-9_]+]]] {trans}
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @pipelined_copies(%k: memref<?x64xbf16>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c64 = arith.constant 64 : index
  %buf = tgpu.local_alloc : () -> !kbuf
  %t0 = tgpu.async_copy %k[%c0, %c0] into %buf[%c0] : memref<?x64xbf16> -> !kbuf
  %g0 = tgpu.async_commit_group tokens %t0
  scf.for %i = %c0 to %n step %c1 {
    %i1 = arith.addi %i, %c1 : index
    %next = arith.remui %i1, %c2 : index
    %cur = arith.remui %i, %c2 : index
    %row = arith.muli %i1, %c64 : index
    %t = tgpu.async_copy %k[%row, %c0] into %buf[%next] : memref<?x64xbf16> -> !kbuf
    %g = tgpu.async_commit_group tokens %t
    %w = tgpu.async_wait %g pending = 1
    // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it reads what tgpu.async_copy wrote
    %kt = tgpu.local_load %buf[%cur] {trans} : !kbuf -> tensor<64x64xbf16, #opb>
    // REPORT: :[[@LINE-5]]:{{[0-9]+}}: remark: barrier before this op: it writes what tgpu.local_load read
  }
  return
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
!sw = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
!desc = !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
// wgmma and TMA read shared memory through the async proxy: what generic stores wrote
// needs fence.proxy.async before the barrier. A TMA load's readers wait on its mbarrier
// (no barrier), but a TMA load over a buffer read before needs one.
// CHECK-LABEL: func.func @async_proxy
// CHECK: tgpu.local_store %{{.*}}, %[[Q:.*]] :
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.warpgroup_dot %[[Q]], %[[K:.*]], %{{.*}} {trans_b}
// CHECK: tgpu.mbarrier_wait
// CHECK-NEXT: tgpu.warpgroup_dot %[[Q]], %[[K]]
// CHECK-NEXT: tgpu.warpgroup_wait
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.tma_load %{{.*}} into %[[K]], %{{.*}}
// CHECK-NEXT: tgpu.local_store %{{.*}}, %[[O:.*]] :
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.tma_store %[[O]]
func.func @async_proxy(%qdesc: !desc, %x: tensor<64x64xbf16, #wg>, %zero: tensor<64x64xf32, #wg>,
                       %c: i32, %phase: i1) {
  %full = tgpu.mbarrier_alloc : !tgpu.mbarrier
  tgpu.mbarrier_init %full count = 1 : !tgpu.mbarrier
  %q = tgpu.local_alloc : () -> !sw
  %k = tgpu.local_alloc : () -> !sw
  %o = tgpu.local_alloc : () -> !sw
  tgpu.mbarrier_expect_tx %full bytes = 8192 : !tgpu.mbarrier
  tgpu.tma_load %qdesc[%c, %c] into %k, %full : !desc, !sw, !tgpu.mbarrier
  tgpu.local_store %x, %q : tensor<64x64xbf16, #wg>, !sw
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: fence and barrier before this op: it reaches through the async proxy what tgpu.local_store wrote
  %s, %t = tgpu.warpgroup_dot %q, %k, %zero {trans_b} : !sw, !sw, tensor<64x64xf32, #wg>
  tgpu.mbarrier_wait %full, %phase : !tgpu.mbarrier
  %s2, %t2 = tgpu.warpgroup_dot %q, %k, %s {trans_b} : !sw, !sw, tensor<64x64xf32, #wg>
  %sw = tgpu.warpgroup_wait %s2 pending = 0 after %t2 : tensor<64x64xf32, #wg>
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it writes what tgpu.warpgroup_dot read
  tgpu.tma_load %qdesc[%c, %c] into %k, %full : !desc, !sw, !tgpu.mbarrier
  tgpu.local_store %x, %o : tensor<64x64xbf16, #wg>, !sw
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: fence and barrier before this op: it reaches through the async proxy what tgpu.local_store wrote
  tgpu.tma_store %o to %qdesc[%c, %c] : !sw, !desc
  return
}

// -----

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
!buf = !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// A write in one branch of an if reaches the read after it; a barrier already in the
// other branch does not settle it. A computed tile staged by local_alloc is ordered by
// the op itself, on both sides: nothing goes before it or between it and its reader,
// and the write after it conflicts with nothing before it.
// CHECK-LABEL: func.func @branches
// CHECK: scf.if
// CHECK-NEXT: tgpu.local_store
// CHECK-NEXT: } else {
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: }
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: %[[S:.*]] = tgpu.local_alloc %
// CHECK-NEXT: tgpu.local_load %[[S]]
// CHECK-NEXT: tgpu.local_store
// CHECK-NEXT: return
func.func @branches(%x: tensor<64x64xbf16, #acc>, %c: i1) {
  %b = tgpu.local_alloc : () -> !buf
  scf.if %c {
    tgpu.local_store %x, %b : tensor<64x64xbf16, #acc>, !buf
  } else {
    tgpu.barrier
  }
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it reads what tgpu.local_store wrote
  %r = tgpu.local_load %b : !buf -> tensor<64x64xbf16, #opb>
  %s = tgpu.local_alloc %x : (tensor<64x64xbf16, #acc>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>>
  %r2 = tgpu.local_load %s : !tgpu.smem<64x64xbf16, #tgpu.shared<none>> -> tensor<64x64xbf16, #opb>
  tgpu.local_store %x, %b : tensor<64x64xbf16, #acc>, !buf
  return
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#opa = #tgpu.dot_operand<a, parent = #wg, k_width = 2>
!sw = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
// The partitions of a warp_specialize synchronise through mbarriers: nothing is put in
// them. Every warp settles what is pending before the op (with a proxy fence: the
// partitions may read it by TMA or wgmma), and anything they did counts after it.
// CHECK-LABEL: func.func @warp_specialize
// CHECK: tgpu.local_store
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.warp_specialize
// CHECK-NOT: tgpu.barrier
// CHECK: tgpu.warp_return
// CHECK-NEXT: }
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
func.func @warp_specialize(%x: tensor<64x64xbf16, #wg>) {
  %b = tgpu.local_alloc : () -> !sw
  %a = tgpu.local_alloc : () -> !sw
  tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: fence and barrier before this op: its partitions read and write shared memory
  tgpu.warp_specialize num_warps = [4] default {
    %r = tgpu.local_load %b : !sw -> tensor<64x64xbf16, #opa>
    tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
    tgpu.warp_yield
  } partitions {
    tgpu.local_store %x, %a : tensor<64x64xbf16, #wg>, !sw
    %r = tgpu.local_load %a : !sw -> tensor<64x64xbf16, #opa>
    tgpu.warp_return
  }
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: a warp_specialize before it may have touched any buffer
  %r = tgpu.local_load %a : !sw -> tensor<64x64xbf16, #opa>
  return
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
!sw = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
// A barrier after a generic write orders the threads, not the proxies: a warp_specialize
// whose partitions may read the buffer by TMA or wgmma still needs the fence (and a
// barrier after it, so that every writer has fenced).
// CHECK-LABEL: func.func @fence_before_partitions
// CHECK: tgpu.local_store
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.warp_specialize
func.func @fence_before_partitions(%x: tensor<64x64xbf16, #wg>) {
  %b = tgpu.local_alloc : () -> !sw
  tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
  tgpu.barrier
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: fence and barrier before this op: its partitions read and write shared memory
  tgpu.warp_specialize num_warps = [4] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#opa = #tgpu.dot_operand<a, parent = #wg, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #wg, transposed = true>
#rhs = #tgpu.shared_operand<parent = #wg>
!sw = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
// A shared-operand tile is a view: the product reads the buffer by descriptor (the
// async proxy) where it runs, not the local_load that names it before the wait. The
// copy landed at the wait, so the product needs the proxy fence and the barrier.
// CHECK-LABEL: func.func @view_read_by_product
// CHECK: %[[KT:.*]] = tgpu.local_load
// CHECK-NEXT: tgpu.async_wait pending = 0
// CHECK-NEXT: %[[KTT:.*]] = tile.trans %[[KT]]
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tile.dot %{{.*}}, %[[KTT]]
func.func @view_read_by_product(%k: memref<?x64xbf16>, %q: tensor<64x64xbf16, #opa>,
                                %zero: tensor<64x64xf32, #wg>) -> tensor<64x64xf32, #wg> {
  %c0 = arith.constant 0 : index
  %kbuf = tgpu.local_alloc : () -> !sw
  %t = tgpu.async_copy %k[%c0, %c0] into %kbuf : memref<?x64xbf16> -> !sw
  %kt = tgpu.local_load %kbuf : !sw -> tensor<64x64xbf16, #keyT>
  %w = tgpu.async_wait pending = 0
  %ktt = tile.trans %kt : tensor<64x64xbf16, #keyT> -> tensor<64x64xbf16, #rhs>
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: fence and barrier before this op: it reaches through the async proxy what tgpu.async_copy wrote
  %s = tile.dot %q, %ktt, %zero : tensor<64x64xbf16, #opa>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #wg>
  return %s : tensor<64x64xf32, #wg>
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#opa = #tgpu.dot_operand<a, parent = #wg, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #wg, transposed = true>
#rhs = #tgpu.shared_operand<parent = #wg>
!sw = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
// K and V copied each iteration, each product after its wait and barrier. K's last
// readers are ordered by the barrier before P·V; V's are not, so the next iteration's
// copy of V needs a barrier — put before the run of copies it is in (K's first), as the
// lowering puts one barrier before a loop's copies.
// CHECK-LABEL: func.func @copy_run
// CHECK: scf.for
// CHECK-NEXT: arith.muli
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.async_copy %{{.*}} into %[[K:.*]] :
// CHECK-NEXT: tgpu.async_copy
// CHECK-NEXT: tgpu.async_wait pending = 1
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.trans
// CHECK-NEXT: tile.dot
// CHECK-NEXT: tgpu.async_wait pending = 0
// CHECK-NEXT: tgpu.fence_async_shared
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_load
// CHECK-NEXT: tile.dot
// CHECK-NEXT: scf.yield
func.func @copy_run(%k: memref<?x64xbf16>, %v: memref<?x64xbf16>, %q: tensor<64x64xbf16, #opa>,
                    %p: tensor<64x64xbf16, #opa>, %zero: tensor<64x64xf32, #wg>, %n: index)
    -> tensor<64x64xf32, #wg> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %kbuf = tgpu.local_alloc : () -> !sw
  %vbuf = tgpu.local_alloc : () -> !sw
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (tensor<64x64xf32, #wg>) {
    %row = arith.muli %i, %c64 : index
    %tk = tgpu.async_copy %k[%row, %c0] into %kbuf : memref<?x64xbf16> -> !sw
    // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op (and the copies right above it): it writes what tile.dot read
    %tv = tgpu.async_copy %v[%row, %c0] into %vbuf : memref<?x64xbf16> -> !sw
    %w1 = tgpu.async_wait pending = 1
    tgpu.fence_async_shared
    tgpu.barrier
    %kt = tgpu.local_load %kbuf : !sw -> tensor<64x64xbf16, #keyT>
    %ktt = tile.trans %kt : tensor<64x64xbf16, #keyT> -> tensor<64x64xbf16, #rhs>
    %s = tile.dot %q, %ktt, %zero : tensor<64x64xbf16, #opa>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #wg>
    %w2 = tgpu.async_wait pending = 0
    tgpu.fence_async_shared
    tgpu.barrier
    %vt = tgpu.local_load %vbuf : !sw -> tensor<64x64xbf16, #rhs>
    %o = tile.dot %p, %vt, %acc : tensor<64x64xbf16, #opa>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #wg>
    scf.yield %o : tensor<64x64xf32, #wg>
  }
  return %r : tensor<64x64xf32, #wg>
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
!sw = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
// A grid's shared-memory accesses are all ops once its waits are (tgpu.waits_placed,
// tessera-tgpu-insert-waits); until then the lowering makes its copies and barriers, and
// the pass leaves the grid alone.
// CHECK-LABEL: func.func @grids
// CHECK: tile.grid
// CHECK-NEXT: tgpu.local_alloc
// CHECK-NEXT: tgpu.local_store
// CHECK-NEXT: tgpu.local_store
// CHECK: tile.grid
// CHECK-NEXT: tgpu.local_alloc
// CHECK-NEXT: tgpu.local_store
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.local_store
func.func @grids(%x: tensor<64x64xbf16, #wg>, %n: index) {
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #wg, tgpu.operands_staged} {
    %b = tgpu.local_alloc : () -> !sw
    tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
    tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
  }
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #wg, tgpu.operands_staged, tgpu.waits_placed} {
    %b = tgpu.local_alloc : () -> !sw
    tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
    // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it writes what tgpu.local_store wrote
    tgpu.local_store %x, %b : tensor<64x64xbf16, #wg>, !sw
  }
  return
}

// -----

#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#opa = #tgpu.dot_operand<a, parent = #wg, k_width = 2>
#rhs = #tgpu.shared_operand<parent = #wg>
!two = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
// A loop's products read a stage of the buffer that the next loop's prologue copies
// into (NSA's selection loops): the stage the last iteration read is not known, so the
// prologue's copy after the loop needs a barrier (each warp's product wait covers only
// its own part of the product).
// CHECK-LABEL: func.func @prologue_after_loop
// CHECK: scf.for
// CHECK: scf.yield
// CHECK-NEXT: }
// CHECK-NEXT: tgpu.barrier
// CHECK-NEXT: tgpu.async_copy
func.func @prologue_after_loop(%k: memref<?x64xbf16>, %p: tensor<64x64xbf16, #opa>,
                               %zero: tensor<64x64xf32, #wg>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %buf = tgpu.local_alloc : () -> !two
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (tensor<64x64xf32, #wg>) {
    %s = arith.remui %i, %c1 : index
    %vt = tgpu.local_load %buf[%s] : !two -> tensor<64x64xbf16, #rhs>
    %o = tile.dot %p, %vt, %acc : tensor<64x64xbf16, #opa>, tensor<64x64xbf16, #rhs> -> tensor<64x64xf32, #wg>
    scf.yield %o : tensor<64x64xf32, #wg>
  }
  // REPORT: :[[@LINE+1]]:{{[0-9]+}}: remark: barrier before this op: it writes what tile.dot read
  %t = tgpu.async_copy %k[%c0, %c0] into %buf[%c0] : memref<?x64xbf16> -> !two
  return
}
