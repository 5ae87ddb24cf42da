// A chip the GPU pipeline does not target is one diagnostic before any pass runs (it
// used to abort in LLVM's instruction selection or crash); so is a bad min-blocks.
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-check-gpu-options{chip=sm_70})' 2>&1 | FileCheck %s --check-prefix=OLD
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{chip=gfx90a})' 2>&1 | FileCheck %s --check-prefix=AMD
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{chip=SM_90A})' 2>&1 | FileCheck %s --check-prefix=CASE
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-tile-to-ptx{chip=})' 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{min-blocks=-1})' 2>&1 | FileCheck %s --check-prefix=BLOCKS
// RUN: tessera-opt %s --pass-pipeline='builtin.module(tessera-check-gpu-options{chip=sm_80})' | FileCheck %s --check-prefix=OK
// warp-specialize needs tma and sm_90a, and one block per SM (issue 25).
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{warp-specialize=true})' 2>&1 | FileCheck %s --check-prefix=WS-TMA
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{chip=sm_80 tma=true warp-specialize=true})' 2>&1 | FileCheck %s --check-prefix=WS-CHIP
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{tma=true warp-specialize=true min-blocks=2})' 2>&1 | FileCheck %s --check-prefix=WS-BLOCKS
// pingpong needs warp-specialize (the count of consumer warpgroups: the pass).
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{tma=true pingpong=true})' 2>&1 | FileCheck %s --check-prefix=PINGPONG
// intra-warpgroup-overlap rotates the consumers' loops: it needs warp-specialize.
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{tma=true intra-warpgroup-overlap=true})' 2>&1 | FileCheck %s --check-prefix=OVERLAP

// OLD: error: unsupported GPU chip 'sm_70': the GPU pipeline targets NVIDIA sm_80 (Ampere, Ada), sm_90 and sm_90a
// AMD: error: unsupported GPU chip 'gfx90a'
// CASE: error: unsupported GPU chip 'SM_90A'
// EMPTY: error: unsupported GPU chip ''
// BLOCKS: error: min_blocks must be in [0, 32] (blocks per SM), got -1
// WS-TMA: error: warp_specialize needs tma and sm_90a (Config(tma=True, warp_specialize=True) on sm_90a); got tma=False and chip sm_90a
// WS-CHIP: error: warp_specialize needs tma and sm_90a (Config(tma=True, warp_specialize=True) on sm_90a); got tma=True and chip sm_80
// WS-BLOCKS: error: warp_specialize runs one block per SM (its registers); min_blocks must be 0 or 1, got 2
// PINGPONG: error: pingpong needs warp_specialize (Config(tma=True, warp_specialize=True, pingpong=True), block_m 128 and num_warps 8: two consumer warpgroups)
// OVERLAP: error: intra_warpgroup_overlap needs warp_specialize (Config(tma=True, warp_specialize=True, intra_warpgroup_overlap=True) on sm_90a)
// OK-LABEL: func.func @attention
// OK: attn.attention

func.func @attention(%q: tensor<?x?x?x64xbf16>, %k: tensor<?x?x?x64xbf16>, %v: tensor<?x?x?x64xbf16>)
    -> (tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v {causal}
      : tensor<?x?x?x64xbf16>, tensor<?x?x?x64xbf16>, tensor<?x?x?x64xbf16>
      -> tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>
  return %o, %lse : tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>
}
