// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-async-to-nvvm))' | FileCheck %s
// The mbarriers and TMA copies of a kernel, named by address as tessera-tile-to-gpu
// names them (unrealized casts of the 32-bit shared addresses and the descriptor
// parameter), as PTX. Stage s of a barrier is 8 s bytes on, of a buffer s times its
// stage's bytes; a 64 x 128 swizzled box is two 64-column blocks, the second 8192 bytes
// and 64 columns on; the coordinates run innermost first.

!kbuf = !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
!kdesc = !tgpu.tma_desc<64x128xbf16, #tgpu.shared<swizzle_128b>>
// CHECK-LABEL: gpu.func @copies
// CHECK-SAME: (%[[DESC:[^:]+]]: !llvm.ptr, %[[BAR:[^:]+]]: i32, %[[BUF:[^:]+]]: i32, %[[N0:[^:]+]]: i32, %[[C0:[^:]+]]: i32, %[[S:[^:]+]]: index, %[[P:[^:]+]]: i1)
// CHECK-NOT: unrealized_conversion_cast
// CHECK: llvm.inline_asm has_side_effects asm_dialect = att "mbarrier.init.shared::cta.b64 [$0], 1;", "r" %[[BAR]] : (i32) -> ()
// CHECK: %[[ONE:.*]] = arith.index_cast{{.*}} : index to i32
// CHECK: %[[EIGHT:.*]] = arith.muli %[[ONE]], %{{.*}} : i32
// CHECK: %[[BAR1:.*]] = arith.addi %[[BAR]], %[[EIGHT]] : i32
// CHECK: "mbarrier.init.shared::cta.b64 [$0], 1;", "r" %[[BAR1]]
// CHECK: "fence.mbarrier_init.release.cluster;", ""  : () -> ()
// CHECK: %[[SI:.*]] = arith.index_cast{{.*}} %[[S]] : index to i32
// CHECK: %[[SB:.*]] = arith.muli %[[SI]], %{{.*}} : i32
// CHECK: %[[BARS:.*]] = arith.addi %[[BAR]], %[[SB]] : i32
// CHECK: %[[BYTES:.*]] = arith.constant 16384 : i32
// CHECK: "mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], $1;", "r,r" %[[BARS]], %[[BYTES]]
// CHECK: %[[STAGE_BYTES:.*]] = arith.constant 16384 : i32
// CHECK: %[[DOFF:.*]] = arith.muli %{{.*}}, %[[STAGE_BYTES]] : i32
// CHECK: %[[DST:.*]] = arith.addi %[[BUF]], %[[DOFF]] : i32
// CHECK: "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], [$1, {$2, $3}], [$4];", "r,l,r,r,r" %[[DST]], %[[DESC]], %[[C0]], %[[N0]], %{{.*}} : (i32, !llvm.ptr, i32, i32, i32) -> ()
// CHECK: %[[DST1:.*]] = arith.addi %[[DST]], %{{.*}} : i32
// CHECK: %[[COL1:.*]] = arith.addi %[[C0]], %{{.*}} : i32
// CHECK: "cp.async.bulk.tensor.2d{{.*}}", "r,l,r,r,r" %[[DST1]], %[[DESC]], %[[COL1]], %[[N0]]
// CHECK: %[[PW:.*]] = arith.extui %[[P]] : i1 to i32
// CHECK: "{\0A.reg .pred done;\0Await_phase:\0Ambarrier.try_wait.parity.shared::cta.b64 done, [$0], $1;\0A@!done bra wait_phase;\0A}", "r,r" %{{.*}}, %[[PW]]
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0], $1;", "r,r"
// CHECK: "mbarrier.arrive.shared::cta.b64 _, [$0];", "r" %[[BAR]]
gpu.module @kernels {
  gpu.func @copies(%desc: !llvm.ptr, %bar: i32, %buf: i32, %n0: i32, %c0: i32, %s: index,
                   %p: i1) kernel {
    %b = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier<2>
    %one = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier
    %k = builtin.unrealized_conversion_cast %buf : i32 to !kbuf
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !kdesc
    tgpu.mbarrier_init %b count = 1 : !tgpu.mbarrier<2>
    tgpu.fence_mbarrier_init
    tgpu.mbarrier_expect_tx %b[%s] bytes = 16384 : !tgpu.mbarrier<2>
    tgpu.tma_load %d[%n0, %c0] into %k[%s], %b[%s] : !kdesc, !kbuf, !tgpu.mbarrier<2>
    tgpu.mbarrier_wait %b[%s], %p : !tgpu.mbarrier<2>
    tgpu.mbarrier_arrive %b[%s] count = 4 : !tgpu.mbarrier<2>
    tgpu.mbarrier_arrive %one : !tgpu.mbarrier
    gpu.return
  }
}

