// RUN: tessera-opt %s -split-input-file -verify-diagnostics
// One case per verifier diagnostic of the tgpu dialect (layouts, types, ops).

//===----------------------------------------------------------------------===//
// Layout encodings
//===----------------------------------------------------------------------===//

func.func @mma_warps(
    // expected-error @+1 {{warps must be two powers of two (rows, columns) with at most 32 warps in all}}
    %x: tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [3, 1], instr = [16, 8, 16]>>) {
  return
}

// -----

func.func @mma_instr_rank(
    // expected-error @+1 {{instr must be [m, n, k], got 2 values}}
    %x: tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8]>>) {
  return
}

// -----

func.func @mma_sync_shape(
    // expected-error @+1 {{mma_sync is m16n8k16: instr must be [16, 8, 16]}}
    %x: tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 8]>>) {
  return
}

// -----

func.func @wgmma_shape(
    // expected-error @+1 {{wgmma is m64nNk16 with N a multiple of 8 in [8, 256]: instr must be [64, N, 16]}}
    %x: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 12, 16]>>) {
  return
}

// -----

func.func @wgmma_warps(
    // expected-error @+1 {{wgmma splits rows over whole warpgroups: warps must be [4 x warpgroups, 1]}}
    %x: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [2, 1], instr = [64, 64, 16]>>) {
  return
}

// -----

func.func @mma_rank(
    // expected-error @+1 {{a #tgpu.mma layout holds 2-D tiles, got rank 1}}
    %x: tensor<64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) {
  return
}

// -----

func.func @mma_rows(
    // expected-error @+1 {{a #tgpu.mma tile's dimension 0 (32) must be a multiple of 64 (16 rows per warp along rows, the instruction's n per warp along columns)}}
    %x: tensor<32x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) {
  return
}

// -----

func.func @dot_operand_k_width(
    // expected-error @+1 {{k_width must be 1, 2, 4 or 8, got 3}}
    %x: tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 3>>) {
  return
}

// -----

func.func @dot_operand_wgmma_b(
    // expected-error @+1 {{wgmma reads its b operand from shared memory, never registers}}
    %x: tensor<64x64xbf16, #tgpu.dot_operand<b, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>) {
  return
}

// -----

func.func @dot_operand_shape(
    // expected-error @+1 {{a #tgpu.dot_operand<a> tile's dimension 1 (8) must be a multiple of 16 (the parent's rows, the instruction's k along columns)}}
    %x: tensor<64x8xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>) {
  return
}

// -----

func.func @shared_operand_rank(
    // expected-error @+1 {{a #tgpu.shared_operand layout holds 2-D tiles, got rank 1}}
    %x: tensor<64xbf16, #tgpu.shared_operand<parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) {
  return
}

// -----

func.func @slice_dim(
    // expected-error @+1 {{a slice removes dimension 0 or 1 of a 2-D parent, got 2}}
    %x: tensor<64xf32, #tgpu.slice<dim = 2, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) {
  return
}

// -----

func.func @slice_row_span_columns(
    // expected-error @+1 {{a #tgpu.row_span parent has only row slices (dim = 1)}}
    %x: tensor<64xf32, #tgpu.slice<dim = 0, parent = #tgpu.row_span<warps = 4>>>) {
  return
}

// -----

func.func @slice_parent(
    // expected-error @+1 {{a slice's parent must be #tgpu.mma or #tgpu.row_span, got #tgpu.whole}}
    %x: tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.whole>>) {
  return
}

// -----

func.func @slice_length(
    // expected-error @+1 {{a #tgpu.slice tile's dimension 0 (48) must be a multiple of 64 (the parent's quantum along the kept dimension)}}
    %x: tensor<48xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>>) {
  return
}

// -----

func.func @row_span_warps(
    // expected-error @+1 {{warps must be a power of two in [1, 32], got 6}}
    %x: tensor<64x3xf32, #tgpu.row_span<warps = 6>>) {
  return
}

// -----

func.func @row_span_rank(
    // expected-error @+1 {{a #tgpu.row_span layout holds 2-D tiles, got rank 1}}
    %x: tensor<64xf32, #tgpu.row_span<warps = 4>>) {
  return
}

// -----

//===----------------------------------------------------------------------===//
// Shared layouts and types
//===----------------------------------------------------------------------===//

func.func @padded_rows_pad(
    // expected-error @+1 {{padded_rows needs a pad that keeps 16-byte copies aligned (a positive multiple of 16 bytes), got 8}}
    %x: !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 8>>) {
  return
}

// -----

