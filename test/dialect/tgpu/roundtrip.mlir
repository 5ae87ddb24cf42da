// RUN: tessera-opt %s -split-input-file | tessera-opt -split-input-file | FileCheck %s
// RUN: tessera-opt %s -split-input-file --verify-roundtrip > /dev/null
// Every tgpu attribute, type and op parses, verifies and prints back to a form that
// parses again (textual and bytecode round trips).

// The register layouts: accumulators of both instruction families, dot operands, row and
// column slices, row-span and whole, right operands read whole from shared memory.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#wg = #tgpu.mma<wgmma, warps = [8, 1], instr = [64, 128, 16]>
#opa = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
#row = #tgpu.slice<dim = 1, parent = #acc>
#col = #tgpu.slice<dim = 0, parent = #acc>
#span = #tgpu.row_span<warps = 4>
#spanrow = #tgpu.slice<dim = 1, parent = #span>
#shb = #tgpu.shared_operand<parent = #wg>
#shbt = #tgpu.shared_operand<parent = #acc, transposed = true>
// CHECK-LABEL: func.func @layouts
// CHECK-SAME: tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
// CHECK-SAME: tensor<128x128xf32, #tgpu.mma<wgmma, warps = [8, 1], instr = [64, 128, 16]>>
// CHECK-SAME: tensor<64x32xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
// CHECK-SAME: tensor<32x64xbf16, #tgpu.dot_operand<b, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
// CHECK-SAME: tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
// CHECK-SAME: tensor<64xf32, #tgpu.slice<dim = 0, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
// CHECK-SAME: tensor<64x3xi32, #tgpu.row_span<warps = 4>>
// CHECK-SAME: tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.row_span<warps = 4>>>
// CHECK-SAME: tensor<3xi32, #tgpu.whole>
// CHECK-SAME: tensor<128x64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<wgmma, warps = [8, 1], instr = [64, 128, 16]>>>
// CHECK-SAME: tensor<64x128xbf16, #tgpu.shared_operand<parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, transposed = true>>
func.func @layouts(%acc: tensor<64x64xf32, #acc>, %wg: tensor<128x128xf32, #wg>,
                   %a: tensor<64x32xbf16, #opa>, %b: tensor<32x64xbf16, #opb>,
                   %r: tensor<64xf32, #row>, %c: tensor<64xf32, #col>,
                   %s: tensor<64x3xi32, #span>, %sr: tensor<64xi32, #spanrow>,
                   %w: tensor<3xi32, #tgpu.whole>, %sb: tensor<128x64xbf16, #shb>,
                   %sbt: tensor<64x128xbf16, #shbt>) {
  return
}

// -----

// The accumulator of Q·Kᵀ reused as the left operand of P·V (FlashAttention-2's P), and
// a conversion to the same type, which folds.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opa = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
// CHECK-LABEL: func.func @convert_layout
// CHECK: %[[P:.*]] = tgpu.convert_layout %{{.*}} : tensor<64x64xbf16, #tgpu.mma<{{.*}}>> -> tensor<64x64xbf16, #tgpu.dot_operand<a, {{.*}}>>
// CHECK: return %[[P]]
func.func @convert_layout(%p: tensor<64x64xbf16, #acc>) -> tensor<64x64xbf16, #opa> {
  %pa = tgpu.convert_layout %p : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
  return %pa : tensor<64x64xbf16, #opa>
}

// -----

