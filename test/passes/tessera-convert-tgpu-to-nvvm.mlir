// RUN: tessera-opt %s -split-input-file --pass-pipeline='builtin.module(gpu.module(tessera-convert-tgpu-to-nvvm))' | FileCheck %s
// The ops tessera-tile-to-gpu leaves on tiles (operands cast from slots, the result
// cast back) become per-thread scalars, family by family. Element-wise: the op on each
// slot (a [64] row tile of a four-warp accumulator is two f32 per thread); f32 exp2 is
// one ex2.approx.ftz each; the op's attributes (fast-math flags) stay. (The functions
// return the slots: the pass erases what nothing uses.)

// CHECK-LABEL: gpu.func @rows
// CHECK-SAME: (%[[A0:[^:]*]]: f32, %[[A1:[^:]*]]: f32, %[[B0:[^:]*]]: f32, %[[B1:[^:]*]]: f32)
// CHECK-NEXT: %[[S0:.*]] = arith.addf %[[A0]], %[[B0]] fastmath<contract> : f32
// CHECK-NEXT: %[[S1:.*]] = arith.addf %[[A1]], %[[B1]] fastmath<contract> : f32
// CHECK-NEXT: %[[E0:.*]] = llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"(%[[S0]]) : (f32) -> f32
// CHECK-NEXT: %[[E1:.*]] = llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f32"(%[[S1]]) : (f32) -> f32
// CHECK-NEXT: gpu.return %[[E0]], %[[E1]] : f32, f32
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#row = #tgpu.slice<dim = 1, parent = #acc>
gpu.module @kernels {
  gpu.func @rows(%a0: f32, %a1: f32, %b0: f32, %b1: f32) -> (f32, f32) {
    %a = builtin.unrealized_conversion_cast %a0, %a1 : f32, f32 to tensor<64xf32, #row>
    %b = builtin.unrealized_conversion_cast %b0, %b1 : f32, f32 to tensor<64xf32, #row>
    %s = arith.addf %a, %b fastmath<contract> : tensor<64xf32, #row>
    %e = math.exp2 %s : tensor<64xf32, #row>
    %slots:2 = builtin.unrealized_conversion_cast %e : tensor<64xf32, #row> to f32, f32
    gpu.return %slots#0, %slots#1 : f32, f32
  }
}

// -----

// A scalar operand (a uniform select condition) and a splat constant tile are used in
// every slot; a comparison's i1 tile is slots of i1; bf16 log2 has no approximation
// (math.log2 per slot); an op on the slots of an op on tiles chains with no cast.
// CHECK-LABEL: gpu.func @mixed
// CHECK-SAME: (%[[A0:[^:]*]]: f32, %[[A1:[^:]*]]: f32, %[[C:[^:]*]]: i1)
// CHECK-NEXT: %[[TWO:.*]] = arith.constant 2.000000e+00 : f32
// CHECK-NEXT: %[[M0:.*]] = arith.select %[[C]], %[[A0]], %[[TWO]] : f32
// CHECK-NEXT: %[[M1:.*]] = arith.select %[[C]], %[[A1]], %[[TWO]] : f32
// CHECK-NEXT: %[[P0:.*]] = arith.cmpf ogt, %[[M0]], %[[A0]] : f32
// CHECK-NEXT: %[[P1:.*]] = arith.cmpf ogt, %[[M1]], %[[A1]] : f32
// CHECK-NEXT: %[[H0:.*]] = arith.truncf %[[M0]] : f32 to bf16
// CHECK-NEXT: %[[H1:.*]] = arith.truncf %[[M1]] : f32 to bf16
// CHECK-NEXT: %[[L0:.*]] = math.log2 %[[H0]] : bf16
// CHECK-NEXT: %[[L1:.*]] = math.log2 %[[H1]] : bf16
// CHECK-NEXT: gpu.return %[[P0]], %[[P1]], %[[L0]], %[[L1]]
#slice = #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
gpu.module @kernels {
  gpu.func @mixed(%a0: f32, %a1: f32, %c: i1) -> (i1, i1, bf16, bf16) {
    %a = builtin.unrealized_conversion_cast %a0, %a1 : f32, f32 to tensor<64xf32, #slice>
    %two = arith.constant dense<2.0> : tensor<64xf32, #slice>
    %m = arith.select %c, %a, %two : tensor<64xf32, #slice>
    %gt = arith.cmpf ogt, %m, %a : tensor<64xf32, #slice>
    %hm = arith.truncf %m : tensor<64xf32, #slice> to tensor<64xbf16, #slice>
    %l = math.log2 %hm : tensor<64xbf16, #slice>
    %gts:2 = builtin.unrealized_conversion_cast %gt : tensor<64xi1, #slice> to i1, i1
    %ls:2 = builtin.unrealized_conversion_cast %l : tensor<64xbf16, #slice> to bf16, bf16
    gpu.return %gts#0, %gts#1, %ls#0, %ls#1 : i1, i1, bf16, bf16
  }
}

