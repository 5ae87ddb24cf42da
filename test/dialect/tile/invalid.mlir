// RUN: tessera-opt %s -split-input-file -verify-diagnostics
// One case per verifier diagnostic of the tile dialect.

//===----------------------------------------------------------------------===//
// #tile.config
//===----------------------------------------------------------------------===//

func.func @config_block_m(%n: index) {
  // expected-error @+1 {{block_m must be a power of two in [1, 256], got 48}}
  tile.grid [%n] config = #tile.config<block_m = 48, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
  }
  return
}

// -----

func.func @config_block_n(%n: index) {
  // expected-error @+1 {{block_n must be a power of two in [1, 256], got 512}}
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 512, num_warps = 4, num_stages = 2, split = 1> {
  }
  return
}

// -----

func.func @config_num_warps(%n: index) {
  // expected-error @+1 {{num_warps must be a power of two in [1, 16], got 0}}
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 0, num_stages = 2, split = 1> {
  }
  return
}

// -----

func.func @config_num_stages(%n: index) {
  // expected-error @+1 {{num_stages must be in [1, 8], got 9}}
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 9, split = 1> {
  }
  return
}

// -----

func.func @config_split(%n: index) {
  // expected-error @+1 {{split must be in [1, 1024], got 0}}
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 0> {
  }
  return
}

//===----------------------------------------------------------------------===//
// tile.grid / tile.program_id
//===----------------------------------------------------------------------===//

// -----

func.func @grid_rank(%n: index) {
  // expected-error @+1 {{grid must have 1 to 3 dimensions, got 4}}
  tile.grid [%n, %n, %n, %n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
  }
  return
}

// -----

func.func @grid_empty() {
  // expected-error @+1 {{grid must have 1 to 3 dimensions, got 0}}
  tile.grid [] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
  }
  return
}

// -----

func.func @program_id_outside() {
  // expected-error @+1 {{must be nested in a tile.grid}}
  %p = tile.program_id 0 : index
  return
}

// -----

func.func @program_id_dim(%n: index) {
  tile.grid [%n, %n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    // expected-error @+1 {{dim 2 is out of range for a grid of rank 2}}
    %p = tile.program_id 2 : index
  }
  return
}

//===----------------------------------------------------------------------===//
// tile.load / tile.store
//===----------------------------------------------------------------------===//

// -----

func.func @load_indices(%m: memref<?x?x64xf32>, %i: index) {
  // expected-error @+1 {{expects 3 indices, got 2}}
  %t = tile.load %m[%i, %i] : memref<?x?x64xf32> -> tensor<64x64xf32>
  return
}

// -----

func.func @load_tile_rank(%m: memref<?x64xf32>, %i: index) {
  // expected-error @+1 {{tile rank must be in [1, buffer rank], got 3}}
  %t = tile.load %m[%i, %i] : memref<?x64xf32> -> tensor<2x64x64xf32>
  return
}

// -----

func.func @load_element_type(%m: memref<?x64xf32>, %i: index) {
  // expected-error @+1 {{tile element type 'f16' differs from the buffer's 'f32'}}
  %t = tile.load %m[%i, %i] : memref<?x64xf32> -> tensor<64x64xf16>
  return
}

// -----

func.func @load_padding(%m: memref<?x64xf32>, %i: index) {
  // expected-error @+1 {{padding type 'f16' differs from the element type 'f32'}}
  %t = tile.load %m[%i, %i] {padding = 0.0 : f16} : memref<?x64xf32> -> tensor<64x64xf32>
  return
}

// -----

