// RUN: tessera-opt %s -split-input-file --tessera-tgpu-cleanup-conversions | FileCheck %s
// Cleaning twice changes nothing more.
// RUN: tessera-opt %s -split-input-file --tessera-tgpu-cleanup-conversions --tessera-tgpu-cleanup-conversions | FileCheck %s

// An accumulator read as a left operand after a detour through the row-span layout:
// converted once, straight from the accumulator (the in-register P conversion); the
// detour's first link, now unused, is dropped.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opa = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#span = #tgpu.row_span<warps = 4>
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[S:.*]]: tensor<64x64xbf16, #tgpu.mma<{{.*}}>>)
// CHECK-NEXT: %[[P:.*]] = tgpu.convert_layout %[[S]] : tensor<64x64xbf16, #tgpu.mma<{{.*}}>> -> tensor<64x64xbf16, #tgpu.dot_operand<a, {{.*}}>>
// CHECK-NEXT: return %[[P]]
func.func @chain(%s: tensor<64x64xbf16, #acc>) -> tensor<64x64xbf16, #opa> {
  %r = tgpu.convert_layout %s : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #span>
  %p = tgpu.convert_layout %r : tensor<64x64xbf16, #span> -> tensor<64x64xbf16, #opa>
  return %p : tensor<64x64xbf16, #opa>
}

// -----

// A round trip back to the value's own layout is the value; a link still used elsewhere
// stays.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#span = #tgpu.row_span<warps = 4>
// CHECK-LABEL: func.func @round_trip
// CHECK-SAME: (%[[X:.*]]: tensor<64x64xf32, #tgpu.mma<{{.*}}>>)
// CHECK-NEXT: %[[R:.*]] = tgpu.convert_layout %[[X]] : {{.*}} -> tensor<64x64xf32, #tgpu.row_span<warps = 4>>
// CHECK-NEXT: %[[SUM:.*]] = arith.addf %[[X]], %[[X]] : tensor<64x64xf32, #tgpu.mma<{{.*}}>>
// CHECK-NEXT: return %[[SUM]], %[[R]]
func.func @round_trip(%x: tensor<64x64xf32, #acc>) -> (tensor<64x64xf32, #acc>, tensor<64x64xf32, #span>) {
  %r = tgpu.convert_layout %x : tensor<64x64xf32, #acc> -> tensor<64x64xf32, #span>
  %back = tgpu.convert_layout %r : tensor<64x64xf32, #span> -> tensor<64x64xf32, #acc>
  %same = tgpu.convert_layout %x : tensor<64x64xf32, #acc> -> tensor<64x64xf32, #acc>
  %sum = arith.addf %back, %same : tensor<64x64xf32, #acc>
  return %sum, %r : tensor<64x64xf32, #acc>, tensor<64x64xf32, #span>
}

// -----

// One conversion per value and layout where one dominates the other: the second in the
// block and the one in the loop body reuse the first. The two branches of an if each
// keep their own conversion of a value not converted before (neither dominates the
// other), as the distributor makes them.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#opa = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
// CHECK-LABEL: func.func @shared_conversions
// CHECK-SAME: (%[[X:[^:]*]]: tensor<64x64xbf16, #tgpu.mma<{{.*}}>>, %[[W:[^:]*]]: tensor<64x64xbf16, #tgpu.mma<{{.*}}>>, %[[N:[^:]*]]: index, %[[C:[^:]*]]: i1)
// CHECK: %[[A:.*]] = tgpu.convert_layout %[[X]]
// CHECK-NOT: tgpu.convert_layout
// CHECK: %[[B:.*]] = arith.addf %[[A]], %[[A]]
// CHECK: scf.for {{.*}} iter_args(%[[Y:.*]] = %[[B]])
// CHECK-NOT: tgpu.convert_layout
// CHECK: arith.addf %[[Y]], %[[A]]
// CHECK: scf.if %[[C]]
// CHECK-NEXT: %[[T:.*]] = tgpu.convert_layout %[[W]]
// CHECK-NEXT: scf.yield %[[T]]
// CHECK-NEXT: } else {
// CHECK-NEXT: %[[E:.*]] = tgpu.convert_layout %[[W]]
// CHECK-NEXT: scf.yield %[[E]]
func.func @shared_conversions(%x: tensor<64x64xbf16, #acc>, %w: tensor<64x64xbf16, #acc>, %n: index,
                              %c: i1)
    -> (tensor<64x64xbf16, #opa>, tensor<64x64xbf16, #opa>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = tgpu.convert_layout %x : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
  %a2 = tgpu.convert_layout %x : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
  %b = arith.addf %a, %a2 : tensor<64x64xbf16, #opa>
  %l = scf.for %i = %c0 to %n step %c1 iter_args(%y = %b) -> (tensor<64x64xbf16, #opa>) {
    %a3 = tgpu.convert_layout %x : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
    %z = arith.addf %y, %a3 : tensor<64x64xbf16, #opa>
    scf.yield %z : tensor<64x64xbf16, #opa>
  }
  %r = scf.if %c -> (tensor<64x64xbf16, #opa>) {
    %t = tgpu.convert_layout %w : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
    scf.yield %t : tensor<64x64xbf16, #opa>
  } else {
    %e = tgpu.convert_layout %w : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
    scf.yield %e : tensor<64x64xbf16, #opa>
  }
  return %l, %r : tensor<64x64xbf16, #opa>, tensor<64x64xbf16, #opa>
}
