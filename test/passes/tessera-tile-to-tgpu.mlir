// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu | FileCheck %s
// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu=wgmma=true | FileCheck %s --check-prefix=WGMMA

// Layout assignment writes every tile's layout as the encoding of its type: producers
// fix layouts (a product's result is the accumulator, a reduction's a slice of it),
// consumers demand them from loads (a left operand, a right operand every warp reads
// whole from shared memory), and values used in another layout than their own go
// through tgpu.convert_layout.

// Online softmax over key tiles: the accumulator O is carried by the loop (its zero
// init cloned in the accumulator layout), S = Q Kᵀ reads Q as a left operand and K
// transposed from shared memory, the row max is a row slice broadcast back, and
// P = exp2(S - m) enters the second product through the register conversion to a left
// operand (FlashAttention-2's reuse).
// CHECK-LABEL: func.func @accumulator_chain
// CHECK: tile.grid{{.*}}tgpu.accumulator = [[ACC:#tgpu.mma<mma_sync, warps = \[4, 1\], instr = \[16, 8, 16\]>]]
// CHECK: %[[Q:.*]] = tile.load {{.*}} -> tensor<64x128xbf16, #tgpu.dot_operand<a, parent = [[ACC]], k_width = 2>>
// CHECK: %[[ZS:.*]] = arith.constant dense<0.000000e+00> : tensor<64x64xf32, [[ACC]]>
// CHECK: %[[ZO:.*]] = arith.constant dense<0.000000e+00> : tensor<64x128xf32, [[ACC]]>
// CHECK: %[[O:.*]] = scf.for {{.*}} iter_args(%[[CARRIED:.*]] = %[[ZO]]) -> (tensor<64x128xf32, [[ACC]]>)
// CHECK: %[[K:.*]] = tile.load {{.*}} -> tensor<64x128xbf16, #tgpu.shared_operand<parent = [[ACC]], transposed = true>>
// CHECK: %[[V:.*]] = tile.load {{.*}} -> tensor<64x128xbf16, #tgpu.shared_operand<parent = [[ACC]]>>
// CHECK: %[[KT:.*]] = tile.trans %[[K]] {{.*}} -> tensor<128x64xbf16, #tgpu.shared_operand<parent = [[ACC]]>>
// CHECK: %[[S:.*]] = tile.dot %[[Q]], %[[KT]], %[[ZS]] {{.*}} -> tensor<64x64xf32, [[ACC]]>
// CHECK: %[[M:.*]] = tile.reduce <max> %[[S]] axis 1 {{.*}} -> tensor<64xf32, #tgpu.slice<dim = 1, parent = [[ACC]]>>
// CHECK: %[[MB:.*]] = tile.broadcast %[[M]] axis 1 {{.*}} -> tensor<64x64xf32, [[ACC]]>
// CHECK: %[[D:.*]] = arith.subf %[[S]], %[[MB]] : tensor<64x64xf32, [[ACC]]>
// CHECK: %[[E:.*]] = math.exp2 %[[D]]
// CHECK: %[[P:.*]] = arith.truncf %[[E]] {{.*}} to tensor<64x64xbf16, [[ACC]]>
// CHECK: %[[PA:.*]] = tgpu.convert_layout %[[P]] : tensor<64x64xbf16, [[ACC]]> -> tensor<64x64xbf16, #tgpu.dot_operand<a, parent = [[ACC]], k_width = 2>>
// CHECK: %[[NEXT:.*]] = tile.dot %[[PA]], %[[V]], %[[CARRIED]] {{.*}} -> tensor<64x128xf32, [[ACC]]>
// CHECK: scf.yield %[[NEXT]] : tensor<64x128xf32, [[ACC]]>
// CHECK: tile.store %[[O]], {{.*}} : tensor<64x128xf32, [[ACC]]>
// With wgmma the accumulator names the warpgroup instruction: n = 64 divides both
// products' columns (64 keys, 128 head dims).
// WGMMA-LABEL: func.func @accumulator_chain
// WGMMA: tgpu.accumulator = [[ACC:#tgpu.mma<wgmma, warps = \[4, 1\], instr = \[64, 64, 16\]>]]
// WGMMA: tgpu.convert_layout {{.*}} : tensor<64x64xbf16, [[ACC]]> -> tensor<64x64xbf16, #tgpu.dot_operand<a, parent = [[ACC]], k_width = 2>>
func.func @accumulator_chain(%q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                             %k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                             %v: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                             %o: memref<?x128xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : memref<?x128xbf16, strided<[?, ?], offset: ?>>
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
    %pid = tile.program_id 0 : index
    %row = arith.muli %pid, %c64 : index
    %qt = tile.load %q[%row, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %zero_s = arith.constant dense<0.0> : tensor<64x64xf32>
    %zero_o = arith.constant dense<0.0> : tensor<64x128xf32>
    %acc = scf.for %j = %c0 to %tiles step %c1 iter_args(%oacc = %zero_o) -> (tensor<64x128xf32>) {
      %key = arith.muli %j, %c64 : index
      %kt = tile.load %k[%key, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %vt = tile.load %v[%key, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
      %ktt = tile.trans %kt : tensor<64x128xbf16> -> tensor<128x64xbf16>
      %s = tile.dot %qt, %ktt, %zero_s : tensor<64x128xbf16>, tensor<128x64xbf16> -> tensor<64x64xf32>
      %m = tile.reduce <max> %s axis 1 : tensor<64x64xf32> -> tensor<64xf32>
      %mb = tile.broadcast %m axis 1 : tensor<64xf32> -> tensor<64x64xf32>
      %d = arith.subf %s, %mb : tensor<64x64xf32>
      %e = math.exp2 %d : tensor<64x64xf32>
      %p = arith.truncf %e : tensor<64x64xf32> to tensor<64x64xbf16>
      %next = tile.dot %p, %vt, %oacc : tensor<64x64xbf16>, tensor<64x128xbf16> -> tensor<64x128xf32>
      scf.yield %next : tensor<64x128xf32>
    }
    tile.store %acc, %o[%row, %c0] : tensor<64x128xf32>, memref<?x128xf32, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// A column sum is a column slice; a value loaded as a product's left operand and also
// added to the product's result is converted to the accumulator layout for the add.
// CHECK-LABEL: func.func @slices_and_conversion
// CHECK: tile.grid{{.*}}tgpu.accumulator = [[ACC:#tgpu.mma<mma_sync, warps = \[4, 1\], instr = \[16, 8, 16\]>]]
// CHECK: %[[Q:.*]] = tile.load {{.*}} -> tensor<64x64xbf16, #tgpu.dot_operand<a, parent = [[ACC]], k_width = 2>>
// CHECK: %[[S:.*]] = tile.dot %[[Q]]
// CHECK: %[[QF:.*]] = arith.extf %[[Q]] {{.*}} to tensor<64x64xf32, #tgpu.dot_operand<a, parent = [[ACC]], k_width = 2>>
// CHECK: %[[QACC:.*]] = tgpu.convert_layout %[[QF]] : tensor<64x64xf32, #tgpu.dot_operand<a, parent = [[ACC]], k_width = 2>> -> tensor<64x64xf32, [[ACC]]>
// CHECK: %[[SUM:.*]] = arith.addf %[[S]], %[[QACC]] : tensor<64x64xf32, [[ACC]]>
// CHECK: %[[ROWS:.*]] = tile.reduce <sum> %[[SUM]] axis 1 {{.*}} -> tensor<64xf32, #tgpu.slice<dim = 1, parent = [[ACC]]>>
// CHECK: %[[COLS:.*]] = tile.reduce <sum> %[[SUM]] axis 0 {{.*}} -> tensor<64xf32, #tgpu.slice<dim = 0, parent = [[ACC]]>>
// CHECK: tile.store %[[ROWS]]
// CHECK: tile.store %[[COLS]]
func.func @slices_and_conversion(%q: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                                 %k: memref<?x64xbf16, strided<[?, ?], offset: ?>>,
                                 %rows: memref<?xf32, strided<[?], offset: ?>>,
                                 %cols: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %qt = tile.load %q[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %kt = tile.load %k[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<64x64xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32>
    %s = tile.dot %qt, %kt, %zero : tensor<64x64xbf16>, tensor<64x64xbf16> -> tensor<64x64xf32>
    %qf = arith.extf %qt : tensor<64x64xbf16> to tensor<64x64xf32>
    %sum = arith.addf %s, %qf : tensor<64x64xf32>
    %r = tile.reduce <sum> %sum axis 1 : tensor<64x64xf32> -> tensor<64xf32>
    %c = tile.reduce <sum> %sum axis 0 : tensor<64x64xf32> -> tensor<64xf32>
    tile.store %r, %rows[%c0] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
    tile.store %c, %cols[%c0] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}

// -----

// A narrow tile (3 columns) is held in whole rows; a zero fill made outside the grid is
// cloned into it in the layout it is stored in.
// CHECK-LABEL: func.func @narrow_and_fill
// CHECK: %[[HOST_FILL:.*]] = arith.constant dense<0.000000e+00> : tensor<64x64xbf16>
// CHECK: tile.grid{{.*}}tgpu.accumulator = [[ACC:#tgpu.mma<mma_sync, warps = \[4, 1\], instr = \[16, 8, 16\]>]]
// CHECK: %[[FILL:.*]] = arith.constant dense<0.000000e+00> : tensor<64x64xbf16, [[ACC]]>
// CHECK: %[[T:.*]] = tile.load {{.*}} -> tensor<64x3xf32, #tgpu.row_span<warps = 4>>
// CHECK: %[[R:.*]] = tile.reduce <sum> %[[T]] axis 1 {{.*}} -> tensor<64xf32, #tgpu.slice<dim = 1, parent = [[ACC]]>>
// CHECK: tile.store %[[FILL]]
func.func @narrow_and_fill(%x: memref<?x3xf32, strided<[?, ?], offset: ?>>,
                           %y: memref<?xf32, strided<[?], offset: ?>>,
                           %z: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %fill = arith.constant dense<0.0> : tensor<64x64xbf16>
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.load %x[%c0, %c0] : memref<?x3xf32, strided<[?, ?], offset: ?>> -> tensor<64x3xf32>
    %r = tile.reduce <sum> %t axis 1 : tensor<64x3xf32> -> tensor<64xf32>
    tile.store %r, %y[%c0] : tensor<64xf32>, memref<?xf32, strided<[?], offset: ?>>
    tile.store %fill, %z[%c0, %c0] : tensor<64x64xbf16>, memref<?x64xbf16, strided<[?, ?], offset: ?>>
  }
  return
}

// -----

// The softmax backward's 32-query dK / dV tiles at head dim 128: a [64, 32] product
// takes wgmma (n = 32) only where its tile program marks the grid narrow; unmarked,
// the rule tuned for head dims 64 / 128 (N multiples of 64) keeps mma.sync.
// WGMMA-LABEL: func.func @narrow_products
// WGMMA: tile.grid{{.*}}tgpu.accumulator = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
// WGMMA: tile.grid{{.*}}tgpu.accumulator = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 32, 16]>
func.func @narrow_products(%k: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %q: memref<?x128xbf16, strided<[?, ?], offset: ?>>,
                           %s: memref<?x32xf32, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 1, split = 1> {
    %kt = tile.load %k[%c0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %qt = tile.load %q[%c0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<32x128xbf16>
    %qtt = tile.trans %qt : tensor<32x128xbf16> -> tensor<128x32xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x32xf32>
    %st = tile.dot %kt, %qtt, %zero : tensor<64x128xbf16>, tensor<128x32xbf16> -> tensor<64x32xf32>
    tile.store %st, %s[%c0, %c0] : tensor<64x32xf32>, memref<?x32xf32, strided<[?, ?], offset: ?>>
  }
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 32, num_warps = 4, num_stages = 1, split = 1> attributes {tile.narrow_products} {
    %kt = tile.load %k[%c0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<64x128xbf16>
    %qt = tile.load %q[%c0, %c0] : memref<?x128xbf16, strided<[?, ?], offset: ?>> -> tensor<32x128xbf16>
    %qtt = tile.trans %qt : tensor<32x128xbf16> -> tensor<128x32xbf16>
    %zero = arith.constant dense<0.0> : tensor<64x32xf32>
    %st = tile.dot %kt, %qtt, %zero : tensor<64x128xbf16>, tensor<128x32xbf16> -> tensor<64x32xf32>
    tile.store %st, %s[%c0, %c0] : tensor<64x32xf32>, memref<?x32xf32, strided<[?, ?], offset: ?>>
  }
  return
}
