// RUN: tessera-opt %s -split-input-file -canonicalize | FileCheck %s
// tgpu folds: a layout conversion to the same type is its source.

#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opa = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
// CHECK-LABEL: func.func @convert_layout_identity
// CHECK-SAME: (%[[X:.*]]: tensor<64x64xf32, {{.*}}>)
// CHECK-NOT: tgpu.convert_layout
// CHECK: return %[[X]]
func.func @convert_layout_identity(%x: tensor<64x64xf32, #acc>) -> tensor<64x64xf32, #acc> {
  %y = tgpu.convert_layout %x : tensor<64x64xf32, #acc> -> tensor<64x64xf32, #acc>
  return %y : tensor<64x64xf32, #acc>
}

// -----

// A real conversion stays.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opa = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
// CHECK-LABEL: func.func @convert_layout_kept
// CHECK: %[[Y:.*]] = tgpu.convert_layout
// CHECK: return %[[Y]]
func.func @convert_layout_kept(%x: tensor<64x64xbf16, #acc>) -> tensor<64x64xbf16, #opa> {
  %y = tgpu.convert_layout %x : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
  return %y : tensor<64x64xbf16, #opa>
}
