// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tgpu-stage-operands=tma=true --tessera-tgpu-assign-stages --tessera-tgpu-warp-specialize | FileCheck %s

// The key loop of tessera-tile-to-gpu-tma.mlir (Q once, K and V per key tile): its body
// becomes the consumers' default region, unpipelined (tgpu.pipeline = "none", no
// prefetch distances), K and V each in a ring of two stages (tgpu.buffer_stages = 2, V
// too, which the stage plan left single); the producer partition keeps the program id,
// Q's load and a loop of the same bounds with K's and V's loads, nothing of the products.
// The blocks-per-SM plan goes (registers decide: two such blocks an SM). One consumer
// warpgroup: the producer drops to 40 registers, the consumers rise to 216.
// CHECK-LABEL: func.func @key_loop
// CHECK: tile.grid
// CHECK-NOT: tgpu.blocks_per_sm
// CHECK-SAME: tgpu.num_stages = 2
// CHECK-NEXT: tgpu.warp_specialize num_warps = [4] registers = [40] default_registers = 216 default {
// CHECK: tile.load %arg0
// CHECK: scf.for
// CHECK: tile.load %arg1{{.*}} {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK: tile.load %arg2{{.*}} {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK: tile.dot
// CHECK: tile.dot
// CHECK: } {tgpu.pipeline = "none"}
// CHECK: tile.store
// CHECK-NEXT: tgpu.warp_yield
// CHECK-NEXT: } partitions {
// CHECK-NEXT: %[[PID:.*]] = tile.program_id 0
// CHECK-NEXT: %[[ROW:.*]] = arith.muli %[[PID]]
// CHECK-NEXT: tile.load %arg0[%[[ROW]], %{{.*}}]
// CHECK-NEXT: scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT: %[[KEY:.*]] = arith.muli %[[T]]
// CHECK-NEXT: tile.load %arg1[%[[KEY]], %{{.*}}] {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK-NEXT: tile.load %arg2[%[[KEY]], %{{.*}}] {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK-NEXT: } {tgpu.pipeline = "none"}
// CHECK-NEXT: tgpu.warp_return
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