// -----

// The slot count follows the layout: a [64, 16] accumulator tile of four warps is 8 f32
// per thread (4 per 8 columns); a [64, 3] row-span tile 6 (whole rows g and g + 8).
// CHECK-LABEL: gpu.func @counts
// CHECK-COUNT-8: arith.mulf {{.*}} : f32
// CHECK-NOT: arith.mulf
// CHECK-COUNT-6: arith.addi {{.*}} : i32
// CHECK-NOT: arith.addi
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
gpu.module @kernels {
  gpu.func @counts(%x0: f32, %x1: f32, %x2: f32, %x3: f32, %x4: f32, %x5: f32, %x6: f32, %x7: f32, %i: i32)
      -> (f32, f32, f32, f32, f32, f32, f32, f32, i32, i32, i32, i32, i32, i32) {
    %t = builtin.unrealized_conversion_cast %x0, %x1, %x2, %x3, %x4, %x5, %x6, %x7 : f32, f32, f32, f32, f32, f32, f32, f32 to tensor<64x16xf32, #acc>
    %sq = arith.mulf %t, %t : tensor<64x16xf32, #acc>
    %s:8 = builtin.unrealized_conversion_cast %sq : tensor<64x16xf32, #acc> to f32, f32, f32, f32, f32, f32, f32, f32
    %n = builtin.unrealized_conversion_cast %i, %i, %i, %i, %i, %i : i32, i32, i32, i32, i32, i32 to tensor<64x3xi32, #tgpu.row_span<warps = 4>>
    %d = arith.addi %n, %n : tensor<64x3xi32, #tgpu.row_span<warps = 4>>
    %ds:6 = builtin.unrealized_conversion_cast %d : tensor<64x3xi32, #tgpu.row_span<warps = 4>> to i32, i32, i32, i32, i32, i32
    gpu.return %s#0, %s#1, %s#2, %s#3, %s#4, %s#5, %s#6, %s#7, %ds#0, %ds#1, %ds#2, %ds#3, %ds#4, %ds#5
        : f32, f32, f32, f32, f32, f32, f32, f32, i32, i32, i32, i32, i32, i32
  }
}

// -----

