// RUN: tessera-opt %s -split-input-file --tessera-tile-to-tgpu --tessera-tile-to-gpu -verify-diagnostics

// Tiles the distribution cannot place are reported, never miscompiled.
func.func @unsupported(%x: memref<?x64xbf16, strided<[?, ?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{the GPU target needs block_m = 16 x num_warps x (1, 2 or 4), got block_m = 32, num_warps = 4}}
  tile.grid [%c1] config = #tile.config<block_m = 32, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    %t = tile.load %x[%c0, %c0] : memref<?x64xbf16, strided<[?, ?], offset: ?>> -> tensor<32x64xbf16>
  }
  return
}

// -----

// Accumulator-shaped tiles need whole 8-column blocks: a 1-column tile is held in whole
// rows (RowSpan), which reduce along rows only — not over them.
func.func @narrow_columns(%x: memref<?x?xf32, strided<[?, ?], offset: ?>>,
                          %y: memref<?xf32, strided<[?], offset: ?>>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> {
    // expected-error @+1 {{a tile of 1 columns cannot be spread over a warp's lanes (columns must be a multiple of 8)}}
    %t = tile.load %x[%c0, %c0] : memref<?x?xf32, strided<[?, ?], offset: ?>> -> tensor<64x1xf32>
    %r = tile.reduce <sum> %t axis 0 : tensor<64x1xf32> -> tensor<1xf32>
    tile.store %r, %y[%c0] : tensor<1xf32>, memref<?xf32, strided<[?], offset: ?>>
  }
  return
}

// -----

// A scheduled grid (tgpu.num_stages) is followed, not re-planned: a loop added without
// its schedule is reported.
!buf = memref<?x64xbf16, strided<[?, ?], offset: ?>>
func.func @unscheduled_loop(%x: !buf) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.num_stages = 2 : i64} {
    // expected-error @+1 {{a loop without tgpu.pipeline in a scheduled grid: run tessera-tgpu-assign-stages after changing the program}}
    scf.for %i = %c0 to %c4 step %c1 {
      %t = tile.load %x[%i, %c0] : !buf -> tensor<64x64xbf16>
      tile.store %t, %x[%i, %c0] : tensor<64x64xbf16>, !buf
    }
  }
  return
}

// -----

// A pipelining mode the loop's marked loads do not make.
!buf = memref<?x64xbf16, strided<[?, ?], offset: ?>>
func.func @mode_without_loads(%x: !buf) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.num_stages = 2 : i64} {
    // expected-error @+1 {{tgpu.pipeline = "registers" does not fit this loop: "none" for an mma.sync kernel with 0 prefetched load(s)}}
    scf.for %i = %c0 to %c4 step %c1 {
      %t = tile.load %x[%i, %c0] : !buf -> tensor<64x64xbf16>
      tile.store %t, %x[%i, %c0] : tensor<64x64xbf16>, !buf
    } {tgpu.pipeline = "registers", tgpu.prefetch_distance = 1 : i64}
  }
  return
}

// -----

// Only swizzled (wgmma) buffers are multi-buffered.
!buf = memref<?x64xbf16, strided<[?, ?], offset: ?>>
func.func @buffer_stages_on_mma_sync(%x: !buf) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.num_stages = 2 : i64} {
    // expected-error @+1 {{tgpu.buffer_stages = 2: only a tile staged in a swizzled buffer (wgmma) is multi-buffered, with max(2, tgpu.num_stages) = 2 stages}}
    %t = tile.load %x[%c0, %c0] {tgpu.buffer_stages = 2 : i64} : !buf -> tensor<64x64xbf16>
    tile.store %t, %x[%c0, %c0] : tensor<64x64xbf16>, !buf
  }
  return
}

// -----

// A load marked as prefetched whose indices are not known an iteration early.
!buf = memref<?x64xbf16, strided<[?, ?], offset: ?>>
func.func @unprefetchable_load(%x: !buf) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  tile.grid [%c1] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> attributes {tgpu.num_stages = 2 : i64} {
    %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%row = %c0) -> (index) {
      // expected-error @+1 {{tgpu.prefetch_distance on a load that cannot be prefetched (its tile is not staged, or its indices are not known an iteration early)}}
      %t = tile.load %x[%row, %c0] {tgpu.prefetch_distance = 1 : i64} : !buf -> tensor<64x64xbf16>
      tile.store %t, %x[%row, %c0] : tensor<64x64xbf16>, !buf
      %next = arith.addi %row, %c1 : index
      scf.yield %next : index
    } {tgpu.pipeline = "registers", tgpu.prefetch_distance = 1 : i64}
  }
  return
}
