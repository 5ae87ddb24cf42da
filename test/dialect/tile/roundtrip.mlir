// RUN: tessera-opt %s -split-input-file | tessera-opt -split-input-file | FileCheck %s
// Every tile op parses, verifies and prints back to a form that parses again.

// One program of a softmax forward: a Q tile against one K/V tile.
// The config is accepted with or without its #tile.config prefix and prints without it.
// CHECK-LABEL: func.func @program
// CHECK: tile.grid[%{{.*}}, %{{.*}}, %{{.*}}] config = <block_m = 64, block_n = 32, num_warps = 4, num_stages = 2, split = 1> {
// CHECK: %[[B:.*]] = tile.program_id 0 : index
// CHECK: %[[M:.*]] = tile.program_id 2 : index
// CHECK: %[[Q:.*]] = tile.load %{{.*}}[%[[B]], %{{.*}}, %{{.*}}, %{{.*}}] : memref<?x?x?x64xf32> -> tensor<64x64xf32>
// CHECK: %[[K:.*]] = tile.load %{{.*}}[%[[B]], %{{.*}}, %{{.*}}, %{{.*}}] {padding = 0.000000e+00 : f32} : memref<?x?x?x64xf32> -> tensor<32x64xf32>
// CHECK: %[[KT:.*]] = tile.trans %[[K]] : tensor<32x64xf32> -> tensor<64x32xf32>
// CHECK: %[[S:.*]] = tile.dot %[[Q]], %[[KT]], %{{.*}} : tensor<64x64xf32>, tensor<64x32xf32> -> tensor<64x32xf32>
// CHECK: %[[MX:.*]] = tile.reduce <max> %[[S]] axis 1 : tensor<64x32xf32> -> tensor<64xf32>
// CHECK: %[[MB:.*]] = tile.broadcast %[[MX]] axis 1 : tensor<64xf32> -> tensor<64x32xf32>
// CHECK: tile.reduce <sum> %{{.*}} axis 1 : tensor<64x32xf32> -> tensor<64xf32>
// CHECK: tile.store %{{.*}}, %{{.*}}[%[[B]], %{{.*}}, %{{.*}}, %{{.*}}] : tensor<64x64xf32>, memref<?x?x?x64xf32>
func.func @program(%q: memref<?x?x?x64xf32>, %k: memref<?x?x?x64xf32>,
                   %v: memref<?x?x?x64xf32>, %o: memref<?x?x?x64xf32>,
                   %nb: index, %nh: index, %nm: index) {
  tile.grid [%nb, %nh, %nm]
      config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 2, split = 1> {
    %b = tile.program_id 0 : index
    %h = tile.program_id 1 : index
    %m = tile.program_id 2 : index
    %c0 = arith.constant 0 : index
    %c64 = arith.constant 64 : index
    %m0 = arith.muli %m, %c64 : index
    %qt = tile.load %q[%b, %h, %m0, %c0] : memref<?x?x?x64xf32> -> tensor<64x64xf32>
    %kt = tile.load %k[%b, %h, %c0, %c0] {padding = 0.0 : f32}
        : memref<?x?x?x64xf32> -> tensor<32x64xf32>
    %vt = tile.load %v[%b, %h, %c0, %c0] : memref<?x?x?x64xf32> -> tensor<32x64xf32>
    %ktt = tile.trans %kt : tensor<32x64xf32> -> tensor<64x32xf32>
    %zero = arith.constant dense<0.0> : tensor<64x32xf32>
    %s = tile.dot %qt, %ktt, %zero : tensor<64x64xf32>, tensor<64x32xf32> -> tensor<64x32xf32>
    %mx = tile.reduce <max> %s axis 1 : tensor<64x32xf32> -> tensor<64xf32>
    %mb = tile.broadcast %mx axis 1 : tensor<64xf32> -> tensor<64x32xf32>
    %d = arith.subf %s, %mb : tensor<64x32xf32>
    %p = math.exp %d : tensor<64x32xf32>
    %l = tile.reduce <sum> %p axis 1 : tensor<64x32xf32> -> tensor<64xf32>
    %acc = arith.constant dense<0.0> : tensor<64x64xf32>
    %pv = tile.dot %p, %vt, %acc : tensor<64x32xf32>, tensor<32x64xf32> -> tensor<64x64xf32>
    %lb = tile.broadcast %l axis 1 : tensor<64xf32> -> tensor<64x64xf32>
    %out = arith.divf %pv, %lb : tensor<64x64xf32>
    tile.store %out, %o[%b, %h, %m0, %c0] : tensor<64x64xf32>, memref<?x?x?x64xf32>
  }
  return
}