func.func @pad_without_padding(
    // expected-error @+1 {{only padded_rows takes a pad}}
    %x: !tgpu.smem<64x64xbf16, #tgpu.shared<none, pad = 16>>) {
  return
}

// -----

func.func @smem_extent(
    // expected-error @+1 {{shared tile dimensions must be positive, got 0}}
    %x: !tgpu.smem<0x64xbf16, #tgpu.shared<none>>) {
  return
}

// -----

func.func @smem_element(
    // expected-error @+1 {{shared tile elements must be whole-byte integers or floats, got 'i1'}}
    %x: !tgpu.smem<64x64xi1, #tgpu.shared<none>>) {
  return
}

// -----

func.func @smem_swizzle_shape(
    // expected-error @+1 {{swizzle_128b stores 2-D tiles in atoms of 8 rows of 128 bytes: rows must be a multiple of 8 and columns of 64 'bf16' elements}}
    %x: !tgpu.smem<64x32xbf16, #tgpu.shared<swizzle_128b>>) {
  return
}

// -----

func.func @smem_stages(
    // expected-error @+1 {{stages must be in [1, 8], got 0}}
    %x: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, stages = 0>) {
  return
}

// -----

func.func @tma_rank(
    // expected-error @+1 {{a TMA box has at most 5 dimensions, got 6}}
    %x: !tgpu.tma_desc<1x1x1x1x8x64xbf16, #tgpu.shared<none>>) {
  return
}

// -----

func.func @tma_box_extent(
    // expected-error @+1 {{a TMA box is at most 256 elements along each dimension, got 512}}
    %x: !tgpu.tma_desc<512x64xbf16, #tgpu.shared<none>>) {
  return
}

// -----

func.func @tma_padded(
    // expected-error @+1 {{TMA writes dense or swizzled rows, never padded ones}}
    %x: !tgpu.tma_desc<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>) {
  return
}

// -----

func.func @mbarrier_stages(
    // expected-error @+1 {{an mbarrier array has 1 to 8 stages, got 9}}
    %x: !tgpu.mbarrier<9>) {
  return
}

// -----

//===----------------------------------------------------------------------===//
// Registers and shared memory
//===----------------------------------------------------------------------===//

func.func @convert_layout_shape(%x: tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) {
  // expected-error @+1 {{'tgpu.convert_layout' op changes only the layout: shape and element type must stay 'tensor<64x64xf32>', got 'tensor<64x64xbf16>'}}
  %y = tgpu.convert_layout %x : tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>> -> tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
  return
}

// -----

func.func @convert_layout_encoding(%x: tensor<64x64xf32>) {
  // expected-error @+1 {{'tgpu.convert_layout' op the source must carry a tgpu register layout, got 'tensor<64x64xf32>'}}
  %y = tgpu.convert_layout %x : tensor<64x64xf32> -> tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
  return
}

// -----

func.func @local_alloc_empty_immutable() {
  // expected-error @+1 {{'tgpu.local_alloc' op an empty buffer must be mutable (nothing could fill it)}}
  %b = tgpu.local_alloc : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>>
  return
}

// -----

