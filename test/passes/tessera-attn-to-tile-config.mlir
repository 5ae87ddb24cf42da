// RUN: not tessera-opt %s --tessera-attn-to-tile="block-m=3" 2>&1 | FileCheck %s --check-prefix=BLOCKM
// RUN: not tessera-opt %s --tessera-attn-to-tile="block-n=0" 2>&1 | FileCheck %s --check-prefix=BLOCKN
// RUN: not tessera-opt %s --tessera-attn-to-tile="num-warps=3" 2>&1 | FileCheck %s --check-prefix=WARPS
// RUN: not tessera-opt %s --tessera-attn-to-tile="split=0" 2>&1 | FileCheck %s --check-prefix=SPLIT

// Tuning knobs are user input: the config attribute's verifier rejects them with a
// located error instead of producing a kernel that computes garbage or hangs.
// BLOCKM: error: invalid tuning config: block_m must be a power of two in [1, 256], got 3
// BLOCKN: error: invalid tuning config: block_n must be a power of two in [1, 256], got 0
// WARPS: error: invalid tuning config: num_warps must be a power of two in [1, 16], got 3
// SPLIT: error: invalid tuning config: split must be in [1, 1024], got 0
func.func @f(%q: tensor<?x?x?x64xf32>) -> (tensor<?x?x?x64xf32>, tensor<?x?x?xf32>) {
  %o, %l = attn.attention %q, %q, %q : tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32>, tensor<?x?x?x64xf32> -> tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
  return %o, %l : tensor<?x?x?x64xf32>, tensor<?x?x?xf32>
}
