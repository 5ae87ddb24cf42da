// RUN: tessera-opt %s --pass-pipeline='builtin.module(tessera-cpu{block-m=16 block-n=16})' | FileCheck %s
// RUN: tessera-opt %s --pass-pipeline='builtin.module(tessera-to-tile{block-m=16 block-n=16})' | FileCheck %s --check-prefix=TILE

// The named CPU pipeline takes attn IR all the way to the LLVM dialect, with the C
// interface wrapper the JIT calls.
// CHECK: llvm.func @attention(
// CHECK: llvm.func @_mlir_ciface_attention(
// CHECK-NOT: tile.
// CHECK-NOT: attn.
// TILE: tile.grid{{.*}}block_m = 16, block_n = 16
func.func @attention(%q: tensor<?x?x?x32xf32>, %k: tensor<?x?x?x32xf32>, %v: tensor<?x?x?x32xf32>)
    -> (tensor<?x?x?x32xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %k, %v {causal, window = 64 : i64} : tensor<?x?x?x32xf32>, tensor<?x?x?x32xf32>, tensor<?x?x?x32xf32> -> tensor<?x?x?x32xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x32xf32>, tensor<?x?x?xf32>
}