// Shared buffers of each layout; a K tile double-buffered with cp.async and read
// transposed as the right operand; a computed tile staged into an immutable buffer.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
// CHECK-LABEL: func.func @shared_memory
// CHECK: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
// CHECK: %[[T:.*]] = tgpu.async_copy %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] into %[[K]][%[[S:.*]]] : memref<?x?x?x64xbf16> -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
// CHECK: %[[G:.*]] = tgpu.async_commit_group tokens %[[T]]
// CHECK: tgpu.async_commit_group{{$}}
// CHECK: tgpu.async_wait %[[G]] pending = 1
// CHECK: tgpu.async_wait pending = 0
// CHECK: tgpu.barrier
// CHECK: tgpu.local_load %[[K]][%[[S]]] {trans} : !tgpu.smem<{{.*}}> -> tensor<64x64xbf16, #tgpu.dot_operand<b, {{.*}}>>
// CHECK: %[[ST:.*]] = tgpu.local_alloc %{{.*}} : (tensor<64x64xbf16, #tgpu.mma<{{.*}}>>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>>
// CHECK: tgpu.local_load %[[ST]] : !tgpu.smem<64x64xbf16, #tgpu.shared<none>> -> tensor<64x64xbf16, #tgpu.dot_operand<b, {{.*}}>>
// CHECK: %[[O:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK: tgpu.local_store %{{.*}}, %[[O]] : tensor<64x64xbf16, #tgpu.mma<{{.*}}>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
func.func @shared_memory(%k: memref<?x?x?x64xbf16>, %b: index, %h: index, %n0: index,
                         %s: index, %x: tensor<64x64xbf16, #acc>) {
  %c0 = arith.constant 0 : index
  %kbuf = tgpu.local_alloc
      : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
  %t = tgpu.async_copy %k[%b, %h, %n0, %c0] into %kbuf[%s]
      : memref<?x?x?x64xbf16> -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
  %g = tgpu.async_commit_group tokens %t
  %empty = tgpu.async_commit_group
  %w = tgpu.async_wait %g pending = 1
  %all = tgpu.async_wait pending = 0
  tgpu.barrier
  %kt = tgpu.local_load %kbuf[%s] {trans}
      : !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
      -> tensor<64x64xbf16, #opb>
  %staged = tgpu.local_alloc %x
      : (tensor<64x64xbf16, #acc>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>>
  %xb = tgpu.local_load %staged : !tgpu.smem<64x64xbf16, #tgpu.shared<none>> -> tensor<64x64xbf16, #opb>
  %obuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
  tgpu.local_store %x, %obuf : tensor<64x64xbf16, #acc>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
  return
}

// -----

// A copy and read of a multi-stage buffer that leave the stage to the loop's schedule
// (tessera-tgpu-copy-staged-loads' form).
#wgs = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#wgk = #tgpu.shared_operand<parent = #wgs, transposed = true>
// CHECK-LABEL: func.func @scheduled_stage
// CHECK: %[[K:.*]] = tgpu.local_alloc : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
// CHECK: tgpu.async_copy %{{.*}}[%{{.*}}, %{{.*}}] into %[[K]] {tgpu.prefetch_distance = 1 : i64} : memref<?x128xbf16> -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
// CHECK: tgpu.local_load %[[K]] : !tgpu.smem<{{.*}}> -> tensor<64x128xbf16, #tgpu.shared_operand<{{.*}}>>
func.func @scheduled_stage(%k: memref<?x128xbf16>, %n0: index) {
  %c0 = arith.constant 0 : index
  %kbuf = tgpu.local_alloc
      : () -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
  %t = tgpu.async_copy %k[%n0, %c0] into %kbuf {tgpu.prefetch_distance = 1 : i64}
      : memref<?x128xbf16> -> !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
  %kt = tgpu.local_load %kbuf
      : !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable> -> tensor<64x128xbf16, #wgk>
  return
}

// -----

// A Hopper step: K arrives by TMA on a full-barrier, Q·Kᵀ runs as a warpgroup product
// from shared operands, P·V with P in registers; the consumer frees the stage.
#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>
#wga = #tgpu.dot_operand<a, parent = #wg, k_width = 2>
!kbuf = !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
!vbuf = !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
!qbuf = !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
// CHECK-LABEL: func.func @hopper
// CHECK: %[[FULL:.*]] = tgpu.mbarrier_alloc : !tgpu.mbarrier<2>
// CHECK: %[[EMPTY:.*]] = tgpu.mbarrier_alloc : !tgpu.mbarrier<2>
// CHECK: %[[ONE:.*]] = tgpu.mbarrier_alloc : !tgpu.mbarrier{{$}}
// CHECK: tgpu.mbarrier_init %[[FULL]] count = 1 : !tgpu.mbarrier<2>
// CHECK: tgpu.mbarrier_init %[[EMPTY]] count = 4 : !tgpu.mbarrier<2>
// CHECK: tgpu.mbarrier_init %[[ONE]] count = 1 : !tgpu.mbarrier{{$}}
// CHECK: tgpu.fence_mbarrier_init
// CHECK: tgpu.mbarrier_expect_tx %[[FULL]][%[[S:.*]]] bytes = 16384 : !tgpu.mbarrier<2>
// CHECK: tgpu.tma_load %{{.*}}[%{{.*}}, %{{.*}}] into %[[K:.*]][%[[S]]], %[[FULL]][%[[S]]] : !tgpu.tma_desc<64x128xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>, !tgpu.mbarrier<2>
// CHECK: tgpu.mbarrier_wait %[[FULL]][%[[S]]], %{{.*}} : !tgpu.mbarrier<2>
// CHECK: tgpu.fence_async_shared
// CHECK: %[[SC:.*]], %[[T1:.*]] = tgpu.warpgroup_dot %{{.*}}, %[[K]][%[[S]]], %{{.*}} {trans_b} : !tgpu.smem<64x128xbf16, {{.*}}>, !tgpu.smem<64x128xbf16, {{.*}}>, tensor<64x64xf32, #tgpu.mma<wgmma, {{.*}}>>
// CHECK: %[[SW:.*]] = tgpu.warpgroup_wait %[[SC]] pending = 0 after %[[T1]] : tensor<64x64xf32, #tgpu.mma<wgmma, {{.*}}>>
// CHECK: tgpu.mbarrier_arrive %[[EMPTY]][%[[S]]] : !tgpu.mbarrier<2>
// CHECK: tgpu.mbarrier_arrive %[[ONE]] count = 2 : !tgpu.mbarrier{{$}}
// CHECK: tgpu.mbarrier_arrive %[[ONE]] if %[[P:.*]] : !tgpu.mbarrier{{$}}
// CHECK: %[[O:.*]], %[[T2:.*]] = tgpu.warpgroup_dot %{{.*}}, %{{.*}}, %{{.*}} : tensor<64x64xbf16, #tgpu.dot_operand<a, {{.*}}>>, !tgpu.smem<64x64xbf16, {{.*}}>, tensor<64x64xf32, #tgpu.mma<wgmma, {{.*}}>>
// CHECK: tgpu.warpgroup_wait pending = 1 after %[[T2]]{{$}}
// CHECK: tgpu.tma_store %{{.*}} to %{{.*}}[%{{.*}}, %{{.*}}] : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
// CHECK: tgpu.tma_store_wait pending = 0
func.func @hopper(%kdesc: !tgpu.tma_desc<64x128xbf16, #tgpu.shared<swizzle_128b>>,
                  %odesc: !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>,
                  %q: !qbuf, %kbuf: !kbuf, %v: !vbuf, %s: index, %phase: i1,
                  %n0: i32, %c0: i32, %zero: tensor<64x64xf32, #wg>,
                  %p: tensor<64x64xbf16, #wga>) {
  %full = tgpu.mbarrier_alloc : !tgpu.mbarrier<2>
  %empty = tgpu.mbarrier_alloc : !tgpu.mbarrier<2>
  %one = tgpu.mbarrier_alloc : !tgpu.mbarrier
  tgpu.mbarrier_init %full count = 1 : !tgpu.mbarrier<2>
  tgpu.mbarrier_init %empty count = 4 : !tgpu.mbarrier<2>
  tgpu.mbarrier_init %one count = 1 : !tgpu.mbarrier
  tgpu.fence_mbarrier_init
  tgpu.mbarrier_expect_tx %full[%s] bytes = 16384 : !tgpu.mbarrier<2>
  tgpu.tma_load %kdesc[%n0, %c0] into %kbuf[%s], %full[%s]
      : !tgpu.tma_desc<64x128xbf16, #tgpu.shared<swizzle_128b>>, !kbuf, !tgpu.mbarrier<2>
  tgpu.mbarrier_wait %full[%s], %phase : !tgpu.mbarrier<2>
  tgpu.fence_async_shared
  %sc, %t1 = tgpu.warpgroup_dot %q, %kbuf[%s], %zero {trans_b}
      : !qbuf, !kbuf, tensor<64x64xf32, #wg>
  %sw = tgpu.warpgroup_wait %sc pending = 0 after %t1 : tensor<64x64xf32, #wg>
  tgpu.mbarrier_arrive %empty[%s] : !tgpu.mbarrier<2>
  tgpu.mbarrier_arrive %one count = 2 : !tgpu.mbarrier
  tgpu.mbarrier_arrive %one if %phase : !tgpu.mbarrier
  %o, %t2 = tgpu.warpgroup_dot %p, %v, %zero : tensor<64x64xbf16, #wga>, !vbuf, tensor<64x64xf32, #wg>
  tgpu.warpgroup_wait pending = 1 after %t2
  %obuf = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
  tgpu.tma_store %obuf to %odesc[%n0, %c0]
      : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>,
        !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
  tgpu.tma_store_wait pending = 0
  return
}

// -----

// A producer warp loading by TMA beside the consumer warpgroups, with register budgets;
// then a plain form without budgets and two partitions.
#wg = #tgpu.mma<wgmma, warps = [8, 1], instr = [64, 128, 16]>
// CHECK-LABEL: func.func @warp_specialize
// CHECK: %[[R:.*]] = tgpu.warp_specialize num_warps = [1] registers = [24] default_registers = 240 -> tensor<128x128xf32, #tgpu.mma<wgmma, {{.*}}>> default {
// CHECK:   tgpu.warp_yield %{{.*}} : tensor<128x128xf32, #tgpu.mma<wgmma, {{.*}}>>
// CHECK: } partitions {
// CHECK:   tgpu.mbarrier_arrive
// CHECK:   tgpu.warp_return
// CHECK: }
// CHECK: tgpu.warp_specialize num_warps = [1, 2] default {
// CHECK:   tgpu.warp_yield{{$}}
// CHECK: } partitions {
// CHECK:   tgpu.warp_return
// CHECK: }, {
// CHECK:   tgpu.warp_return
// CHECK: }
// CHECK: return %[[R]]
func.func @warp_specialize(%acc: tensor<128x128xf32, #wg>, %bar: !tgpu.mbarrier)
    -> tensor<128x128xf32, #wg> {
  %r = tgpu.warp_specialize num_warps = [1] registers = [24] default_registers = 240
      -> tensor<128x128xf32, #wg> default {
    tgpu.warp_yield %acc : tensor<128x128xf32, #wg>
  } partitions {
    tgpu.mbarrier_arrive %bar : !tgpu.mbarrier
    tgpu.warp_return
  }
  tgpu.warp_specialize num_warps = [1, 2] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }, {
    tgpu.warp_return
  }
  return %r : tensor<128x128xf32, #wg>
}