// A broadcast picks slots and writes nothing: slot s of a [64, 16] accumulator tile
// holds row g (s % 4 < 2) or g + 8 of the row tile, and column 8 (s / 4) + 2 t + s % 2
// of the column tile (4 slots a thread: 2 t, 2 t + 1, 2 t + 8, 2 t + 9).
// CHECK-LABEL: gpu.func @broadcasts
// CHECK-SAME: (%[[R0:[^:]*]]: f32, %[[R1:[^:]*]]: f32, %[[C0:[^:]*]]: f32, %[[C1:[^:]*]]: f32, %[[C2:[^:]*]]: f32, %[[C3:[^:]*]]: f32)
// CHECK-NEXT: %[[A0:.*]] = arith.mulf %[[R0]], %[[C0]] : f32
// CHECK-NEXT: %[[A1:.*]] = arith.mulf %[[R0]], %[[C1]] : f32
// CHECK-NEXT: %[[A2:.*]] = arith.mulf %[[R1]], %[[C0]] : f32
// CHECK-NEXT: %[[A3:.*]] = arith.mulf %[[R1]], %[[C1]] : f32
// CHECK-NEXT: %[[A4:.*]] = arith.mulf %[[R0]], %[[C2]] : f32
// CHECK-NEXT: %[[A5:.*]] = arith.mulf %[[R0]], %[[C3]] : f32
// CHECK-NEXT: %[[A6:.*]] = arith.mulf %[[R1]], %[[C2]] : f32
// CHECK-NEXT: %[[A7:.*]] = arith.mulf %[[R1]], %[[C3]] : f32
// CHECK-NEXT: gpu.return %[[A0]], %[[A1]], %[[A2]], %[[A3]], %[[A4]], %[[A5]], %[[A6]], %[[A7]]
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#row = #tgpu.slice<dim = 1, parent = #acc>
#col = #tgpu.slice<dim = 0, parent = #acc>
gpu.module @kernels {
  gpu.func @broadcasts(%r0: f32, %r1: f32, %c0: f32, %c1: f32, %c2: f32, %c3: f32)
      -> (f32, f32, f32, f32, f32, f32, f32, f32) {
    %r = builtin.unrealized_conversion_cast %r0, %r1 : f32, f32 to tensor<64xf32, #row>
    %c = builtin.unrealized_conversion_cast %c0, %c1, %c2, %c3 : f32, f32, f32, f32 to tensor<16xf32, #col>
    %rows = tile.broadcast %r axis 1 : tensor<64xf32, #row> -> tensor<64x16xf32, #acc>
    %cols = tile.broadcast %c axis 0 : tensor<16xf32, #col> -> tensor<64x16xf32, #acc>
    %p = arith.mulf %rows, %cols : tensor<64x16xf32, #acc>
    %s:8 = builtin.unrealized_conversion_cast %p : tensor<64x16xf32, #acc> to f32, f32, f32, f32, f32, f32, f32, f32
    gpu.return %s#0, %s#1, %s#2, %s#3, %s#4, %s#5, %s#6, %s#7 : f32, f32, f32, f32, f32, f32, f32, f32
  }
}

// -----

// Rounding divisions become plain integer ops (after the per-slot lowering, so each
// slot's expansion stays together): no floordivsi or ceildivsi is left.
// CHECK-LABEL: gpu.func @divisions
// CHECK-NOT: arith.floordivsi
// CHECK-NOT: arith.ceildivsi
// CHECK: arith.divsi
// CHECK: gpu.return
gpu.module @kernels {
  gpu.func @divisions(%x0: i32, %x1: i32, %n: index) -> (i32, i32, index) {
    %c128 = arith.constant dense<128> : tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
    %x = builtin.unrealized_conversion_cast %x0, %x1 : i32, i32 to tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
    %q = arith.floordivsi %x, %c128 : tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>
    %qs:2 = builtin.unrealized_conversion_cast %q : tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>> to i32, i32
    %c64 = arith.constant 64 : index
    %tiles = arith.ceildivsi %n, %c64 : index
    gpu.return %qs#0, %qs#1, %tiles : i32, i32, index
  }
}

// -----