// -----

// A 3-D source (a batch index outermost): three coordinates, innermost first.
!box = !tgpu.smem<64x64xf16, #tgpu.shared<swizzle_128b>, mutable>
!desc = !tgpu.tma_desc<64x64xf16, #tgpu.shared<swizzle_128b>>
// CHECK-LABEL: gpu.func @rank_three
// CHECK-SAME: (%[[DESC:[^:]+]]: !llvm.ptr, %[[BAR:[^:]+]]: i32, %[[BUF:[^:]+]]: i32, %[[B:[^:]+]]: i32, %[[N0:[^:]+]]: i32, %[[C0:[^:]+]]: i32)
// CHECK: "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], [$1, {$2, $3, $4}], [$5];", "r,l,r,r,r,r" %[[BUF]], %[[DESC]], %[[C0]], %[[N0]], %[[B]], %[[BAR]]
// CHECK-NOT: cp.async.bulk
gpu.module @kernels {
  gpu.func @rank_three(%desc: !llvm.ptr, %bar: i32, %buf: i32, %batch: i32, %n0: i32,
                       %c0: i32) kernel {
    %b = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier
    %k = builtin.unrealized_conversion_cast %buf : i32 to !box
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !desc
    tgpu.tma_load %d[%batch, %n0, %c0] into %k, %b : !desc, !box, !tgpu.mbarrier
    gpu.return
  }
}

// -----

// A predicated arrival (one lane a warp): a test of a value against zero is made in the
// statement; any other predicate is a predicate register operand.
// CHECK-LABEL: gpu.func @predicated
// CHECK-SAME: (%[[BAR:[^:]+]]: i32, %[[LANE:[^:]+]]: index, %[[P:[^:]+]]: i1)
// CHECK: %[[WORD:.*]] = arith.index_castui %[[LANE]] : index to i32
// CHECK: "{\0A.reg .pred first;\0Asetp.eq.u32 first, $1, 0;\0A@first mbarrier.arrive.shared::cta.b64 _, [$0];\0A}", "r,r" %[[BAR]], %[[WORD]]
// CHECK: "@$2 mbarrier.arrive.shared::cta.b64 _, [$0], $1;", "r,r,b" %[[BAR]], %{{.*}}, %[[P]]
gpu.module @kernels {
  gpu.func @predicated(%bar: i32, %lane: index, %p: i1) kernel {
    %b = builtin.unrealized_conversion_cast %bar : i32 to !tgpu.mbarrier
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %lane, %c0 : index
    tgpu.mbarrier_arrive %b if %first : !tgpu.mbarrier
    tgpu.mbarrier_arrive %b count = 3 if %p : !tgpu.mbarrier
    gpu.return
  }
}

// -----

// A TMA store: a bulk tensor copy per 64-column block (the second 8192 bytes and 64
// columns on), one bulk group for the tile; a wait for the groups still reading shared
// memory.
!obuf = !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, mutable>
!odesc = !tgpu.tma_desc<64x128xbf16, #tgpu.shared<swizzle_128b>>
// CHECK-LABEL: gpu.func @store
// CHECK-SAME: (%[[DESC:[^:]+]]: !llvm.ptr, %[[BUF:[^:]+]]: i32, %[[M0:[^:]+]]: i32, %[[C0:[^:]+]]: i32)
// CHECK: "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [$0, {$1, $2}], [$3];", "l,r,r,r" %[[DESC]], %[[C0]], %[[M0]], %[[BUF]] : (!llvm.ptr, i32, i32, i32) -> ()
// CHECK: %[[BUF1:.*]] = arith.addi %[[BUF]], %{{.*}} : i32
// CHECK: %[[COL1:.*]] = arith.addi %[[C0]], %{{.*}} : i32
// CHECK: "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [$0, {$1, $2}], [$3];", "l,r,r,r" %[[DESC]], %[[COL1]], %[[M0]], %[[BUF1]]
// CHECK-NEXT: "cp.async.bulk.commit_group;", ""
// CHECK-NEXT: "cp.async.bulk.wait_group.read 1;", ""
gpu.module @kernels {
  gpu.func @store(%desc: !llvm.ptr, %buf: i32, %m0: i32, %c0: i32) kernel {
    %o = builtin.unrealized_conversion_cast %buf : i32 to !obuf
    %d = builtin.unrealized_conversion_cast %desc : !llvm.ptr to !odesc
    tgpu.tma_store %o to %d[%m0, %c0] : !obuf, !odesc
    tgpu.tma_store_wait pending = 1
    gpu.return
  }
}