// -----

// A right operand narrower than a swizzle row (the backward's dSᵀ of 32 queries), staged
// transposed and read back transposed.
#wg = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 32, 16]>
#shb = #tgpu.shared_operand<parent = #wg>
// CHECK-LABEL: func.func @staged_transposed
// CHECK: %[[B:.*]] = tgpu.local_alloc %{{.*}} {trans} : (tensor<128x32xbf16, #tgpu.mma<{{.*}}>>) -> !tgpu.smem<32x128xbf16, #tgpu.shared<swizzle_128b>>
// CHECK: tgpu.local_load %[[B]] {trans} : !tgpu.smem<32x128xbf16, #tgpu.shared<swizzle_128b>> -> tensor<128x32xbf16, #tgpu.shared_operand<{{.*}}>>
func.func @staged_transposed(%x: tensor<128x32xbf16, #wg>) -> tensor<128x32xbf16, #shb> {
  %b = tgpu.local_alloc %x {trans} : (tensor<128x32xbf16, #wg>) -> !tgpu.smem<32x128xbf16, #tgpu.shared<swizzle_128b>>
  %r = tgpu.local_load %b {trans} : !tgpu.smem<32x128xbf16, #tgpu.shared<swizzle_128b>> -> tensor<128x32xbf16, #shb>
  return %r : tensor<128x32xbf16, #shb>
}

// -----

// A distributed kernel's wait: no token (the products issued before it count), the
// accumulators' per-thread registers passed through.
// CHECK-LABEL: func.func @registers_wait
// CHECK: %[[R:.*]]:2 = tgpu.warpgroup_wait %{{.*}}, %{{.*}} pending = 1 : f32, f32
// CHECK: tgpu.warpgroup_wait pending = 0{{$}}
func.func @registers_wait(%a: f32, %b: f32) -> (f32, f32) {
  %r:2 = tgpu.warpgroup_wait %a, %b pending = 1 : f32, f32
  tgpu.warpgroup_wait pending = 0
  return %r#0, %r#1 : f32, f32
}

// -----

// Named barriers: a warpgroup's turn (wait on its own, arrive on the other's).
// CHECK-LABEL: func.func @named_barriers
// CHECK: tgpu.named_barrier %{{.*}} threads = 256
// CHECK: tgpu.named_barrier_arrive %{{.*}} threads = 128
func.func @named_barriers(%own: i32, %other: i32) {
  tgpu.named_barrier %own threads = 256
  tgpu.named_barrier_arrive %other threads = 128
  return
}