// A row reduction of a [64, 16] accumulator tile: each thread folds its slots of row g
// (0, 1, 4, 5) and of row g + 8 (2, 3, 6, 7), then two xor shuffles combine the quad.
// A row-span tile's rows are whole in each thread: the fold alone.
// CHECK-LABEL: gpu.func @row_reductions
// CHECK-SAME: (%[[X0:[^:]*]]: f32, %[[X1:[^:]*]]: f32, %[[X2:[^:]*]]: f32, %[[X3:[^:]*]]: f32, %[[X4:[^:]*]]: f32, %[[X5:[^:]*]]: f32, %[[X6:[^:]*]]: f32, %[[X7:[^:]*]]: f32,
// CHECK-SAME: %[[N0:[^:]*]]: i32, %[[N1:[^:]*]]: i32, %[[N2:[^:]*]]: i32, %[[N3:[^:]*]]: i32, %[[N4:[^:]*]]: i32, %[[N5:[^:]*]]: i32)
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : i32
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : i32
// CHECK-DAG: %[[C2:.*]] = arith.constant 2 : i32
// CHECK: %[[A:.*]] = arith.maxnumf %[[X0]], %[[X1]] : f32
// CHECK-NEXT: %[[B:.*]] = arith.maxnumf %[[A]], %[[X4]] : f32
// CHECK-NEXT: %[[G:.*]] = arith.maxnumf %[[B]], %[[X5]] : f32
// CHECK-NEXT: %[[S1:.*]], %{{.*}} = gpu.shuffle  xor %[[G]], %[[C1]], %[[C32]] : f32
// CHECK-NEXT: %[[Q1:.*]] = arith.maxnumf %[[G]], %[[S1]] : f32
// CHECK-NEXT: %[[S2:.*]], %{{.*}} = gpu.shuffle  xor %[[Q1]], %[[C2]], %[[C32]] : f32
// CHECK-NEXT: %[[ROW0:.*]] = arith.maxnumf %[[Q1]], %[[S2]] : f32
// CHECK-NEXT: %[[D:.*]] = arith.maxnumf %[[X2]], %[[X3]] : f32
// CHECK-NEXT: %[[E:.*]] = arith.maxnumf %[[D]], %[[X6]] : f32
// CHECK-NEXT: %[[H:.*]] = arith.maxnumf %[[E]], %[[X7]] : f32
// CHECK-NEXT: %[[T1:.*]], %{{.*}} = gpu.shuffle  xor %[[H]], %[[C1]], %[[C32]] : f32
// CHECK-NEXT: %[[P1:.*]] = arith.maxnumf %[[H]], %[[T1]] : f32
// CHECK-NEXT: %[[T2:.*]], %{{.*}} = gpu.shuffle  xor %[[P1]], %[[C2]], %[[C32]] : f32
// CHECK-NEXT: %[[ROW1:.*]] = arith.maxnumf %[[P1]], %[[T2]] : f32
// CHECK-NEXT: %[[R0:.*]] = arith.addi %[[N0]], %[[N1]] : i32
// CHECK-NEXT: %[[SPAN0:.*]] = arith.addi %[[R0]], %[[N2]] : i32
// CHECK-NEXT: %[[R1:.*]] = arith.addi %[[N3]], %[[N4]] : i32
// CHECK-NEXT: %[[SPAN1:.*]] = arith.addi %[[R1]], %[[N5]] : i32
// CHECK-NEXT: gpu.return %[[ROW0]], %[[ROW1]], %[[SPAN0]], %[[SPAN1]]
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
gpu.module @kernels {
  gpu.func @row_reductions(%x0: f32, %x1: f32, %x2: f32, %x3: f32, %x4: f32, %x5: f32, %x6: f32, %x7: f32,
                           %n0: i32, %n1: i32, %n2: i32, %n3: i32, %n4: i32, %n5: i32) -> (f32, f32, i32, i32) {
    %t = builtin.unrealized_conversion_cast %x0, %x1, %x2, %x3, %x4, %x5, %x6, %x7 : f32, f32, f32, f32, f32, f32, f32, f32 to tensor<64x16xf32, #acc>
    %m = tile.reduce <max> %t axis 1 : tensor<64x16xf32, #acc> -> tensor<64xf32, #tgpu.slice<dim = 1, parent = #acc>>
    %ms:2 = builtin.unrealized_conversion_cast %m : tensor<64xf32, #tgpu.slice<dim = 1, parent = #acc>> to f32, f32
    %n = builtin.unrealized_conversion_cast %n0, %n1, %n2, %n3, %n4, %n5 : i32, i32, i32, i32, i32, i32 to tensor<64x3xi32, #tgpu.row_span<warps = 4>>
    %s = tile.reduce <sum> %n axis 1 : tensor<64x3xi32, #tgpu.row_span<warps = 4>> -> tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.row_span<warps = 4>>>
    %ss:2 = builtin.unrealized_conversion_cast %s : tensor<64xi32, #tgpu.slice<dim = 1, parent = #tgpu.row_span<warps = 4>>> to i32, i32
    gpu.return %ms#0, %ms#1, %ss#0, %ss#1 : f32, f32, i32, i32
  }
}

// -----