// -----

// A loop over KV tiles carrying state, a bf16 dot, and a 1-D grid.
// CHECK-LABEL: func.func @loop_carried
// CHECK: tile.grid[%{{.*}}] config = <block_m = 128, block_n = 64, num_warps = 8, num_stages = 3, split = 4> {
// CHECK: %[[R:.*]] = scf.for
// CHECK: tile.dot %{{.*}}, %{{.*}}, %{{.*}} : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
// CHECK: scf.yield
// CHECK: tile.reduce <min> %[[R]] axis 0 : tensor<128x64xf32> -> tensor<64xf32>
func.func @loop_carried(%a: memref<?x64xbf16>, %b: memref<64x64xbf16>, %out: memref<?xf32>,
                        %n: index) {
  tile.grid [%n] config = <block_m = 128, block_n = 64, num_warps = 8, num_stages = 3, split = 4> {
    %pid = tile.program_id 0 : index
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %init = arith.constant dense<0.0> : tensor<128x64xf32>
    %bt = tile.load %b[%c0, %c0] : memref<64x64xbf16> -> tensor<64x64xbf16>
    %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %init) -> (tensor<128x64xf32>) {
      %at = tile.load %a[%i, %c0] : memref<?x64xbf16> -> tensor<128x64xbf16>
      %next = tile.dot %at, %bt, %acc : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x64xf32>
      scf.yield %next : tensor<128x64xf32>
    }
    %mn = tile.reduce <min> %r axis 0 : tensor<128x64xf32> -> tensor<64xf32>
    tile.store %mn, %out[%pid] : tensor<64xf32>, memref<?xf32>
  }
  return
}

// -----

// Index tiles: range, gather from a captured table, and a mask built from them.
// CHECK-LABEL: func.func @indices
// CHECK: %[[ROWS:.*]] = tile.range %{{.*}} : tensor<64xi32>
// CHECK: %[[RB:.*]] = tile.broadcast %[[ROWS]] axis 1 : tensor<64xi32> -> tensor<64x32xi32>
// CHECK: %[[D:.*]] = tile.gather %{{.*}}[%[[RB]]] : memref<?xi32>, tensor<64x32xi32> -> tensor<64x32xi32>
// CHECK: tile.gather %{{.*}}[%{{.*}}] {padding = -1 : i32} : memref<?xi32>, tensor<32xi32> -> tensor<32xi32>
// CHECK: tile.reduce <sum> %{{.*}} axis 0 : tensor<64x32xi32> -> tensor<32xi32>
func.func @indices(%doc: memref<?xi32>, %out: memref<?xi32>, %n: index) {
  tile.grid [%n, %n] config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 1, split = 1> {
    %m = tile.program_id 0 : index
    %j = tile.program_id 1 : index
    %rows = tile.range %m : tensor<64xi32>
    %cols = tile.range %j : tensor<32xi32>
    %rb = tile.broadcast %rows axis 1 : tensor<64xi32> -> tensor<64x32xi32>
    %d = tile.gather %doc[%rb] : memref<?xi32>, tensor<64x32xi32> -> tensor<64x32xi32>
    %dc = tile.gather %doc[%cols] {padding = -1 : i32} : memref<?xi32>, tensor<32xi32> -> tensor<32xi32>
    %dcb = tile.broadcast %dc axis 0 : tensor<32xi32> -> tensor<64x32xi32>
    %same = arith.cmpi eq, %d, %dcb : tensor<64x32xi32>
    %one = arith.constant dense<1> : tensor<64x32xi32>
    %zero = arith.constant dense<0> : tensor<64x32xi32>
    %hits = arith.select %same, %one, %zero : tensor<64x32xi1>, tensor<64x32xi32>
    %count = tile.reduce <sum> %hits axis 0 : tensor<64x32xi32> -> tensor<32xi32>
    tile.store %count, %out[%j] : tensor<32xi32>, memref<?xi32>
  }
  return
}

