//===- Passes.td - GPU code generation passes --------------*- tablegen -*-===//
#ifndef TESSERA_GPU_PASSES
#define TESSERA_GPU_PASSES

include "mlir/Pass/PassBase.td"

def TileToTgpu : Pass<"tessera-tile-to-tgpu", "mlir::ModuleOp"> {
  let summary = "layout assignment: every tile of a tile.grid gets its #tgpu layout encoding";
  let description = [{
    Finds a layout for every tile of each `tile.grid` body (producers fix them: a
    product's result is an accumulator, a reduction's a row or column slice; consumers
    demand them from loads: a product's left operand, its right operand read whole from
    shared memory) and writes it as the encoding of the tile's tensor type. A value used
    where its user needs the user's type (element-wise operands, a product's accumulator,
    loop-carried values) in another layout goes through `tgpu.convert_layout`; a splat
    constant is cloned in the layout wanted. The grid records the kernel's accumulator
    layout (`tgpu.accumulator`): mma.sync m16n8k16, or wgmma where the option asks for it
    and the program fits. A tile no layout can hold is reported at the op that makes it.
  }];
  let options = [
    Option<"wgmma", "wgmma", "bool", /*default=*/"false",
           "use Hopper warpgroup MMA (sm_90a) for programs that fit it: warpgroups of 4 "
           "warps each owning 64 rows, operands staged by cp.async in swizzled shared "
           "memory; other programs keep mma.sync">
  ];
  let dependentDialects = ["::tessera::tgpu::TgpuDialect"];
}

def TgpuCleanupConversions : Pass<"tessera-tgpu-cleanup-conversions", "mlir::ModuleOp"> {
  let summary = "each tgpu.convert_layout once, from the value's own layout";
  let description = [{
    Runs after tessera-tile-to-tgpu, which converts a value in front of every use that
    needs another layout. Left: the conversions the kernel makes, as tessera-tile-to-gpu
    makes them. A conversion of a conversion converts the original value (a chain ending
    in the accumulator's own left-operand layout becomes the in-register
    Acc -> `dot_operand<a>`); a conversion to the value's own layout is removed; one that
    an equal conversion (same value, same layout) dominates reuses it; conversions left
    unused are dropped.
  }];
}

def TgpuInsertBarriers : Pass<"tessera-tgpu-insert-barriers", "mlir::ModuleOp"> {
  let summary = "block barriers (and proxy fences) between conflicting shared-memory accesses";
  let description = [{
    A membar-style analysis over the tgpu ops that touch shared memory (local_load /
    local_store, async_copy landing at its async_wait, the products reading a
    shared-operand view, TMA loads and stores, warpgroup_dot operands; a local_alloc of
    a tile is ordered on both sides by itself): in program order, with loops run to a
    fixed point, a read after a write, a write after a read or a write after a write of
    the same buffer and stage (stages differ only when both are different constants)
    gets a `tgpu.barrier` right before the second access (before the run of copies it
    ends, if it is a copy); an access through the async proxy (wgmma, TMA) of what
    generic stores or cp.async wrote gets a `tgpu.fence_async_shared` before that
    barrier. Readers of a TMA load wait on its mbarrier and need no barrier. Barriers
    already there count (a second run adds nothing); the partitions of a
    `tgpu.warp_specialize` are left alone (they synchronise through mbarriers) and a
    barrier settles what is pending before one. A `tile.grid` is walked once its waits
    are ops (`tgpu.waits_placed`); the lowering orders the others itself.
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "remark at each op a barrier was put before, saying which access it orders">
  ];
  let dependentDialects = ["::tessera::tgpu::TgpuDialect"];
}

def TgpuStageOperands : Pass<"tessera-tgpu-stage-operands", "mlir::ModuleOp"> {
  let summary = "which product operands are staged in shared memory, as tgpu.staged";
  let description = [{
    Runs after tessera-tile-to-tgpu (and tessera-persistent-grid), before
    tessera-tgpu-assign-stages. Marks each `tile.load` whose tile goes through shared
    memory before the products read it with `tgpu.staged = #tgpu.shared<...>`:
    `swizzle_128b` for the 16-bit operands of wgmma products (read by descriptor),
    `padded_rows, pad = 16` for mma.sync's (read by ldmatrix) and other staged tiles.
    Right operands (`#tgpu.shared_operand`) are always staged; left operands with wgmma,
    and with mma.sync where products alone read them, per use (in a loop, or in a grid
    marked `tile.left_operands_per_use`) and in 16-byte vectors. The grid is marked
    `tgpu.operands_staged`. On a grid marked already the loads' staging is kept (a user
    may stage an mma.sync left operand or read it into registers) and checked: what the
    lowering cannot follow is reported at the load.

    With `tma` (Config.tma), the first grid of each function whose swizzled operand
    tiles TMA can all copy is marked `tgpu.tensor_copies`: tessera-tile-to-gpu copies
    them from descriptors with mbarriers instead of cp.async, and
    tessera-tgpu-warp-specialize splits that grid. A grid marked already is checked.
  }];
  let options = [
    Option<"tma", "tma", "bool", /*default=*/"false",
           "copy the swizzled operands of one grid per function by TMA where it can">,
  ];
}

