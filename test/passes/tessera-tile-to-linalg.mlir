// RUN: tessera-opt %s -split-input-file --tessera-tile-to-linalg | FileCheck %s

// The grid becomes a loop nest whose induction variables replace the program ids; a
// bounded load becomes a tensor.generate that guards each element.
// CHECK-LABEL: func.func @grid_and_load
// CHECK-SAME: (%[[BUF:.*]]: memref<?x?xf32>, %[[N:.*]]: index)
// CHECK: scf.for %[[I:.*]] =
// CHECK-NOT: tile.program_id
// CHECK: %[[T:.*]] = tensor.generate
// CHECK: arith.cmpi ult
// CHECK: scf.if
// CHECK: memref.load %[[BUF]]
// CHECK: scf.for
// CHECK: scf.if
// CHECK: memref.store
// CHECK-NOT: tile.
func.func @grid_and_load(%buf: memref<?x?xf32>, %n: index) {
  tile.grid [%n] config = #tile.config<block_m = 16, block_n = 16, num_warps = 4, num_stages = 1, split = 1> {
    %i = tile.program_id 0 : index
    %c0 = arith.constant 0 : index
    %t = tile.load %buf[%i, %c0] : memref<?x?xf32> -> tensor<16xf32>
    tile.store %t, %buf[%i, %c0] : tensor<16xf32>, memref<?x?xf32>
  }
  return
}

// -----

// Tile math maps onto linalg named ops.
// CHECK-LABEL: func.func @tile_math
// CHECK: linalg.transpose
// CHECK: linalg.matmul
// CHECK: linalg.fill
// CHECK: linalg.reduce
// CHECK: arith.maxnumf
// CHECK: linalg.broadcast
// CHECK: tensor.generate
func.func @tile_math(%a: tensor<16x8xf32>, %b: tensor<16x8xf32>, %acc: tensor<16x16xf32>, %s: index)
    -> (tensor<16x16xf32>, tensor<16xi32>) {
  %bt = tile.trans %b : tensor<16x8xf32> -> tensor<8x16xf32>
  %d = tile.dot %a, %bt, %acc : tensor<16x8xf32>, tensor<8x16xf32> -> tensor<16x16xf32>
  %m = tile.reduce <max> %d axis 1 : tensor<16x16xf32> -> tensor<16xf32>
  %mb = tile.broadcast %m axis 1 : tensor<16xf32> -> tensor<16x16xf32>
  %r = tile.range %s : tensor<16xi32>
  return %mb, %r : tensor<16x16xf32>, tensor<16xi32>
}

// -----

// A scatter-add: a loop nest over the tile in row-major order (repeated entries sum in
// that order every run), each element added under its mask and the table's bounds.
// CHECK-LABEL: func.func @scatter_add
// CHECK-SAME: (%[[V:.*]]: tensor<4x8xf32>, %[[I:.*]]: tensor<4x8xi32>, %[[K:.*]]: tensor<4x8xi1>, %[[T:.*]]: memref<?xf32>)
// CHECK: scf.for %[[R:.*]] =
// CHECK: scf.for %[[C:.*]] =
// CHECK: %[[E:.*]] = tensor.extract %[[I]][%[[R]], %[[C]]]
// CHECK: %[[X:.*]] = arith.index_cast %[[E]]
// CHECK: %[[N:.*]] = memref.dim %[[T]]
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[X]], %[[N]]
// CHECK: %[[M:.*]] = tensor.extract %[[K]][%[[R]], %[[C]]]
// CHECK: %[[ADD:.*]] = arith.andi %{{.*}}, %[[M]]
// CHECK: scf.if %[[ADD]] {
// CHECK: %[[VAL:.*]] = tensor.extract %[[V]][%[[R]], %[[C]]]
// CHECK: %[[OLD:.*]] = memref.load %[[T]][%[[X]]]
// CHECK: %[[SUM:.*]] = arith.addf %[[OLD]], %[[VAL]]
// CHECK: memref.store %[[SUM]], %[[T]][%[[X]]]
// CHECK-NOT: tile.
func.func @scatter_add(%v: tensor<4x8xf32>, %i: tensor<4x8xi32>, %k: tensor<4x8xi1>, %t: memref<?xf32>) {
  tile.scatter_add %v, %t[%i] mask(%k : tensor<4x8xi1>) : tensor<4x8xf32>, memref<?xf32>, tensor<4x8xi32>
  return
}
