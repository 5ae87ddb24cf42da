// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tgpu-pipeline-products | FileCheck %s
// A second run leaves rotated loops alone.
// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize --tessera-tgpu-pipeline-products --tessera-tgpu-pipeline-products | FileCheck %s

// The consumers' key loop (S = Q·Kᵀ, P, O += P·V): P·V goes one iteration later. A
// guarded prologue runs iteration lb's S and P; the loop from lb + 1 issues S_t, then
// V_{t-1} (its index recomputed for t - 1) and P_{t-1}·V_{t-1} on the carried P and O
// (the accumulator stage 1 adds to: carried as stage 1 leaves it),
// then the rest of iteration t; a guarded epilogue issues the last P·V. The producer's
// loop is as it was.
// CHECK-LABEL: func.func @key_loop
// CHECK: tgpu.warp_specialize
// CHECK: %[[Q:.*]] = tile.load %arg0
// CHECK: %[[RUNS:.*]] = arith.cmpi slt, %[[LB:.*]], %[[UB:.*]] : index
// CHECK: %[[PRO:.*]]:2 = scf.if %[[RUNS]]
// CHECK: tile.load %arg1
// CHECK: %[[S0:.*]] = tile.dot %[[Q]]
// CHECK-NOT: tile.dot
// CHECK: } else {
// CHECK: %[[SECOND:.*]] = arith.addi %[[LB]], %[[STEP:.*]] : index
// CHECK: %[[LOOP:.*]]:2 = scf.for %[[T:.*]] = %[[SECOND]] to %[[UB]] step %[[STEP]] iter_args(%[[P:.*]] = %[[PRO]]#0, %[[O:.*]] = %[[PRO]]#1)
// CHECK: tile.load %arg1
// CHECK: tile.dot %[[Q]]
// CHECK: %[[PREV:.*]] = arith.subi %[[T]], %[[STEP]] : index
// CHECK: %[[ROW:.*]] = arith.muli %[[PREV]]
// CHECK: %[[V:.*]] = tile.load %arg2[%[[ROW]], %{{.*}}] {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK: %[[PV:.*]] = tile.dot %[[P]], %[[V]], %[[O]] {tgpu.product_stage = 1 : i64}
// CHECK: arith.truncf
// CHECK: scf.yield %{{.*}}, %[[PV]]
// CHECK: } {tgpu.pipeline = "none", tgpu.rotated}
// CHECK: %[[LAST:.*]] = arith.addi %[[LB]]
// CHECK: %[[EPI:.*]] = scf.if %[[RUNS]]
// CHECK: %[[LROW:.*]] = arith.muli %[[LAST]]
// CHECK: %[[LV:.*]] = tile.load %arg2[%[[LROW]], %{{.*}}]
// CHECK: %[[OUT:.*]] = tile.dot %[[LOOP]]#0, %[[LV]], %[[LOOP]]#1 {tgpu.product_stage = 1 : i64}
// CHECK: scf.yield %[[OUT]]
// CHECK: } else {
// CHECK: tile.store %[[EPI]]
// CHECK: } partitions {
// CHECK: scf.for
// CHECK-NEXT: arith.muli
// CHECK-NEXT: tile.load %arg1
// CHECK-NEXT: tile.load %arg2
// CHECK-NEXT: } {tgpu.pipeline = "none"}
func.func @key_loop(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                    %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Two loops of one walk (key tiles [0, mid) then [mid, tiles), O handed from one to the
// next) form a chain: the first has no epilogue; the second's prologue issues its own
// first S, then the first loop's last P·V (where that loop ran; else O's initial value),
// then the rest of its first iteration on what that adds up to. Only the chain's last
// loop has an epilogue: the last P·V of whichever loop ran last.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Q:.*]] = tile.load %arg0
// CHECK: %[[RUNS1:.*]] = arith.cmpi slt
// CHECK: scf.if %[[RUNS1]]
// CHECK: %[[LOOP1:.*]]:2 = scf.for
// CHECK: } {tgpu.pipeline = "none", tgpu.rotated}
// CHECK-NOT: tgpu.product_stage
// CHECK: %[[LAST1:.*]] = arith.addi
// CHECK: %[[RUNS2:.*]] = arith.cmpi slt
// CHECK: %[[PRO2:.*]]:2 = scf.if %[[RUNS2]]
// CHECK: tile.load %arg1
// CHECK: tile.dot %[[Q]]
// CHECK: %[[HANDED:.*]] = scf.if %[[RUNS1]]
// CHECK: tile.load %arg2
// CHECK: %[[PV1:.*]] = tile.dot %[[LOOP1]]#0, %{{.*}}, %[[LOOP1]]#1 {tgpu.product_stage = 1 : i64}
// CHECK: scf.yield %[[PV1]]
// CHECK: } else {
// CHECK: scf.yield %[[INIT:.*]] :
// CHECK: arith.truncf
// CHECK: arith.mulf %[[HANDED]]
// CHECK: } else {
// CHECK: scf.yield %[[LOOP1]]#0, %[[LOOP1]]#1
// CHECK: %[[LOOP2:.*]]:2 = scf.for %{{.*}} iter_args(%{{.*}} = %[[PRO2]]#0, %{{.*}} = %[[PRO2]]#1)
// CHECK: } {tgpu.pipeline = "none", tgpu.rotated}
// CHECK: %[[LAST2:.*]] = arith.addi
// CHECK: %[[RAN:.*]] = arith.ori %[[RUNS2]], %[[RUNS1]] : i1
// CHECK: %[[WHICH:.*]] = arith.select %[[RUNS2]], %[[LAST2]], %[[LAST1]] : index
// CHECK: %[[OUT:.*]] = scf.if %[[RAN]]
// CHECK: arith.muli %[[WHICH]]
// CHECK: tile.dot %[[LOOP2]]#0, %{{.*}}, %[[LOOP2]]#1 {tgpu.product_stage = 1 : i64}
// CHECK: } else {
// CHECK: scf.yield %[[INIT]] :
// CHECK: tile.store %[[OUT]]
func.func @chain(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                 %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                 %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                 %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %mid = arith.divsi %tiles, %c2 : index
    %half = scf.for %t = %c0 to %mid step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %scaled = arith.mulf %a, %a : tensor<64x128xf32>
      %next = tile.dot %pb, %vt, %scaled : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    %acc = scf.for %t = %mid to %tiles step %c1 iter_args(%a = %half) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %scaled = arith.mulf %a, %a : tensor<64x128xf32>
      %next = tile.dot %pb, %vt, %scaled : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// The first loop's O is read between the loops (stored): no chain, each loop has its
// epilogue.
// CHECK-LABEL: func.func @read_between
// CHECK: } {tgpu.pipeline = "none", tgpu.rotated}
// CHECK: scf.if
// CHECK: tile.dot {{.*}} {tgpu.product_stage = 1 : i64}
// CHECK: tile.store
// CHECK: } {tgpu.pipeline = "none", tgpu.rotated}
// CHECK: scf.if
// CHECK: tile.dot {{.*}} {tgpu.product_stage = 1 : i64}
func.func @read_between(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                        %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                        %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                        %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %mid = arith.divsi %tiles, %c2 : index
    %half = scf.for %t = %c0 to %mid step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %half, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
    %acc = scf.for %t = %mid to %tiles step %c1 iter_args(%a = %half) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// The user's tgpu.product_stage = 0 keeps the loop as it is.
// CHECK-LABEL: func.func @kept_by_the_user
// CHECK: tgpu.warp_specialize
// CHECK-NOT: scf.if
// CHECK: scf.for
// CHECK: tile.dot
// CHECK: tile.dot {{.*}} {tgpu.product_stage = 0 : i64}
// CHECK: } {tgpu.pipeline = "none"}
func.func @kept_by_the_user(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                            %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                            %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                            %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a {tgpu.product_stage = 0 : i64} : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// The last product's value is read in the body (its rowsum here): nothing to delay, the
// loop stays; marked by the user, the pass says why it cannot follow.
// CHECK-LABEL: func.func @product_read_in_the_body
// CHECK-NOT: tgpu.rotated
func.func @product_read_in_the_body(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                                    %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                                    %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                                    %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      %sum = tile.reduce <sum> %next axis 1 : tensor<64x128xf32> -> tensor<64xf32>
      %rescaled = arith.mulf %next, %next : tensor<64x128xf32>
      scf.yield %rescaled : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

func.func @marked_but_read(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      // expected-error @+1 {{tgpu.product_stage = 1 cannot be followed: the product's result is read in the body}}
      %next = tile.dot %pb, %vt, %a {tgpu.product_stage = 1 : i64} : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      %rescaled = arith.mulf %next, %next : tensor<64x128xf32>
      scf.yield %rescaled : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// K and V from one source (one ring, filled in the body's order): P·V's tile would be
// taken out of that order.
func.func @one_source(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %t = %c0 to %tiles step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      // expected-error @+1 {{stage 1 loads from a source stage 0 loads too}}
      %next = tile.dot %pb, %vt, %a {tgpu.product_stage = 1 : i64} : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}
