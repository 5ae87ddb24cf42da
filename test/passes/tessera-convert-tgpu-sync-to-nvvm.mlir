// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-sync-to-nvvm))' | FileCheck %s
// The synchronisation tessera-tile-to-gpu writes as tgpu ops, in order, as NVVM: a
// cp.async group committed, waited for with one newer group left, fenced for wgmma's
// async proxy, then a block barrier.

// CHECK-LABEL: gpu.func @sync
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NEXT: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: nvvm.cp.async.wait.group 0
// CHECK-NEXT: gpu.return
// CHECK-NOT: tgpu.
gpu.module @kernels {
  gpu.func @sync() kernel {
    %g0 = tgpu.async_commit_group
    %g1 = tgpu.async_commit_group
    %w = tgpu.async_wait pending = 1
    tgpu.fence_async_shared
    tgpu.barrier
    %all = tgpu.async_wait pending = 0
    gpu.return
  }
}

// -----

// A product wait: wgmma.wait_group, then the accumulators' registers through empty asm
// statements (at most 32 operands each), whose results replace them below the wait.
// CHECK-LABEL: gpu.func @products
// CHECK: nvvm.wgmma.wait.group.sync.aligned 1
// CHECK-NEXT: %[[F:.*]] = llvm.inline_asm has_side_effects asm_dialect = att "", "=f,=f,0,1" %[[A:[^,]*]], %[[B:[^ ]*]]
// CHECK-NEXT: %[[A2:.*]] = llvm.extractvalue %[[F]][0]
// CHECK-NEXT: %[[B2:.*]] = llvm.extractvalue %[[F]][1]
// CHECK-NEXT: arith.addf %[[A2]], %[[B2]]
// CHECK: nvvm.wgmma.wait.group.sync.aligned 0
// CHECK-NEXT: gpu.return
gpu.module @kernels {
  gpu.func @products(%m: memref<1xf32>, %a: f32, %b: f32) kernel {
    %c0 = arith.constant 0 : index
    %r:2 = tgpu.warpgroup_wait %a, %b pending = 1 : f32, f32
    %sum = arith.addf %r#0, %r#1 : f32
    memref.store %sum, %m[%c0] : memref<1xf32>
    tgpu.warpgroup_wait pending = 0
    gpu.return
  }
}

// -----

// A warpgroup's turn: a wait on its named barrier, an arrival on the other's, each of
// the two warpgroups' 256 threads.
// CHECK-LABEL: gpu.func @turns
// CHECK-SAME: (%[[OWN:[^:]+]]: i32, %[[OTHER:[^:]+]]: i32)
// CHECK: %[[N:.*]] = arith.constant 256 : i32
// CHECK: nvvm.barrier id = %[[OWN]] number_of_threads = %[[N]]
// CHECK: nvvm.barrier.arrive id = %[[OTHER]] number_of_threads = %{{.*}}
// CHECK-NOT: tgpu.
gpu.module @kernels {
  gpu.func @turns(%own: i32, %other: i32) kernel {
    tgpu.named_barrier %own threads = 256
    tgpu.named_barrier_arrive %other threads = 256
    gpu.return
  }
}