// -----

// A 2-D float table read at (head, relative position) tiles: one index tile per dimension.
// CHECK-LABEL: func.func @gather_2d
// CHECK: %[[B:.*]] = tile.gather %{{.*}}[%[[H:.*]], %[[R:.*]]] : memref<?x?xf32>, tensor<64x32xi32>, tensor<64x32xi32> -> tensor<64x32xf32>
// CHECK: tile.store %[[B]]
func.func @gather_2d(%bias: memref<?x?xf32>, %out: memref<?x?xf32>, %n: index, %h: i32) {
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 1, split = 1> {
    %m = tile.program_id 0 : index
    %rows = tile.range %m : tensor<64xi32>
    %c0 = arith.constant 0 : index
    %cols = tile.range %c0 : tensor<32xi32>
    %rb = tile.broadcast %rows axis 1 : tensor<64xi32> -> tensor<64x32xi32>
    %cb = tile.broadcast %cols axis 0 : tensor<32xi32> -> tensor<64x32xi32>
    %rel = arith.subi %rb, %cb : tensor<64x32xi32>
    %heads = tensor.splat %h : tensor<64x32xi32>
    %b = tile.gather %bias[%heads, %rel] : memref<?x?xf32>, tensor<64x32xi32>, tensor<64x32xi32> -> tensor<64x32xf32>
    tile.store %b, %out[%m, %c0] : tensor<64x32xf32>, memref<?x?xf32>
  }
  return
}

// -----

// A table gradient's sum: a tile of values added at (head, relative position) entries,
// with and without a mask.
// CHECK-LABEL: func.func @scatter_add
// CHECK: tile.scatter_add %[[V:.*]], %{{.*}}[%[[H:.*]], %[[R:.*]]] mask(%[[K:.*]] : tensor<64x32xi1>) : tensor<64x32xf32>, memref<?x?xf32>, tensor<64x32xi32>, tensor<64x32xi32>
// CHECK: tile.scatter_add %[[V]], %{{.*}}[%[[H]]] : tensor<64x32xf32>, memref<?xf32>, tensor<64x32xi32>
func.func @scatter_add(%dbias: memref<?x?xf32>, %dslopes: memref<?xf32>, %n: index, %h: i32) {
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 1, split = 1> {
    %m = tile.program_id 0 : index
    %rows = tile.range %m : tensor<64xi32>
    %c0 = arith.constant 0 : index
    %cols = tile.range %c0 : tensor<32xi32>
    %rb = tile.broadcast %rows axis 1 : tensor<64xi32> -> tensor<64x32xi32>
    %cb = tile.broadcast %cols axis 0 : tensor<32xi32> -> tensor<64x32xi32>
    %rel = arith.subi %rb, %cb : tensor<64x32xi32>
    %keep = arith.cmpi sge, %rb, %cb : tensor<64x32xi32>
    %heads = tensor.splat %h : tensor<64x32xi32>
    %v = arith.sitofp %rel : tensor<64x32xi32> to tensor<64x32xf32>
    tile.scatter_add %v, %dbias[%heads, %rel] mask(%keep : tensor<64x32xi1>) : tensor<64x32xf32>, memref<?x?xf32>, tensor<64x32xi32>, tensor<64x32xi32>
    tile.scatter_add %v, %dslopes[%heads] : tensor<64x32xf32>, memref<?xf32>, tensor<64x32xi32>
  }
  return
}
