// RUN: tessera-opt %s -split-input-file -verify-diagnostics --tessera-tgpu-allocate-shared

// K and V are read in the same loop: they cannot share bytes.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @overlap(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      // expected-note @+1 {{the staging buffer is requested here}}
      %kt = tile.load %k[%n0, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x128xbf16, #keyT>
      // expected-error @+1 {{tgpu.shared_offset: the staging buffer at [0, 17408) overlaps the staging buffer at [0, 17408) while both are live (ops 7-18 and 6-18)}}
      %vt = tile.load %v[%n0, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// Staging buffers take 128-byte alignment (16-byte copies, ldmatrix rows).
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @misaligned(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      // expected-error @+1 {{tgpu.shared_offset: the staging buffer (17408 bytes) at 100 is not aligned to 128 bytes}}
      %kt = tile.load %k[%n0, %c0] {tgpu.shared_offset = array<i64: 100>} : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// Beyond the 227 KiB a block can have (the launch adds 1024 bytes of slack).
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @beyond(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-error @+1 {{the kernel needs 248448 bytes of shared memory, more than the 232448 a block can have; use smaller tiles or a larger split}}
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] {tgpu.shared_offset = array<i64: 230016>} : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// One offset per buffer the op requests.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @count(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      // expected-error @+1 {{tgpu.shared_offset places 2 buffers; the kernel requests 1 here}}
      %kt = tile.load %k[%n0, %c0] {tgpu.shared_offset = array<i64: 0, 17408>} : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// A planned grid places every buffer.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @unplaced(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.shared_bytes = 34816 : i64} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x128xbf16, #keyT>
      // expected-error @+1 {{the grid's tgpu.shared_bytes says it is planned, but nothing places the staging buffer (17408 bytes) requested here}}
      %vt = tile.load %v[%n0, %c0] : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}

// -----

// The plan's bytes hold every buffer.
#acc = #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>
#lhs = #tgpu.dot_operand<a, parent = #acc, k_width = 2>
#keyT = #tgpu.shared_operand<parent = #acc, transposed = true>
#rhs = #tgpu.shared_operand<parent = #acc>
!in = memref<?x128xbf16, strided<[?, ?], offset: ?>>
!out = memref<?x128xf32, strided<[?, ?], offset: ?>>
func.func @short(%q: !in, %k: !in, %v: !in, %o: !out) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %n = memref.dim %q, %c0 : !in
  %tiles = arith.ceildivsi %n, %c64 : index
  // expected-error @+1 {{tgpu.shared_bytes = 20000, but the staging buffer ends at 34816}}
  tile.grid [%tiles] config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 1, split = 1> attributes {tgpu.accumulator = #acc, tgpu.shared_bytes = 20000 : i64} {
    %i = tile.program_id 0 : index
    %row = arith.muli %i, %c64 : index
    %qt = tile.load %q[%row, %c0] : !in -> tensor<64x128xbf16, #lhs>
    %zero = arith.constant dense<0.0> : tensor<64x64xf32, #acc>
    %acc0 = arith.constant dense<0.0> : tensor<64x128xf32, #acc>
    %acc1 = scf.for %t = %c0 to %tiles step %c1 iter_args(%x = %acc0) -> (tensor<64x128xf32, #acc>) {
      %n0 = arith.muli %t, %c64 : index
      %kt = tile.load %k[%n0, %c0] {tgpu.shared_offset = array<i64: 0>} : !in -> tensor<64x128xbf16, #keyT>
      %vt = tile.load %v[%n0, %c0] {tgpu.shared_offset = array<i64: 17408>} : !in -> tensor<64x128xbf16, #rhs>
      %ktt = tile.trans %kt : tensor<64x128xbf16, #keyT> -> tensor<128x64xbf16, #rhs>
      %s = tile.dot %qt, %ktt, %zero : tensor<64x128xbf16, #lhs>, tensor<128x64xbf16, #rhs> -> tensor<64x64xf32, #acc>
      %pb = arith.truncf %s : tensor<64x64xf32, #acc> to tensor<64x64xbf16, #acc>
      %p = tgpu.convert_layout %pb : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #lhs>
      %next = tile.dot %p, %vt, %x : tensor<64x64xbf16, #lhs>, tensor<64x128xbf16, #rhs> -> tensor<64x128xf32, #acc>
      scf.yield %next : tensor<64x128xf32, #acc>
    }
    tile.store %acc1, %o[%row, %c0] : tensor<64x128xf32, #acc>, !out
  }
  return
}