// A list walk whose next key block is a loop-carried scalar (read from the list one tile
// ahead): the producer's loop carries that scalar, and only it (the accumulator stays with
// the consumers). Two consumer warpgroups (block_m 128): producer 24, consumers 240.
// CHECK-LABEL: func.func @read_ahead
// CHECK: tgpu.warp_specialize num_warps = [4] registers = [24] default_registers = 240 default {
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (tensor<128x128xf32, {{.*}}>, index)
// CHECK: } partitions {
// CHECK: %[[FIRST:.*]] = arith.index_cast
// CHECK: scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[BLOCK:.*]] = %[[FIRST]]) -> (index) {
// CHECK-NEXT: %[[KEY:.*]] = arith.muli %[[BLOCK]]
// CHECK-NEXT: tile.load %arg1[%[[KEY]], %{{.*}}]
// CHECK-NEXT: tile.load %arg2[%[[KEY]], %{{.*}}]
// CHECK-NEXT: %[[NT:.*]] = arith.addi %[[T]]
// CHECK-NEXT: %[[ENTRY:.*]] = memref.load %arg4[%[[NT]]]
// CHECK-NEXT: %[[NB:.*]] = arith.index_cast %[[ENTRY]]
// CHECK-NEXT: scf.yield %[[NB]] : index
// CHECK: tgpu.warp_return
func.func @read_ahead(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %o: memref<?x128xf32, strided<[?, ?], offset: ?>>,
                      %list: memref<?xi32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %entries = memref.dim %list, %c0 : memref<?xi32, strided<[?], offset: ?>>
  %last = arith.subi %entries, %c1 : index
  %tiles = arith.ceildivsi %n, %c128 : index
  tile.grid [%tiles] config = #tile.config<block_m = 128, block_n = 128, num_warps = 8, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c128 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<128x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<128x128xf32>
    %e0 = memref.load %list[%c0] : memref<?xi32, strided<[?], offset: ?>>
    %b0 = arith.index_cast %e0 : i32 to index
    %acc:2 = scf.for %t = %c0 to %last step %c1 iter_args(%a = %zero, %b = %b0) -> (tensor<128x128xf32>, index) {
      %n0 = arith.muli %b, %c128 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<128x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<128x128xbf16>
      %ktt = tile.trans %kt : tensor<128x128xbf16> -> tensor<128x128xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<128x128xbf16>, tensor<128x128xbf16> -> tensor<128x128xf32>
      %pb = arith.truncf %s : tensor<128x128xf32> to tensor<128x128xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<128x128xbf16>, tensor<128x128xbf16> -> tensor<128x128xf32>
      %t1 = arith.addi %t, %c1 : index
      %e1 = memref.load %list[%t1] : memref<?xi32, strided<[?], offset: ?>>
      %b1 = arith.index_cast %e1 : i32 to index
      scf.yield %next, %b1 : tensor<128x128xf32>, index
    }
    tile.store %acc#0, %o[%row, %c0] : tensor<128x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Staged loads inside a while loop (per-token lists walk one): TMA does not copy them
// (tensorCopyRefusal: such kernels hung on an H100), so there is nothing to split.
// CHECK-LABEL: func.func @while_walk
// CHECK-NOT: tgpu.warp_specialize
// CHECK: scf.while
func.func @while_walk(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                      %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-remark @below {{not warp-specialised: no grid of the function copies its operands by TMA}}
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %r:2 = scf.while (%t = %c0, %a = %acc0) : (index, tensor<64x128xf32>) -> (index, tensor<64x128xf32>) {
      %more = arith.cmpi slt, %t, %tiles : index
      scf.condition(%more) %t, %a : index, tensor<64x128xf32>
    } do {
    ^bb0(%t: index, %a: tensor<64x128xf32>):
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      %t1 = arith.addi %t, %c1 : index
      scf.yield %t1, %next : index, tensor<64x128xf32>
    }
    tile.store %r#1, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Grids TMA does not copy keep their kernel: mma.sync (two 16-row m-tiles a warp) and a
// 32-column tile (not a whole 64-column box).
// CHECK-LABEL: func.func @not_tma
// CHECK-NOT: tgpu.warp_specialize
// CHECK: return
func.func @not_tma(%q: memref<?x32xbf16, strided<[?, ?], offset: ?>>,
                   %k: memref<?x32xbf16, strided<[?, ?], offset: ?>>,
                   %o: memref<?x64xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %n = memref.dim %q, %c0 : memref<?x32xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-remark @below {{not warp-specialised: no grid of the function copies its operands by TMA}}
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x32xbf16, strided<[?, ?], offset: ?>> -> tensor<64x32xbf16>
    %kt = tile.load %k[%row, %c0] : memref<?x32xbf16, strided<[?, ?], offset: ?>> -> tensor<64x32xbf16>
    %ktt = tile.trans %kt : tensor<64x32xbf16> -> tensor<32x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x32xbf16>, tensor<32x64xbf16> -> tensor<64x64xf32>
    tile.store %s, %o[%row, %c0] : tensor<64x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  %tiles2 = arith.ceildivsi %n, %c128 : index
  tile.grid [%tiles2] config = #tile.config<block_m = 128, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c128 : index
    %qt = tile.load %q[%row, %c0] : memref<?x32xbf16, strided<[?, ?], offset: ?>> -> tensor<128x32xbf16>
    %kt = tile.load %k[%row, %c0] : memref<?x32xbf16, strided<[?, ?], offset: ?>> -> tensor<64x32xbf16>
    %ktt = tile.trans %kt : tensor<64x32xbf16> -> tensor<32x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<128x64xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<128x32xbf16>, tensor<32x64xbf16> -> tensor<128x64xf32>
    tile.store %s, %o[%row, %c0] : tensor<128x64xf32>, memref<?x64xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A key tile whose products sit in a branch (a block list's entry the consumers skip: a
// repeat, or a block past the causal bound) is split like any other: the branch stays
// with the consumers, the producer loads every entry's tiles (the lowering gives a
// skipped slot back once its fill has landed: tessera-tile-to-gpu-warp-specialize.mlir).
// CHECK-LABEL: func.func @skipped_tiles
// CHECK: tgpu.warp_specialize
// CHECK: scf.for
// CHECK: scf.if
// CHECK: tile.dot
// CHECK: } partitions {
// CHECK: scf.for
// CHECK-NEXT: arith.muli
// CHECK-NEXT: tile.load %arg1
// CHECK-NEXT: tile.load %arg2
// CHECK-NEXT: } {tgpu.pipeline = "none"}
func.func @skipped_tiles(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
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
      %keep = arith.cmpi ule, %t, %i : index
      %next = scf.if %keep -> (tensor<64x128xf32>) {
        %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
        %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
        %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
        %pv = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
        scf.yield %pv : tensor<64x128xf32>
      } else {
        scf.yield %a : tensor<64x128xf32>
      }
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// Two key loops that continue one another (the masked / unmasked split: the second
// starts where the first ends and loads K / V as the same function of its induction
// variable, so the stage plan marks it tgpu.continues_prefetch): the consumers keep both
// loops, the producer walks them as one loop from the first's start to the second's end.
// CHECK-LABEL: func.func @continued_loops
// CHECK: tgpu.warp_specialize
// CHECK: scf.for %{{.*}} = %[[C0:.*]] to %[[SPLIT:[^ ]+]] step
// CHECK: tile.dot
// CHECK: } {tgpu.pipeline = "none"}
// CHECK: scf.for %{{.*}} = %[[SPLIT]] to %[[TILES:[^ ]+]] step
// CHECK: tile.dot
// CHECK: } {tgpu.pipeline = "none", tile.continues_previous}
// CHECK: } partitions {
// CHECK: scf.for %[[T:.*]] = %[[C0]] to %[[TILES]] step %{{.*}} {
// CHECK-NEXT: %[[KEY:.*]] = arith.muli %[[T]]
// CHECK-NEXT: tile.load %arg1[%[[KEY]], %{{.*}}] {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK-NEXT: tile.load %arg2[%[[KEY]], %{{.*}}] {tgpu.buffer_stages = 2 : i64, tgpu.staged = #tgpu.shared<swizzle_128b>}
// CHECK-NEXT: } {tgpu.pipeline = "none"}
// CHECK-NEXT: tgpu.warp_return
func.func @continued_loops(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %c64 = arith.constant 64 : index
  %tiles = arith.ceildivsi %n, %c64 : index
  %split = arith.divsi %tiles, %c2 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32>
    %first = scf.for %t = %c0 to %split step %c1 iter_args(%a = %acc0) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %pb = arith.truncf %s : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    %acc = scf.for %t = %split to %tiles step %c1 iter_args(%a = %first) -> (tensor<64x128xf32>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%n0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %half = arith.constant dense<0.5> : tensor<64x64xf32>
      %sh = arith.mulf %s, %half : tensor<64x64xf32>
      %pb = arith.truncf %sh : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %pb, %vt, %a : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    } {tile.continues_previous}
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}
