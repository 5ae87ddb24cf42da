// A chip the GPU pipeline does not target is one diagnostic before any pass runs (it
// used to abort in LLVM's instruction selection or crash); so is a bad min-blocks.
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-check-gpu-options{chip=sm_70})' 2>&1 | FileCheck %s --check-prefix=OLD
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{chip=gfx90a})' 2>&1 | FileCheck %s --check-prefix=AMD
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{chip=SM_90A})' 2>&1 | FileCheck %s --check-prefix=CASE
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-tile-to-ptx{chip=})' 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not tessera-opt %s --pass-pipeline='builtin.module(tessera-gpu{min-blocks=-1})' 2>&1 | FileCheck %s --check-prefix=BLOCKS
// RUN: tessera-opt %s --pass-pipeline='builtin.module(tessera-check-gpu-options{chip=sm_80})' | FileCheck %s --check-prefix=OK

// OLD: error: unsupported GPU chip 'sm_70': the GPU pipeline targets NVIDIA sm_80 (Ampere, Ada), sm_90 and sm_90a
// AMD: error: unsupported GPU chip 'gfx90a'
// CASE: error: unsupported GPU chip 'SM_90A'
// EMPTY: error: unsupported GPU chip ''
// BLOCKS: error: min_blocks must be in [0, 32] (blocks per SM), got -1
// OK-LABEL: func.func @attention
// OK: attn.attention

func.func @attention(%q: tensor<?x?x?x64xbf16>, %k: tensor<?x?x?x64xbf16>, %v: tensor<?x?x?x64xbf16>)
    -> (tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v {causal}
      : tensor<?x?x?x64xbf16>, tensor<?x?x?x64xbf16>, tensor<?x?x?x64xbf16>
      -> tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>
  return %o, %lse : tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>
}