func.func @local_alloc_init_mutable(%x: tensor<64x64xbf16, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) {
  // expected-error @+1 {{'tgpu.local_alloc' op a buffer made from a value is immutable and has one stage, got '!tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>'}}
  %b = tgpu.local_alloc %x : (tensor<64x64xbf16, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

func.func @local_alloc_init_shape(%x: tensor<64x128xbf16, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) {
  // expected-error @+1 {{'tgpu.local_alloc' op the initial value's shape (64, 128) differs from the shared buffer's (64, 64)}}
  %b = tgpu.local_alloc %x : (tensor<64x128xbf16, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>>
  return
}

// -----

func.func @local_alloc_trans_empty() {
  // expected-error @+1 {{'tgpu.local_alloc' op trans stores the transpose of an initial value: give one}}
  %b = tgpu.local_alloc {trans} : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

func.func @local_alloc_trans_shape(%x: tensor<128x32xbf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 32, 16]>>) {
  // expected-error @+1 {{'tgpu.local_alloc' op the transposed initial value's shape (32, 128) differs from the shared buffer's (128, 32)}}
  %b = tgpu.local_alloc %x {trans} : (tensor<128x32xbf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 32, 16]>>) -> !tgpu.smem<128x32xbf16, #tgpu.shared<padded_rows, pad = 16>>
  return
}

// -----

// Only a copied (mutable) buffer's stage may be left to the loop's schedule.
func.func @local_load_stage_missing(%b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, stages = 2>) {
  // expected-error @+1 {{'tgpu.local_load' op the buffer has 2 stages: give a stage index}}
  %t = tgpu.local_load %b : !tgpu.smem<64x64xbf16, #tgpu.shared<none>, stages = 2> -> tensor<64x64xbf16, #tgpu.dot_operand<b, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
  return
}

// -----

func.func @local_load_stage_extra(%b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>, %s: index) {
  // expected-error @+1 {{'tgpu.local_load' op the buffer has one stage: it takes no stage index}}
  %t = tgpu.local_load %b[%s] : !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable> -> tensor<64x64xbf16, #tgpu.dot_operand<b, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
  return
}

// -----

func.func @local_load_stage_range(%b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, stages = 2, mutable>) {
  %c2 = arith.constant 2 : index
  // expected-error @+1 {{'tgpu.local_load' op stage index 2 is out of range for the buffer of 2 stages}}
  %t = tgpu.local_load %b[%c2] : !tgpu.smem<64x64xbf16, #tgpu.shared<none>, stages = 2, mutable> -> tensor<64x64xbf16, #tgpu.dot_operand<b, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
  return
}

// -----

func.func @local_load_trans_rank(%b: !tgpu.smem<64xf32, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.local_load' op trans reads 2-D tiles, got rank 1}}
  %t = tgpu.local_load %b {trans} : !tgpu.smem<64xf32, #tgpu.shared<none>, mutable> -> tensor<64xf32, #tgpu.whole>
  return
}

// -----

func.func @local_load_shape(%b: !tgpu.smem<32x64xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.local_load' op the transposed result's shape (64, 32) differs from the shared buffer's (32, 64)}}
  %t = tgpu.local_load %b {trans} : !tgpu.smem<32x64xbf16, #tgpu.shared<none>, mutable> -> tensor<32x64xbf16, #tgpu.dot_operand<b, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
  return
}

// -----

func.func @local_load_element(%b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.local_load' op the result's element type 'f16' differs from the shared buffer's 'bf16'}}
  %t = tgpu.local_load %b : !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable> -> tensor<64x64xf16, #tgpu.dot_operand<b, parent = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>, k_width = 2>>
  return
}

// -----

func.func @local_store_immutable(%x: tensor<64x64xbf16, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>>) {
  // expected-error @+1 {{'tgpu.local_store' op writes an immutable buffer '!tgpu.smem<64x64xbf16, #tgpu.shared<none>>'}}
  tgpu.local_store %x, %b : tensor<64x64xbf16, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>, !tgpu.smem<64x64xbf16, #tgpu.shared<none>>
  return
}

// -----

func.func @local_store_layout(%x: tensor<64x64xbf16>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.local_store' op the stored value must carry a tgpu register layout, got 'tensor<64x64xbf16>'}}
  tgpu.local_store %x, %b : tensor<64x64xbf16>, !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

//===----------------------------------------------------------------------===//
// cp.async
//===----------------------------------------------------------------------===//

func.func @async_copy_indices(%g: memref<?x64xbf16>, %i: index, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.async_copy' op expects 2 indices, got 1}}
  %t = tgpu.async_copy %g[%i] into %b : memref<?x64xbf16> -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

func.func @async_copy_rank(%g: memref<?xbf16>, %i: index, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.async_copy' op the tile's rank (2) exceeds the source's (1)}}
  %t = tgpu.async_copy %g[%i] into %b : memref<?xbf16> -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

func.func @async_copy_element(%g: memref<?x64xf16>, %i: index, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.async_copy' op source element type 'f16' differs from the buffer's 'bf16'}}
  %t = tgpu.async_copy %g[%i, %i] into %b : memref<?x64xf16> -> !tgpu.smem<64x64xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

func.func @async_copy_row_bytes(%g: memref<?x4xbf16>, %i: index, %b: !tgpu.smem<64x4xbf16, #tgpu.shared<none>, mutable>) {
  // expected-error @+1 {{'tgpu.async_copy' op cp.async moves 16-byte chunks: a tile row must be a multiple of 16 bytes, got 8}}
  %t = tgpu.async_copy %g[%i, %i] into %b : memref<?x4xbf16> -> !tgpu.smem<64x4xbf16, #tgpu.shared<none>, mutable>
  return
}

// -----

func.func @async_wait_pending() {
  // expected-error @+1 {{'tgpu.async_wait' op pending must be at least 0, got -1}}
  %w = tgpu.async_wait pending = -1
  return
}

// -----

//===----------------------------------------------------------------------===//
// mbarriers
//===----------------------------------------------------------------------===//

func.func @mbarrier_init_count(%b: !tgpu.mbarrier) {
  // expected-error @+1 {{'tgpu.mbarrier_init' op count must be in [1, 1048575], got 0}}
  tgpu.mbarrier_init %b count = 0 : !tgpu.mbarrier
  return
}

// -----

func.func @mbarrier_arrive_count(%b: !tgpu.mbarrier) {
  // expected-error @+1 {{'tgpu.mbarrier_arrive' op count must be at least 1, got 0}}
  tgpu.mbarrier_arrive %b count = 0 : !tgpu.mbarrier
  return
}

// -----

func.func @mbarrier_expect_tx_bytes(%b: !tgpu.mbarrier) {
  // expected-error @+1 {{'tgpu.mbarrier_expect_tx' op bytes must be in [1, 1048575], got 2097152}}
  tgpu.mbarrier_expect_tx %b bytes = 2097152 : !tgpu.mbarrier
  return
}

// -----

func.func @mbarrier_wait_stage(%b: !tgpu.mbarrier<2>, %p: i1) {
  // expected-error @+1 {{'tgpu.mbarrier_wait' op the barrier has 2 stages: give a stage index}}
  tgpu.mbarrier_wait %b, %p : !tgpu.mbarrier<2>
  return
}

// -----

//===----------------------------------------------------------------------===//
// TMA
//===----------------------------------------------------------------------===//

func.func @tma_load_box(%d: !tgpu.tma_desc<32x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, %m: !tgpu.mbarrier, %i: i32) {
  // expected-error @+1 {{'tgpu.tma_load' op the descriptor's box shape (32, 64) differs from the shared buffer's (64, 64)}}
  tgpu.tma_load %d[%i, %i] into %b, %m : !tgpu.tma_desc<32x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, !tgpu.mbarrier
  return
}

// -----

func.func @tma_load_layout(%d: !tgpu.tma_desc<64x64xbf16, #tgpu.shared<none>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, %m: !tgpu.mbarrier, %i: i32) {
  // expected-error @+1 {{'tgpu.tma_load' op the descriptor writes #tgpu.shared<none> but the buffer is #tgpu.shared<swizzle_128b>}}
  tgpu.tma_load %d[%i, %i] into %b, %m : !tgpu.tma_desc<64x64xbf16, #tgpu.shared<none>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, !tgpu.mbarrier
  return
}

// -----

func.func @tma_load_coordinates(%d: !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, %m: !tgpu.mbarrier, %i: i32) {
  // expected-error @+1 {{'tgpu.tma_load' op expects one coordinate per global dimension (2 to 5), got 1}}
  tgpu.tma_load %d[%i] into %b, %m : !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, !tgpu.mbarrier
  return
}

// -----

func.func @tma_load_barrier_stage(%d: !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, %m: !tgpu.mbarrier<2>, %i: i32) {
  // expected-error @+1 {{'tgpu.tma_load' op the barrier has 2 stages: give a stage index}}
  tgpu.tma_load %d[%i, %i] into %b, %m : !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>, !tgpu.mbarrier<2>
  return
}

// -----

func.func @tma_store_stages(%d: !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>, %i: i32) {
  // expected-error @+1 {{'tgpu.tma_store' op stores one tile: the buffer must have one stage, got 2}}
  tgpu.tma_store %b to %d[%i, %i] : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>, !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
  return
}

// -----

func.func @tma_store_wait_pending() {
  // expected-error @+1 {{'tgpu.tma_store_wait' op pending must be at least 0, got -2}}
  tgpu.tma_store_wait pending = -2
  return
}

// -----

//===----------------------------------------------------------------------===//
// Warpgroup MMA
//===----------------------------------------------------------------------===//

func.func @warpgroup_dot_acc_layout(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op the accumulator must have a #tgpu.mma<wgmma, ...> layout, got 'tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>'}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
  return
}

// -----

func.func @warpgroup_dot_acc_element(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op accumulates in f32, got 'f16'}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_a_swizzle(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<none>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op operand a in shared memory must be swizzle_128b, got #tgpu.shared<none>}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<none>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_a_stage(%a: tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op operand a in registers takes no stage index}}
  %r, %t = tgpu.warpgroup_dot %a[%s], %b, %acc : tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>, k_width = 2>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_a_layout(%a: tensor<64x64xbf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op operand a in registers must have the #tgpu.dot_operand<a> layout of the accumulator's, got 'tensor<64x64xbf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>'}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : tensor<64x64xbf16, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_b_stage(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op operand b has 2 stages: give a stage index}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_b_swizzle(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op operand b must be swizzle_128b, got #tgpu.shared<padded_rows, pad = 16>}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_elements(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<64x64xf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op operands must both be f16 or both bf16, got 'bf16' and 'f16'}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<64x64xf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_dot_shapes(%a: !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, %b: !tgpu.smem<128x64xbf16, #tgpu.shared<swizzle_128b>>, %acc: tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>, %s: index) {
  // expected-error @+1 {{'tgpu.warpgroup_dot' op expects [M, K] x [K, N] -> [M, N], got [64, 64] x [128, 64] -> [64, 64]}}
  %r, %t = tgpu.warpgroup_dot %a, %b, %acc : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>>, !tgpu.smem<128x64xbf16, #tgpu.shared<swizzle_128b>>, tensor<64x64xf32, #tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>>
  return
}

// -----

func.func @warpgroup_wait_pending(%t: !tgpu.async_token) {
  // expected-error @+1 {{'tgpu.warpgroup_wait' op pending must be at least 0, got -1}}
  tgpu.warpgroup_wait pending = -1 after %t
  return
}

// -----

//===----------------------------------------------------------------------===//
// warp_specialize
//===----------------------------------------------------------------------===//

func.func @warp_specialize_counts() {
  // expected-error @+1 {{'tgpu.warp_specialize' op has 1 partitions but 2 warp counts}}
  tgpu.warp_specialize num_warps = [1, 1] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @warp_specialize_warps() {
  // expected-error @+1 {{'tgpu.warp_specialize' op partition warp counts must be powers of two in [1, 16], got 3}}
  tgpu.warp_specialize num_warps = [3] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @warp_specialize_register_counts() {
  // expected-error @+1 {{'tgpu.warp_specialize' op has 1 partitions but 2 register budgets}}
  tgpu.warp_specialize num_warps = [1] registers = [24, 24] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @warp_specialize_register_budget() {
  // expected-error @+1 {{'tgpu.warp_specialize' op register budgets must be multiples of 8 in [24, 256], got 20}}
  tgpu.warp_specialize num_warps = [1] registers = [20] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @warp_specialize_default_budget() {
  // expected-error @+1 {{'tgpu.warp_specialize' op register budgets must be multiples of 8 in [24, 256], got 241}}
  tgpu.warp_specialize num_warps = [1] default_registers = 241 default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @warp_specialize_default_terminator() {
  // expected-error @+1 {{'tgpu.warp_specialize' op the default region must end with tgpu.warp_yield}}
  tgpu.warp_specialize num_warps = [1] default {
    tgpu.warp_return
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @warp_specialize_partition_terminator() {
  // expected-error @+1 {{'tgpu.warp_specialize' op every partition must end with tgpu.warp_return}}
  tgpu.warp_specialize num_warps = [1] default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_yield
  }
  return
}

// -----

func.func @warp_specialize_results() {
  // expected-error @+1 {{'tgpu.warp_specialize' op the default region yields () but the op returns ('i32')}}
  %r = tgpu.warp_specialize num_warps = [1] -> i32 default {
    tgpu.warp_yield
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

// A partition uses %x before the default region defines it, then fails to parse.
func.func @warp_specialize_region_parse_error(%n: index) {
  tgpu.warp_specialize num_warps = [1] default {
    %x = arith.constant 1 : index
    tgpu.warp_yield
  } partitions {
    %y = arith.addi %x, %x : index
    tgpu.warp_return
  }, {
  ^bb0:
  // expected-error @+1 {{redefinition of block '^bb0'}}
  ^bb0:
  }
  return
}

// -----

// An op before tgpu.warp_specialize uses %x before its default region defines it, then
// the region fails to parse.
func.func @warp_specialize_outer_use_parse_error(%n: index) {
  %z = arith.addi %x, %x : index
  tgpu.warp_specialize num_warps = [1] default {
    %x = arith.constant 1 : index
  ^bb0:
  // expected-error @+1 {{redefinition of block '^bb0'}}
  ^bb0:
  } partitions {
    tgpu.warp_return
  }
  return
}

// -----

func.func @named_barrier_threads(%id: i32) {
  // expected-error @+1 {{'tgpu.named_barrier' op threads must be a multiple of 32 in [32, 1024], got 100}}
  tgpu.named_barrier %id threads = 100
  return
}

// -----

func.func @named_barrier_id() {
  %id = arith.constant 16 : i32
  // expected-error @+1 {{'tgpu.named_barrier_arrive' op a block has named barriers 0 to 15, got 16}}
  tgpu.named_barrier_arrive %id threads = 128
  return
}
