// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tile-to-tgpu=wgmma=true --tessera-tile-to-gpu

// tessera-tile-to-gpu lowers a persistent grid's work loop (tgpu.work_items) unpipelined
// and carrying nothing: a hand-written schedule that pipelines it is refused at the loop.
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @pipelined_work_loop(%q: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.num_stages = 1 : i64, tgpu.persistent} {
    %first = tile.program_id 0 : index
    %programs = gpu.grid_dim x
    // expected-error @+1 {{a work loop (tgpu.work_items) carries nothing and is not pipelined}}
    scf.for %t = %first to %tiles step %programs {
      %row = arith.muli %t, %c64 : index
      %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16>
      %ext = arith.extf %qt : tensor<64x128xbf16> to tensor<64x128xf32>
      tile.store %ext, %o[%row, %c0] : tensor<64x128xf32>, !out
    } {tgpu.work_items, tgpu.pipeline = "cp_async", tgpu.prefetch_distance = 0 : i64}
  }
  return
}