def TgpuAssignStages : Pass<"tessera-tgpu-assign-stages", "mlir::ModuleOp"> {
  let summary = "the loop schedule (stages, prefetches, pipelining mode) as tgpu.* attributes";
  let description = [{
    Runs after tessera-tile-to-tgpu. Writes the decisions tessera-tile-to-gpu's loop
    lowering follows: on each `tile.grid`, `tgpu.num_stages` (stages of a prefetched
    buffer after the shared-memory ceiling) and `tgpu.blocks_per_sm` (where only the
    first product's operands are double-buffered); on each `scf.for`, `tgpu.pipeline`
    ("none", "registers", "cp_async", "cp_async_first_product"),
    `tgpu.prefetch_distance` (iterations ahead) and `tgpu.continues_prefetch` (its first
    tiles are the previous loop's last copies); on each prefetched `tile.load`, its
    `tgpu.prefetch_distance`. A `tgpu.prefetch_distance` a user put on a loop is kept (0:
    one stage, no prefetching), or reported at the loop when it cannot be honoured.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def TgpuReadAhead : Pass<"tessera-tgpu-read-ahead", "mlir::ModuleOp"> {
  let summary = "a list walk's entry reads made an iteration early where nothing is prefetched";
  let description = [{
    Runs after tessera-tgpu-assign-stages. In each `tile.speculable` `scf.for` of a grid
    whose tiles are copied when their iteration comes (`tgpu.prefetch_distance = 0`),
    every scalar read of an input (a buffer the kernel never writes) that a `tile.load`'s
    indices come from, and whose own indices follow from the induction variable alone,
    is made one iteration early and carried first among the loop's values: the value
    for the lower bound is read before the loop, each iteration reads the next one's at
    its top. A tile's copies then wait for a value read during the previous tile, not
    for the read itself. Prefetched loops (distance > 0) are left as they are: their
    loads' indices must be known an iteration early, which a carried value is not.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def TgpuCopyStagedLoads : Pass<"tessera-tgpu-copy-staged-loads", "mlir::ModuleOp"> {
  let summary = "staged operand loads as copies into shared buffers and reads of them";
  let description = [{
    Runs after tessera-tgpu-assign-stages (and the passes that move loads: read-ahead,
    product pipelining), before tessera-tgpu-allocate-shared. In each grid whose operand
    tiles TMA does not copy (no `tgpu.tensor_copies`), every `tile.load` staged in
    shared memory becomes a `tgpu.async_copy` into a mutable `tgpu.local_alloc` (one per
    buffer the lowering uses: swizzled rows per source, tile type and constant column,
    padded rows per source and tile type; made in the grid's body just before the op
    holding its first use, with the schedule's `tgpu.buffer_stages` as its stages),
    keeping the load's `tgpu.prefetch_distance`; each reader of the tile reads it with a
    `tgpu.local_load` right before it. The copy is cp.async into swizzled rows, through
    registers into padded rows. A stage left out on a multi-stage buffer is the loop
    schedule's (tessera-tile-to-gpu pipelines the loop). Marks the grid
    `tgpu.loads_copied`; a grid not scheduled yet is scheduled first.
  }];
  let dependentDialects = ["::tessera::tgpu::TgpuDialect", "::mlir::gpu::GPUDialect"];
}

def TgpuPipelineLoops : Pass<"tessera-tgpu-pipeline-loops", "mlir::ModuleOp"> {
  let summary = "software pipelining: each cp.async prefetching loop rotated in the IR";
  let description = [{
    Runs after tessera-tgpu-copy-staged-loads, before tessera-tgpu-allocate-shared. In a
    wgmma grid whose staged loads are copies (`tgpu.loads_copied`), each loop the
    schedule prefetches by cp.async (`tgpu.pipeline` "cp_async" or
    "cp_async_first_product") is rotated: the copies of its first
    `tgpu.prefetch_distance` iterations go before it (its prologue, into stages 0, 1,
    ...), the stage its iteration reads is carried as its last iter_arg, each prefetched
    copy is issued for the iteration `distance` on into the stage the last iteration read
    (first-product loops: for the next iteration into the other stage, after the body's
    own copies that precede its first product), and every `tgpu.local_load` of a
    prefetched buffer in the loop names the stage. A `tgpu.continues_prefetch` loop
    starts from the previous loop's stage, without a prologue. Each iteration starts
    with its wait (`tgpu.async_wait`, "cp_async": all but the copies for the
    `distance - 1` iterations after it) and `tgpu.barrier`. Marks each loop
    `tgpu.pipelined`; the prologue's and the products' waits are
    tessera-tgpu-insert-waits'.
  }];
  let dependentDialects = ["::tessera::tgpu::TgpuDialect", "::mlir::arith::ArithDialect"];
}

def TgpuInsertWaits : Pass<"tessera-tgpu-insert-waits", "mlir::ModuleOp"> {
  let summary = "the waits for cp.async copies as tgpu.async_wait ops of the tile program";
  let description = [{
    Runs after tessera-tgpu-allocate-shared (the lowering it runs follows the plan). In
    each wgmma grid whose staged loads are cp.async copies (`tgpu.loads_copied`, not
    `tgpu.tensor_copies`), every wait the lowering makes for copy groups by itself —
    before a product reads an operand's copy, before a buffer's next copy, before a
    software-pipelined loop's prologue, at branch, loop-region and work-item ends, where
    a buffer reuses bytes another one had — is written where it stands in the tile
    program, above the reads of copied buffers right before that op: `tgpu.async_wait
    pending = n` (each copy one group), `tgpu.fence_async_shared` (cp.async writes through
    the generic proxy, wgmma reads through the async one) and the `tgpu.barrier` the
    lowering puts right after the wait (unless the op waited for products before it, which
    that barrier must follow); the lowering's other barriers stay its own. The waits are
    the lowering's own, found by lowering a scratch copy of the module, so no kernel
    changes. Marks the grid `tgpu.waits_placed`:
    tessera-tile-to-gpu then makes no wait of its own there and reports a copy still in
    flight where it needs it landed.
  }];
  let dependentDialects = ["::tessera::tgpu::TgpuDialect"];
}

def PersistentGrid : Pass<"tessera-persistent-grid", "mlir::ModuleOp"> {
  let summary = "each tile.grid with products becomes one work loop per persistent program";
  let description = [{
    Runs before tessera-tgpu-assign-stages (Config.persistent). Each `tile.grid` holding
    a `tile.dot` becomes a grid over its work items (the product of its sizes), marked
    `tgpu.persistent`, whose body is an `scf.for` over items t = program id, t +=
    `gpu.grid_dim x` (`tgpu.work_items`, `tgpu.prefetch_distance = 0`: never pipelined),
    with the old program ids derived from t: query tiles slowest where the grid launches
    its last query tiles first (causal / window: the heaviest items start first), else
    fastest. Its kernel launches min(blocks per SM x #SMs, items) programs (the launch
    record tessera-tgpu-outline-kernels writes).
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect", "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

def TgpuAllocateShared : Pass<"tessera-tgpu-allocate-shared", "mlir::ModuleOp"> {
  let summary = "shared-memory offsets from the buffers' sizes, alignments and live ranges";
  let description = [{
    Runs after tessera-tgpu-assign-stages (and tessera-tgpu-warp-specialize). Finds every
    shared buffer each `tile.grid`'s kernel needs (operand tiles with their stages,
    staging, conversion and reduction scratch, computed operands, outputs stored through
    shared memory, the mbarriers of a `tgpu.tensor_copies` grid) by lowering a scratch copy of the module, with its
    size, alignment and live range (the tile ops whose lowering touches it, whole loops
    around them), and gives each an offset: into the bytes of an earlier buffer of its
    size that is dead by then, else above the earlier buffers it lives with. Writes
    `tgpu.shared_offset` (array<i64>, one per buffer in request order) on each requesting
    op (the grid for its mbarriers) and `tgpu.shared_bytes` on the grid, which
    tessera-tile-to-gpu follows. Offsets already on an op are kept; overlapping live
    buffers, misaligned offsets and plans beyond the 227 KiB a block can have are
    reported.
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "a remark per buffer: kind, bytes, offset, alignment, live range (op numbers "
           "in pre-order, the grid 0)">
  ];
  let dependentDialects = [
    "::tessera::tgpu::TgpuDialect",
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"
  ];
}

def TgpuOutlineKernels : Pass<"tessera-tgpu-outline-kernels", "mlir::ModuleOp"> {
  let summary = "each tile.grid into a gpu.func, with its launch attributes and record";
  let description = [{
    Runs last before tessera-tile-to-gpu. Every `tile.grid` of a host function moves
    into a `gpu.func` of the function's `gpu.module` (`<func>_kernels`, kernel
    `<func>_kernel<i>`): the kernel takes the function's buffers (unit stride in the
    last dimension), then the function's TMA descriptors (`!llvm.ptr`, counted by
    `tessera.tensor_map_params`); the host values the grid reads (sizes, group counts)
    are recomputed at its entry from the arguments. Everything about launching it is
    decided here from the grid's attributes: the block size (num_warps x 32, plus a
    producer warpgroup under `tgpu.warp_specialize`), ptxas's `.minnctapersm` (min_blocks,
    else the schedule's `tgpu.blocks_per_sm`; a persistent grid's own estimate),
    `.maxnreg` for warp specialisation, and the host function's launch record:
    `tessera.launches` (kernel, grid as formulas of argument sizes, block, dynamic shared
    bytes = `tgpu.shared_bytes` + 1024 of alignment slack), `tessera.workspaces`
    (host allocations become trailing arguments), `tessera.tensor_maps`
    (docs/LAUNCH_RECORD.md). Grids not staged, planned or scheduled yet (hand-written
    tgpu IR) are, by those passes' code.
  }];
  let options = [
    Option<"minBlocks", "min-blocks", "int64_t", /*default=*/"0",
           "blocks per SM each kernel's registers must leave room for (ptxas "
           ".minnctapersm); 0: only what a stage plan made room for in shared memory">
  ];
  let dependentDialects = [
    "::mlir::gpu::GPUDialect", "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect"
  ];
}

def TileToGpu : Pass<"tessera-tile-to-gpu", "mlir::ModuleOp"> {
  let summary = "distribute tile programs over GPU threads (mma.sync or wgmma tensor cores)";
  let description = [{
    Lowers the `tile.grid` each kernel holds (tessera-tgpu-outline-kernels; grids still
    in host functions are outlined first, with its defaults): its tiles are distributed
    over the block's threads in the layouts tessera-tile-to-tgpu wrote in their types
    (mma accumulator, row/column slices, mma operands; the grid's accumulator layout
    picks mma.sync or wgmma), row reductions end with quad shuffles, `tile.dot` becomes
    `nvvm.mma.sync` m16n8k16 or wgmma; element-wise ops, broadcasts, reductions along a
    warp's rows and in-register layout conversions are left on tiles cast from their
    operands' slots for tessera-convert-tgpu-to-nvvm, which runs after it in the
    pipelines. It follows the grid's staging, schedule and shared-memory plan. A grid marked `tgpu.tensor_copies`
    (tessera-tgpu-stage-operands{tma=true}) copies its swizzled operand tiles with TMA
    (cp.async.bulk.tensor from the kernel's descriptor parameters, mbarrier completion).
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"
  ];
}

def TgpuWarpSpecialize : Pass<"tessera-tgpu-warp-specialize", "mlir::ModuleOp"> {
  let summary = "a TMA grid's body runs on consumer warpgroups fed by a producer partition";
  let description = [{
    Runs after tessera-tgpu-assign-stages (Config.warp_specialize, which needs tma and
    sm_90a). In each function, the grid the tma knob copies by TMA (the first whose every
    staged tile TMA can copy) becomes a `tgpu.warp_specialize`: its body is the default
    region (the consumers: num_warps warps, `default_registers`), and one partition of 4
    warps (`registers`) holds the producer slice — the staged `tile.load`s with the loops
    (bounds, loop-carried scalars), branches and scalar ops their indices and control
    need. The loops stop prefetching (`tgpu.pipeline = "none"`); every staged load in a
    loop takes max(2, `tgpu.num_stages`) buffer stages, the ring the producer fills
    ahead; `tgpu.blocks_per_sm` is dropped. A grid whose slice would need a tile value,
    a while loop or a branch's result is left as it is, with a remark saying why.
    tessera-tile-to-gpu lowers the op (a producer warpgroup after the consumers' warps,
    full / empty mbarriers per stage, setmaxnreg).
    With `pingpong` the op gets `tgpu.pingpong`: its two consumer warpgroups take turns
    at their products (named barriers 2 and 3); a grid split with other than two
    consumer warpgroups is an error.
  }];
  let options = [
    Option<"pingpong", "pingpong", "bool", /*default=*/"false",
           "two consumer warpgroups take turns at their products (FlashAttention-3's "
           "ping-pong)">,
  ];
  let dependentDialects = ["::tessera::tgpu::TgpuDialect", "::mlir::scf::SCFDialect"];
}

def TgpuPipelineProducts : Pass<"tessera-tgpu-pipeline-products", "mlir::ModuleOp"> {
  let summary = "intra-warpgroup pipelining: a loop's last product issued one iteration later";
  let description = [{
    Runs after tessera-tgpu-warp-specialize (Config.intra_warpgroup_overlap), on the
    loops of a `tgpu.warp_specialize`'s default region (the consumers, whose staged tiles
    come from the producer's ring). A loop whose body issues two or more products and
    yields the last (the softmax forward's P·V) is rotated: iteration j issues its first
    product (Q·K_jᵀ), then the last product of iteration j - step with its loads (V), then
    the rest of its body (the softmax), which the lowering runs while the tensor cores
    finish P·V (wgmma.wait_group 1). A guarded prologue runs the first iteration's
    stage 0, a guarded epilogue the last one's product; the values stage 1 reads from
    stage 0 (P, O·α) are carried. Loops that follow one another in a walk (starting from
    the previous one's late results, the same stage 1) form a chain: the next loop's
    prologue issues the previous one's last product after its own first, and only the
    chain's last loop has an epilogue. Same ops, other order: results are bit-identical.
    The product issued later is marked `tgpu.product_stage = 1`; a loop with a mark of
    the user's (0 keeps it as it is) follows it, or reports at the op why it cannot.
    Rotated loops get `tgpu.rotated` and are left alone by a second run.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::scf::SCFDialect"];
}

def TgpuToNvvm : Pass<"tessera-convert-tgpu-to-nvvm", "mlir::gpu::GPUModuleOp"> {
  let summary = "ops on tiles with register layouts to per-thread scalars, one file per op family";
  let description = [{
    The tgpu -> nvvm conversion patterns for the ops tessera-tile-to-gpu leaves on tiles,
    run on the kernels right after it. A tile whose type has a #tgpu register layout is,
    in each thread, the scalars ("slots") that layout gives it: the type converter maps
    it to them (1:N). Element-wise family: an arith or math op on such tiles becomes the
    same op on each slot (a scalar operand used in every slot, a splat constant its
    scalar in each); f32 `math.exp2` / `math.log2` become `ex2.approx.ftz` /
    `lg2.approx.ftz`; a `tile.broadcast` of a row or column slice into an accumulator or
    row-span tile picks its input's slots (no instruction). Reduction family: a
    `tile.reduce` along the rows of an accumulator or row-span tile into its row slice
    folds each thread's slots of a row, then (an accumulator's) two xor shuffles
    combine the row's quad. Layout conversions: `tgpu.convert_layout` of an accumulator
    to a left operand of its shape picks slots (no instruction). Loops and branches that
    carry tiles (hand-written IR) carry their slots (upstream's scf structural
    conversions). Then rounding divisions (ceildivsi / floordivsi) become plain integer
    ops. tessera-tile-to-gpu's
    casts between tiles and their slots fold away. An op no family lowers (a result
    without a register layout, a constant tile that is not a splat, a broadcast from
    another layout than its result's slice, a reduction across warps, a conversion that
    moves elements between threads) is an error.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::LLVM::LLVMDialect",
                           "::mlir::gpu::GPUDialect"];
}

def TgpuSyncToNvvm : Pass<"tessera-convert-tgpu-sync-to-nvvm", "mlir::gpu::GPUModuleOp"> {
  let summary = "tgpu barriers, proxy fences, cp.async groups / waits and wgmma waits to NVVM";
  let description = [{
    The synchronisation family of the tgpu -> nvvm conversion patterns, run on the
    kernels right after tessera-tile-to-gpu: `tgpu.barrier` -> `gpu.barrier`,
    `tgpu.named_barrier` / `tgpu.named_barrier_arrive` -> `nvvm.barrier` /
    `nvvm.barrier.arrive` (a barrier id and a thread count), `tgpu.fence_async_shared` -> `nvvm.fence.proxy` (async.shared::cta),
    `tgpu.async_commit_group` -> `nvvm.cp.async.commit.group`, `tgpu.async_wait
    pending = n` -> `nvvm.cp.async.wait.group n`, `tgpu.warpgroup_wait %r.. pending = n`
    (f32 registers, no token) -> `nvvm.wgmma.wait.group n` and the registers through
    empty asm statements that keep their uses below it. A commit or wait whose token is
    still read (a wait naming its groups), or a product wait naming its product's token,
    is an error: the ops that token orders are not lowered by this pass.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect", "::mlir::NVVM::NVVMDialect",
                           "::mlir::arith::ArithDialect"];
}

def TgpuAsyncToNvvm : Pass<"tessera-convert-tgpu-async-to-nvvm", "mlir::gpu::GPUModuleOp"> {
  let summary = "tgpu mbarriers and TMA copies to PTX";
  let description = [{
    The asynchronous-copy family of the tgpu -> nvvm conversion patterns, run on the
    kernels after tessera-tile-to-gpu: `tgpu.mbarrier_init`, `tgpu.fence_mbarrier_init`,
    `tgpu.mbarrier_expect_tx`, `tgpu.mbarrier_arrive`, `tgpu.mbarrier_wait`,
    `tgpu.tma_load`, `tgpu.tma_store` and `tgpu.tma_store_wait` become their PTX
    instructions (inline, as NVVM emits its own), with
    an !tgpu.mbarrier as its 32-bit shared address (stage s 8 s bytes on), an !tgpu.smem
    as its stage 0's address and a !tgpu.tma_desc as the kernel's descriptor parameter.
    The kernels give those through unrealized casts of the addresses, which fold away; a
    barrier, buffer or descriptor no address is known for is an error.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::LLVM::LLVMDialect"];
}

def TensorMapParams : Pass<"tessera-tensor-map-params", "mlir::gpu::GPUModuleOp"> {
  let summary = "a kernel's TMA descriptor parameters become byval grid constants";
  let description = [{
    Runs after the kernels are LLVM functions. The last `tessera.tensor_map_params`
    parameters of a kernel (`!llvm.ptr`, appended by tessera-tgpu-outline-kernels) get
    `llvm.byval = !llvm.array<128 x i8>`, `llvm.align = 64` and `nvvm.grid_constant`:
    PTX `.param .align 64 .b8 p[128]`, whose own address (cvta.param) TMA reads. The
    GPU-to-NVVM lowering keeps neither attribute from a `gpu.func`.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect"];
}

#endif // TESSERA_GPU_PASSES
