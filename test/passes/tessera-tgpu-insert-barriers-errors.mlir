// RUN: tessera-opt %s -split-input-file --tessera-tgpu-insert-barriers -verify-diagnostics
// Barrier insertion walks structured control flow (scf); a region of several blocks is
// reported at its op, not walked in a wrong order.

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opb = #tgpu.dot_operand<b, parent = #acc, k_width = 2>
!buf = !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, mutable>
// expected-error @below {{has a region of several blocks: barrier insertion needs structured control flow}}
func.func @branches_as_blocks(%x: tensor<64x64xbf16, #acc>, %c: i1) {
  %b = tgpu.local_alloc : () -> !buf
  cf.cond_br %c, ^store, ^done
^store:
  tgpu.local_store %x, %b : tensor<64x64xbf16, #acc>, !buf
  cf.br ^done
^done:
  %r = tgpu.local_load %b : !buf -> tensor<64x64xbf16, #opb>
  return
}
