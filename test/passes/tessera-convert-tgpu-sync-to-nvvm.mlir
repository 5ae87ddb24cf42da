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