// An accumulator read as the next product's left operand (FlashAttention-2's P): each
// thread holds the same elements in both layouts, in the same slot order (A's a4, a5 —
// row g, columns 2 t + 8, 2 t + 9 — are the second 8-column block's c0, c1), so the
// slots pass through and nothing is written.
// CHECK-LABEL: gpu.func @accumulator_as_operand
// CHECK-SAME: (%[[X0:[^:]*]]: bf16, %[[X1:[^:]*]]: bf16, %[[X2:[^:]*]]: bf16, %[[X3:[^:]*]]: bf16, %[[X4:[^:]*]]: bf16, %[[X5:[^:]*]]: bf16, %[[X6:[^:]*]]: bf16, %[[X7:[^:]*]]: bf16)
// CHECK-NEXT: gpu.return %[[X0]], %[[X1]], %[[X2]], %[[X3]], %[[X4]], %[[X5]], %[[X6]], %[[X7]]
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
gpu.module @kernels {
  gpu.func @accumulator_as_operand(%x0: bf16, %x1: bf16, %x2: bf16, %x3: bf16, %x4: bf16, %x5: bf16, %x6: bf16, %x7: bf16)
      -> (bf16, bf16, bf16, bf16, bf16, bf16, bf16, bf16) {
    %p = builtin.unrealized_conversion_cast %x0, %x1, %x2, %x3, %x4, %x5, %x6, %x7 : bf16, bf16, bf16, bf16, bf16, bf16, bf16, bf16 to tensor<64x16xbf16, #acc>
    %a = tgpu.convert_layout %p : tensor<64x16xbf16, #acc> -> tensor<64x16xbf16, #tgpu.dot_operand<a, parent = #acc, k_width = 2>>
    %s:8 = builtin.unrealized_conversion_cast %a : tensor<64x16xbf16, #tgpu.dot_operand<a, parent = #acc, k_width = 2>> to bf16, bf16, bf16, bf16, bf16, bf16, bf16, bf16
    gpu.return %s#0, %s#1, %s#2, %s#3, %s#4, %s#5, %s#6, %s#7 : bf16, bf16, bf16, bf16, bf16, bf16, bf16, bf16
  }
}

// -----

// Tiles carried by loops and branches carry their slots (upstream's structural
// conversions): a [64] row tile is two f32 per iteration argument and per result.
// CHECK-LABEL: gpu.func @carried
// CHECK-SAME: (%[[X0:[^:]*]]: f32, %[[X1:[^:]*]]: f32, %[[N:[^:]*]]: index, %[[C:[^:]*]]: i1)
// CHECK: %[[L:.*]]:2 = scf.for %{{.*}} = %{{.*}} to %[[N]] step %{{.*}} iter_args(%[[A0:.*]] = %[[X0]], %[[A1:.*]] = %[[X1]]) -> (f32, f32)
// CHECK-NEXT: %[[S0:.*]] = arith.addf %[[A0]], %[[A0]] : f32
// CHECK-NEXT: %[[S1:.*]] = arith.addf %[[A1]], %[[A1]] : f32
// CHECK-NEXT: scf.yield %[[S0]], %[[S1]] : f32, f32
// CHECK: %[[R:.*]]:2 = scf.if %[[C]] -> (f32, f32)
// CHECK-NEXT: scf.yield %[[L]]#0, %[[L]]#1 : f32, f32
// CHECK: scf.yield %[[X0]], %[[X1]] : f32, f32
// CHECK: gpu.return %[[R]]#0, %[[R]]#1 : f32, f32
// CHECK-NOT: unrealized_conversion_cast
#row = #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
gpu.module @kernels {
  gpu.func @carried(%x0: f32, %x1: f32, %n: index, %c: i1) -> (f32, f32) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %t = builtin.unrealized_conversion_cast %x0, %x1 : f32, f32 to tensor<64xf32, #row>
    %l = scf.for %i = %c0 to %n step %c1 iter_args(%a = %t) -> (tensor<64xf32, #row>) {
      %s = arith.addf %a, %a : tensor<64xf32, #row>
      scf.yield %s : tensor<64xf32, #row>
    }
    %r = scf.if %c -> tensor<64xf32, #row> {
      scf.yield %l : tensor<64xf32, #row>
    } else {
      scf.yield %t : tensor<64xf32, #row>
    }
    %slots:2 = builtin.unrealized_conversion_cast %r : tensor<64xf32, #row> to f32, f32
    gpu.return %slots#0, %slots#1 : f32, f32
  }
}