func.func @load_dynamic_tile(%m: memref<?x64xf32>, %i: index) {
  // expected-error @+1 {{result #0 must be statically shaped tensor}}
  %t = tile.load %m[%i, %i] : memref<?x64xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @store_indices(%t: tensor<64xf32>, %m: memref<?x64xf32>, %i: index) {
  // expected-error @+1 {{expects 2 indices, got 1}}
  tile.store %t, %m[%i] : tensor<64xf32>, memref<?x64xf32>
  return
}

// -----

func.func @store_element_type(%t: tensor<64xi32>, %m: memref<?x64xf32>, %i: index) {
  // expected-error @+1 {{tile element type 'i32' differs from the buffer's 'f32'}}
  tile.store %t, %m[%i, %i] : tensor<64xi32>, memref<?x64xf32>
  return
}

//===----------------------------------------------------------------------===//
// tile.gather
//===----------------------------------------------------------------------===//

// -----

func.func @gather_table_rank(%m: memref<?x4xi32>, %i: tensor<64xi32>) {
  // expected-error @+1 {{takes one index tile per table dimension: 2, got 1}}
  %d = tile.gather %m[%i] : memref<?x4xi32>, tensor<64xi32> -> tensor<64xi32>
  return
}

// -----

func.func @gather_index_shapes(%m: memref<?x?xf32>, %h: tensor<64xi32>, %i: tensor<32xi32>) {
  // expected-error @+1 {{result shape must equal the index tiles' shape}}
  %d = tile.gather %m[%h, %i] : memref<?x?xf32>, tensor<64xi32>, tensor<32xi32> -> tensor<64xf32>
  return
}

// -----

func.func @gather_index_type(%m: memref<?xi32>, %i: tensor<64xi64>) {
  // expected-error @+1 {{indices must be i32}}
  %d = tile.gather %m[%i] : memref<?xi32>, tensor<64xi64> -> tensor<64xi32>
  return
}

// -----

func.func @gather_shape(%m: memref<?xi32>, %i: tensor<64xi32>) {
  // expected-error @+1 {{result shape must equal the index tiles' shape}}
  %d = tile.gather %m[%i] : memref<?xi32>, tensor<64xi32> -> tensor<32xi32>
  return
}

// -----

func.func @gather_element_type(%m: memref<?xf32>, %i: tensor<64xi32>) {
  // expected-error @+1 {{result element type must equal the table's}}
  %d = tile.gather %m[%i] : memref<?xf32>, tensor<64xi32> -> tensor<64xi32>
  return
}

// -----

func.func @gather_padding(%m: memref<?xi32>, %i: tensor<64xi32>) {
  // expected-error @+1 {{padding type 'i64' differs from the element type 'i32'}}
  %d = tile.gather %m[%i] {padding = -1 : i64} : memref<?xi32>, tensor<64xi32> -> tensor<64xi32>
  return
}

//===----------------------------------------------------------------------===//
// tile.dot / tile.trans
//===----------------------------------------------------------------------===//

// -----

func.func @dot_rank(%a: tensor<64xf32>, %b: tensor<64x32xf32>, %c: tensor<64x32xf32>) {
  // expected-error @+1 {{operands must be 2-D tiles}}
  %r = tile.dot %a, %b, %c : tensor<64xf32>, tensor<64x32xf32> -> tensor<64x32xf32>
  return
}

// -----

func.func @dot_contraction(%a: tensor<64x32xf32>, %b: tensor<64x32xf32>, %c: tensor<64x32xf32>) {
  // expected-error @+1 {{contraction dims differ: lhs is 64x32, rhs is 64x32}}
  %r = tile.dot %a, %b, %c : tensor<64x32xf32>, tensor<64x32xf32> -> tensor<64x32xf32>
  return
}

// -----

func.func @dot_accumulator_shape(%a: tensor<64x32xf32>, %b: tensor<32x16xf32>, %c: tensor<64x32xf32>) {
  // expected-error @+1 {{accumulator must be 64x16}}
  %r = tile.dot %a, %b, %c : tensor<64x32xf32>, tensor<32x16xf32> -> tensor<64x32xf32>
  return
}

// -----

func.func @dot_mixed(%a: tensor<64x32xf16>, %b: tensor<32x16xbf16>, %c: tensor<64x16xf32>) {
  // expected-error @+1 {{lhs and rhs must share one element type}}
  %r = tile.dot %a, %b, %c : tensor<64x32xf16>, tensor<32x16xbf16> -> tensor<64x16xf32>
  return
}

// -----

func.func @dot_element_type(%a: tensor<64x32xi8>, %b: tensor<32x16xi8>, %c: tensor<64x16xf32>) {
  // expected-error @+1 {{operands must be f16, bf16 or f32}}
  %r = tile.dot %a, %b, %c : tensor<64x32xi8>, tensor<32x16xi8> -> tensor<64x16xf32>
  return
}

// -----

func.func @dot_accumulator_type(%a: tensor<64x32xf16>, %b: tensor<32x16xf16>, %c: tensor<64x16xf16>) {
  // expected-error @+1 {{accumulator must be f32}}
  %r = tile.dot %a, %b, %c : tensor<64x32xf16>, tensor<32x16xf16> -> tensor<64x16xf16>
  return
}

// -----

func.func @trans_shape(%a: tensor<64x32xf32>) {
  // expected-error @+1 {{result must be the 2-D transpose of the input}}
  %t = tile.trans %a : tensor<64x32xf32> -> tensor<64x32xf32>
  return
}

//===----------------------------------------------------------------------===//
// tile.reduce / tile.broadcast / tile.range
//===----------------------------------------------------------------------===//

// -----

func.func @reduce_element_type(%a: tensor<64x32xindex>) {
  // expected-error @+1 {{input must hold integers or floats}}
  %r = tile.reduce <sum> %a axis 1 : tensor<64x32xindex> -> tensor<64xindex>
  return
}

// -----

func.func @reduce_axis(%a: tensor<64x32xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %r = tile.reduce <max> %a axis 2 : tensor<64x32xf32> -> tensor<64xf32>
  return
}

// -----

func.func @reduce_shape(%a: tensor<64x32xf32>) {
  // expected-error @+1 {{shapes disagree along axis 1}}
  %r = tile.reduce <max> %a axis 1 : tensor<64x32xf32> -> tensor<32xf32>
  return
}

// -----

func.func @broadcast_axis(%a: tensor<64xf32>) {
  // expected-error @+1 {{axis -1 is out of range for rank 2}}
  %r = tile.broadcast %a axis -1 : tensor<64xf32> -> tensor<64x32xf32>
  return
}

// -----

func.func @broadcast_shape(%a: tensor<64xf32>) {
  // expected-error @+1 {{shapes disagree along axis 0}}
  %r = tile.broadcast %a axis 0 : tensor<64xf32> -> tensor<64x32xf32>
  return
}

// -----

func.func @range_type(%i: index) {
  // expected-error @+1 {{result must be a 1-D tile of i32}}
  %r = tile.range %i : tensor<64xi64>
  return
}

//===----------------------------------------------------------------------===//
// tile.scatter_add
//===----------------------------------------------------------------------===//

// -----

func.func @scatter_add_table_rank(%t: memref<?x?xf32>, %v: tensor<64xf32>, %i: tensor<64xi32>) {
  // expected-error @+1 {{takes one index tile per table dimension: 2, got 1}}
  tile.scatter_add %v, %t[%i] : tensor<64xf32>, memref<?x?xf32>, tensor<64xi32>
  return
}

// -----

func.func @scatter_add_element_type(%t: memref<?xf16>, %v: tensor<64xf16>, %i: tensor<64xi32>) {
  // expected-error @+1 {{adds f32 values into an f32 table, got 'f16' into 'f16'}}
  tile.scatter_add %v, %t[%i] : tensor<64xf16>, memref<?xf16>, tensor<64xi32>
  return
}

// -----

func.func @scatter_add_index_type(%t: memref<?xf32>, %v: tensor<64xf32>, %i: tensor<64xi64>) {
  // expected-error @+1 {{indices must be i32}}
  tile.scatter_add %v, %t[%i] : tensor<64xf32>, memref<?xf32>, tensor<64xi64>
  return
}

// -----

func.func @scatter_add_index_shape(%t: memref<?xf32>, %v: tensor<64xf32>, %i: tensor<32xi32>) {
  // expected-error @+1 {{index tiles must have the value tile's shape}}
  tile.scatter_add %v, %t[%i] : tensor<64xf32>, memref<?xf32>, tensor<32xi32>
  return
}

// -----

func.func @scatter_add_mask(%t: memref<?xf32>, %v: tensor<64xf32>, %i: tensor<64xi32>, %k: tensor<32xi1>) {
  // expected-error @+1 {{mask must be an i1 tile of the value tile's shape}}
  tile.scatter_add %v, %t[%i] mask(%k : tensor<32xi1>) : tensor<64xf32>, memref<?xf32>, tensor<64xi32>
  return
}

// -----

// An op before tile.grid uses %x before the body defines it, then the body fails to
// parse: a located diagnostic, never a use of the freed region (custom<Body>, TileOps.cpp).
func.func @grid_outer_use_parse_error(%n: index) {
  %z = arith.addi %x, %x : index
  tile.grid [%n] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %x = tile.program_id 0 : index
  ^bb0:
  // expected-error @+1 {{redefinition of block '^bb0'}}
  ^bb0:
  }
  return
}
