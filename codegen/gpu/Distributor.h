//===- Distributor.h - one kernel body, distributed over threads ------------===//
//
// Private to codegen/gpu: the Distributor emits one kernel's body from a tile.grid body,
// each tile value a list of per-thread scalars ("slots") in the layout LayoutAssignment
// gave it. Its methods are defined by concern: SharedMemory.cpp (layout conversions,
// staging buffers), AsyncCopies.cpp (the swizzled arena, cp.async groups, wgmma waits),
// LoadStore.cpp, Products.cpp (mma.sync, wgmma), Elementwise.cpp (element-wise ops,
// reductions, broadcasts), Loops.cpp (stage plan, prefetching, scf loops and branches),
// ScatterAdd.cpp (atomic table sums) and Distributor.cpp (the op dispatcher).
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_DISTRIBUTOR_H
#define TESSERA_CODEGEN_GPU_DISTRIBUTOR_H

#include "codegen/gpu/LayoutAssignment.h"
#include "codegen/gpu/LayoutEncoding.h"
#include "codegen/gpu/SharedAllocation.h"
#include "codegen/gpu/StageAttrs.h"
#include "codegen/gpu/WarpSpecialize.h"
#include "codegen/gpu/Wgmma.h"
#include "dialect/tgpu/TgpuDialect.h"
#include "dialect/tile/TileDialect.h"
#include "passes/TilePrograms.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/SaveAndRestore.h"

#include <functional>
#include <optional>

namespace tessera::gpu {
using namespace ::mlir;

using Slots = SmallVector<Value>;
/// Shared memory a block may opt in to on sm_90 (227 KiB).
constexpr int64_t kSharedLimit = 227 * 1024;
/// Shared memory of one SM on sm_90 (each block also takes 1 KiB of it).
constexpr int64_t kSharedPerSM = 228 * 1024;

/// A tile copied from global into shared memory: a staged tile.load, or the
/// tgpu.async_copy tessera-tgpu-copy-staged-loads makes of one (into `buffer`).
struct TileCopy {
  Operation *op = nullptr;
  Value source;
  ValueRange indices;
  ArrayRef<int64_t> shape;
  Type elem;
  Type target;   // the load's tile type, or the copy's buffer type
  Value buffer;  // the copy's buffer (null for a load)
  bool staged = false, swizzled = false;
  static TileCopy of(Operation *op);
  /// Whether `op` is a tile.load or a tgpu.async_copy.
  static bool isCopy(Operation *op);
  /// Whether `other` fills the same kind of buffer from the same source.
  bool sameTarget(const TileCopy &other) const {
    return source == other.source && target == other.target && buffer == other.buffer;
  }
};

/// Whether index `v` is a multiple of `w` by construction.
bool knownMultipleOf(Value v, int64_t w);
/// 16-byte vectors per thread when `op`'s tile is made of whole 16-byte chunks of its
/// buffer's rows (all of a row, or columns starting at a multiple of 16 bytes of a row
/// that is a whole number of chunks) and the chunks divide evenly among `numThreads`
/// threads; 0 otherwise.
int64_t vectorsPerThreadOf(const TileCopy &copy, int64_t numThreads);
/// A transpose of a register tile that only stores read: the stores write the input's
/// slots at swapped coordinates instead (no trip through shared memory).
bool isStoredTranspose(tile::TransOp t);

/// Emits the body of one kernel: the grid body's ops, distributed over threads.
class Distributor {
public:
  Distributor(ImplicitLocOpBuilder &b, int64_t numWarps, int64_t numStages,
              tgpu::MmaEncodingAttr accumulator, ::mlir::gpu::GPUFuncOp kernel)
      : b(b), kernel(kernel), numThreads(32 * numWarps), numWarps(numWarps),
        numStages(numStages), accumulator(accumulator),
        wgmma(accumulator.getVersion() == tgpu::MmaVersion::wgmma) {
    deriveWarpIndices(::mlir::gpu::ThreadIdOp::create(b, ::mlir::gpu::Dimension::x));
    beginSharedArena(); // unused (and removed) when nothing is staged
    deriveLaneIndices();
  }

  LogicalResult lowerBlock(Block &block);
  /// Hopper loops with num_stages >= 2 copy a tile one iteration ahead into the other
  /// stage of a double buffer. By default every tile a loop loads is; when double-
  /// buffering only the operands of the loop's first product (K) lets more blocks share
  /// an SM (by shared memory: 64 x 64 tiles at D = 128 take 64 KiB instead of 80), the
  /// others (V) stay single: copied at the top of their own iteration, they land under
  /// the first product and the softmax. Decided once per kernel, before lowering.
  void planStages(Block &gridBody);
  /// Blocks per SM the stage plan made room for (0: no plan), passed on to ptxas as
  /// .minnctapersm so that registers do not undo what shared memory allowed.
  int64_t plannedBlocksPerSM = 0;
  /// Whether the grid was lowered as producer and consumer warpgroups.
  bool isWarpSpecialized() const { return warpSpecialized; }
  /// The pipelining lowerFor gives one loop (StageAssignment.cpp writes it as the loop's
  /// tgpu.* attributes, docs/RationaleTgpu.md): its prefetched loads, how many
  /// iterations ahead, whether it takes over the previous loop's copies in flight.
  struct LoopSchedule {
    scf::ForOp loop;
    SmallVector<Operation *> prefetched; // tile.load ops
    int64_t distance = 0;
    bool continues = false;
    StringRef mode;
  };
  /// Every loop's schedule, in lowering order (after planStages); fails, located at the
  /// loop, where a user's tgpu.prefetch_distance cannot be honoured.
  FailureOr<SmallVector<LoopSchedule>> scheduleLoops(Block &gridBody);
  int64_t plannedStages() const { return numStages; }
  /// Stages of the swizzled buffer `load` is staged into (after planStages): 1 unless
  /// the plan multi-buffers it.
  int64_t plannedBufferStages(tile::LoadOp load) {
    return isStaged(load) && swizzles(load) &&
                   doubleBuffered.contains(bufferKey(load))
               ? prefetchStages()
               : 1;
  }
  /// Takes the stage plan from the grid's tgpu.* attributes (StageAttrs.h) instead of
  /// planStages; lowerFor then follows each loop's. Fails, located, on a plan it cannot
  /// follow.
  LogicalResult followSchedule(tile::GridOp grid);
  IRMapping scalars; // non-tile values: program ids, sizes, loop counters
  /// Bytes of dynamic shared memory the kernel needs (wgmma kernels; 0 otherwise).
  int64_t dynamicSharedBytes() const { return launchSharedBytes(arenaBytes); }
  /// A tgpu.tensor_copies grid (TensorMemory.cpp), before lowerBlock: its swizzled
  /// operand tiles are copied by TMA from the kernel's descriptor parameters (every one
  /// can be: stageTensorCopies checked them). Fails where the kernel lacks them.
  LogicalResult useTensorCopies(tile::GridOp grid);
  /// After lowerBlock: waits for copies still landing, places and initialises the
  /// barriers.
  LogicalResult finishTensorCopies();
  /// Loads whose tile goes to shared memory (tessera-tgpu-stage-operands decides).
  static bool isStaged(tile::LoadOp op) { return bool(stagingOf(op)); }
  /// Whether a staged load goes to a swizzled buffer (16-bit tiles of wgmma kernels; an
  /// f32 tile, a state, goes to a padded one).
  static bool swizzles(tile::LoadOp op) {
    tgpu::SharedLayoutAttr staged = stagingOf(op);
    return staged && staged.getKind() == tgpu::SwizzleKind::swizzle_128b;
  }
  /// (source, tile type without layout, first column where constant, else -1).
  using BufferKey = std::tuple<Value, Type, int64_t>;
  /// Loads of one source share a buffer whatever their layouts (one tile walked by
  /// several loops), unless they start at different constant columns: pieces of one row
  /// (the backward's 64-column pieces of K) are live together. `source` replaces the
  /// load's own (the distributor keys by the lowered memref).
  static BufferKey bufferKey(tile::LoadOp load, Value source = {}) {
    std::optional<int64_t> column = getConstantIntValue(load.getIndices().back());
    return {source ? source : load.getSource(),
            cast<RankedTensorType>(load.getType()).cloneWithEncoding({}), column.value_or(-1)};
  }
  /// Threads a block launches: num_warps x 32, plus the producer warpgroup of a
  /// warp-specialised kernel (known after lowerBlock).
  int64_t blockThreads() const {
    return numThreads + (warpSpecialized ? 32 * kProducerWarps : 0);
  }

private:
  ImplicitLocOpBuilder &b;
  DenseMap<Value, Slots> tiles;
  Value g, t2, isQuadLeader, threadId, lane, warp, warpgroup;
  /// threadId = `tid`, lane, warp and warpgroup from it; then g, t2 and isQuadLeader
  /// from the lane, after which lane-derived values are created (laneAnchor).
  void deriveWarpIndices(Value tid) {
    threadId = tid;
    Value c32 = arith::ConstantIndexOp::create(b, 32);
    lane = arith::RemUIOp::create(b, tid, c32);
    warp = arith::DivUIOp::create(b, tid, c32);
    warpgroup = arith::DivUIOp::create(b, warp, arith::ConstantIndexOp::create(b, 4));
  }
  void deriveLaneIndices() {
    g = arith::DivUIOp::create(b, lane, arith::ConstantIndexOp::create(b, 4));
    Value t = arith::RemUIOp::create(b, lane, arith::ConstantIndexOp::create(b, 4));
    t2 = arith::MulIOp::create(b, t, arith::ConstantIndexOp::create(b, 2));
    isQuadLeader = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t,
                                         arith::ConstantIndexOp::create(b, 0));
    laneAnchor = isQuadLeader.getDefiningOp();
  }
  /// 16 * mTiles * warp + g per m-tile count: the first row of a lane in row-distributed
  /// tiles. Created at the kernel entry (after `laneAnchor`) on first use.
  DenseMap<int64_t, Value> warpRows;
  Operation *laneAnchor = nullptr;
  Value warpRowFor(int64_t tilesPerWarp) {
    Value &v = warpRows[tilesPerWarp];
    if (!v) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointAfter(laneAnchor);
      v = arith::AddIOp::create(
          b, arith::MulIOp::create(b, warp, arith::ConstantIndexOp::create(b, 16 * tilesPerWarp)),
          g);
      laneAnchor = v.getDefiningOp();
    }
    return v;
  }
  ::mlir::gpu::GPUFuncOp kernel;
  int64_t numThreads;
  int64_t numWarps;

  /// A tile every warp reads whole (a dot's right operand) lives in shared memory,
  /// staged once per program instead of once per warp; fragments are read from it just
  /// before each mma, which also keeps them out of registers.
  struct SharedTile {
    Value mem;       // [rows][cols + pad] in workgroup memory (mma.sync kernels)
    bool transposed; // the value is the transpose of what is stored
    int swizzled = -1; // wgmma kernels: index into swizzledTiles
    Value stage;       // wgmma kernels: which copy of a multi-buffered tile (index)
    Value parity;      // warp-specialised: the phase of its fill to wait for (i32)
  };
  /// Tiles in shared memory: staged loads' results, reads of buffers, and each buffer
  /// async copies fill (its newest fill, which its tgpu.local_load readers take).
  DenseMap<Value, SharedTile> shared;
  /// The same bytes read as the transpose.
  static SharedTile transposedView(SharedTile t) {
    t.transposed = !t.transposed;
    return t;
  }
  /// One staging buffer per (source buffer, tile type): the loops of a program run one
  /// after another, so the key tiles of every loop share one buffer.
  DenseMap<std::pair<Value, Type>, Value> stagingBuffers;
  /// ldmatrix.x4: lane l supplies row l % 8 of 8 x 8 matrix l / 8; bits 0 and 1 of the
  /// matrix number pick its halves (each 0 or 8) of the two tile dimensions.
  struct LdmatrixLane {
    Value row, half0, half1;
  };
  std::optional<LdmatrixLane> ldmatrixLanes; // made once, at the kernel entry
  LdmatrixLane ldmatrixLane() {
    if (!ldmatrixLanes) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointAfter(laneAnchor);
      Value matrix = arith::DivUIOp::create(b, lane, arith::ConstantIndexOp::create(b, 8));
      Value eight = arith::ConstantIndexOp::create(b, 8), one = arith::ConstantIndexOp::create(b, 1);
      Value row = arith::RemUIOp::create(b, lane, eight);
      Value half0 = arith::MulIOp::create(b, arith::AndIOp::create(b, matrix, one), eight);
      Value half1 = arith::MulIOp::create(b, arith::ShRUIOp::create(b, matrix, one), eight);
      ldmatrixLanes = LdmatrixLane{row, half0, half1};
      laneAnchor = half1.getDefiningOp();
    }
    return *ldmatrixLanes;
  }
  /// The four registers of the A fragment (m-tile mt, k-block kb) of a staged tile read
  /// as an [M, K] left operand spread over warps in m-tiles of `tilesPerWarp`.
  std::array<Value, 4> aFragment(const SharedTile &t, int64_t tilesPerWarp, int64_t mt,
                                 int64_t kb, Type elem);
  /// The four 32-bit registers ldmatrix.x4 reads for this lane from `mem` at `idx`.
  std::array<Value, 4> ldmatrixWords(Value mem, ArrayRef<Value> idx, bool transpose,
                                     Type elem);
  LogicalResult lowerLoadToShared(tile::LoadOp op);
  /// A copy into a swizzled buffer: the load's (lowerLoadToShared) or the async_copy's.
  void copyToSwizzled(const TileCopy &copy, ValueRange origin);
  LogicalResult lowerAsyncCopy(tgpu::AsyncCopyOp op);
  /// Records where `copy`'s readers find its tile: the load's result, or the copy's
  /// buffer (its tgpu.local_load readers take the newest fill).
  void setFill(const TileCopy &copy, SharedTile tile);
  /// A copy into padded rows through registers (vector loads and stores, or a
  /// coalesced element loop where the tile is not whole vectors per thread).
  void copyToPadded(const TileCopy &copy, ValueRange origin);
  Value stagingBuffer(const TileCopy &copy);
  int64_t vectorsPerThread(const TileCopy &copy);
  std::pair<Value, Value> vectorPosition(const TileCopy &copy, int64_t i);
  /// The same for a [*, cols] tile of `elemBits`-bit elements.
  std::pair<Value, Value> vectorPosition(int64_t cols, int64_t elemBits, int64_t i);
  /// Global indices of this thread's `i`-th 16-byte vector of `op`'s tile at `origin`,
  /// whether its row is inside the buffer, and its (row, column) in the tile.
  struct VectorSource {
    SmallVector<Value> indices;
    Value inBounds, row, col;
  };
  VectorSource vectorSource(const TileCopy &copy, ValueRange origin, int64_t i,
                            Value rowsInBuffer, bool clampOutside = true);
  /// Whether the 16-byte chunk at global indices `idx` of `buffer` lies inside it: its row
  /// below `rowsInBuffer` and, unless the tile (`tileCols` wide at tile-level column index
  /// `tileCol`) spans whole rows, its column below the row length. A chunk lies wholly
  /// inside or wholly outside.
  Value chunkInside(ArrayRef<Value> idx, Value buffer, Value rowsInBuffer, int64_t tileCols,
                    Value tileCol);
  SmallVector<Value> loadRows(const TileCopy &copy, ValueRange origin);
  void storeRows(const TileCopy &copy, Value mem, ArrayRef<Value> regs);
  /// Loop-level software pipelining (num_stages >= 2): the next iteration's staged tiles
  /// are loaded into registers while this one computes, then stored to shared memory at
  /// the top of the next iteration.
  struct Prefetch {
    TileCopy copy;
    SmallVector<Operation *> indexSlice; // body ops computing the load's indices
  };
  SmallVector<Prefetch> findPrefetches(scf::ForOp op);
  /// `load` of loop `op` as a prefetch (with the ops computing its indices), if its
  /// tile is staged and its indices are known an iteration early.
  std::optional<Prefetch> prefetchOf(const TileCopy &copy, scf::ForOp op);
  /// The loads a scheduled loop's attributes mark as prefetched; fails, located at the
  /// load, where one cannot be.
  FailureOr<SmallVector<Prefetch>> scheduledPrefetches(scf::ForOp op);
  bool feedsFirstProduct(tile::LoadOp load, scf::ForOp loop);
  /// The last loop lowered with cp.async prefetching. Its last iteration prefetches the
  /// tiles of iteration `ub`: a loop right after it that starts there and loads the same
  /// tiles the same way finds its first tiles on their way, in stage `nextStage`, so the
  /// pipeline runs on across the loops of a masked / unmasked / masked split.
  struct PrefetchingLoop {
    scf::ForOp op;
    SmallVector<Prefetch> prefetches;
    Value nextStage;
  };
  std::optional<PrefetchingLoop> lastPrefetchingLoop;
  bool continuesLastLoop(scf::ForOp op, ArrayRef<Prefetch> prefetches);
  SmallVector<Value> prefetchAt(const Prefetch &p, Value iv, Value loopIv);
  SmallVector<Value> prefetchOrigin(const Prefetch &p, Value iv, Value loopIv);
  DenseSet<Operation *> preStaged;
  /// A software-pipelined loop's copies (tessera-tgpu-pipeline-loops) into the explicit
  /// stage of a buffer: in its body, for a later iteration; before it, its prologue.
  LogicalResult lowerPipelinedCopy(tgpu::AsyncCopyOp op);
  /// The prologue copies lowered so far are those of a loop not lowered yet.
  bool prologueOpen = false;
  /// Before a prefetching loop's first copies (its prologue): earlier readers of the
  /// stages they fill and earlier copies are done (copies issued right before with no
  /// barrier owed, Q's, need no wait: the loop's first wait covers them).
  void freeFirstStages();
  /// A block barrier, unless one is already in this block with nothing that may touch
  /// shared memory after it.
  void blockBarrier();
  /// That barrier, if there is one.
  Operation *standingBarrier();
  /// A block barrier, unless the IR's stands there (the one after a wait the IR holds,
  /// tessera-tgpu-insert-waits, is the lowering's own from its scratch lowering).
  void barrierUnlessIrs();
  DenseSet<Operation *> irBarriers; // lowered from tgpu.barrier ops
  /// Run right after lowering `first` (a loop body's next-stage copies follow its
  /// single-buffered ones, so that a product can wait for the latter alone).
  std::pair<Operation *, std::function<void()>> afterOp;
  int64_t numStages;
  /// Staging copies that follow one another share their barriers: one before the first
  /// (readers of the previous contents are done), one after the last (before any read).
  bool barrierPending = false;
  /// cp.async copy groups committed and not yet waited for (wgmma kernels), oldest first:
  /// the swizzled buffer each fills, or -1 for prefetches (only waited for all at once).
  /// A product waits for its own operands' groups only, so a tile's copies (V) keep
  /// flying while an earlier one's product (Q·Kᵀ) and the softmax run.
  SmallVector<int> pendingCopies;
  bool copiesPending() const { return !pendingCopies.empty(); }
  /// The barrier owed, if any, after the copies in flight have landed. Leaving them in
  /// flight (readers wait for their own groups) measured 14-19 % slower on the H200 for
  /// linear sweeps of more than one wave (bench/results/linear_c5b63b7.jsonl against
  /// linear_2a093b7.jsonl at N = 1024 / 4096) and no faster for one wave.
  /// Every copy landed and every earlier shared-memory access ordered: the copies in
  /// flight waited for, then a barrier (none where the IR's stands).
  void settleShared() {
    if (copiesPending())
      waitForCopies();
    barrierUnlessIrs();
    barrierPending = false;
  }
  void flushBarrier() {
    if (barrierPending) {
      if (copiesPending())
        waitForCopies();
      tgpu::BarrierOp::create(b);
    }
    barrierPending = false;
  }
  /// Before a warpgroup product: its operands' copies have landed and are visible.
  void flushForProduct(tile::DotOp op);
  /// Waits until the copies into the swizzled `buffers` have landed and are visible to
  /// every thread (other copies keep flying where they can).
  void awaitSwizzled(ArrayRef<int> buffers);
  /// A swizzled tile read into registers in layout `want` (a value loaded for the
  /// products that an element-wise op reads too: Vᵀ scaled by a decay).
  Slots readSwizzled(const SharedTile &t, const Layout &want);
  /// A register tile written to a swizzled buffer of its own (`transposed`: stored
  /// [N][K]): a warpgroup product's right operand that was computed (a state, a
  /// feature-mapped key).
  FailureOr<SharedTile> stageSwizzled(Value v, bool transposed);
  /// Stores an accumulator's slots (pairs of neighbouring columns) into swizzled buffer
  /// `buffer` (stage 0).
  void writeAccumulatorPairs(const Layout &have, ArrayRef<Value> slots, int buffer, Type elem);
  /// The swizzled buffer `op` goes out through (storeThroughShared), allocated if
  /// needed; -1 where it is stored straight from registers.
  int throughSharedBuffer(tile::StoreOp op, const Layout &l);
  int bufferFreeAfter(tile::StoreOp op, int64_t rows, int64_t cols, Type elem);
  /// `v` through an empty asm statement: equal to it, but not to anything LLVM computed
  /// from it elsewhere.
  Value opaqueIndex(Value v);
  void storeThroughShared(tile::StoreOp op, const Layout &l, ArrayRef<Value> slots, int index);
  bool touchesSharedMemory(Operation *op);

  /// The kernel's accumulator layout (tessera-tile-to-tgpu's), parent of every layout.
  tgpu::MmaEncodingAttr accumulator;
  // Hopper (wgmma) kernels: operands live in dynamic shared memory in the 128-byte
  // swizzled layout (Wgmma.h), are filled by cp.async and read by wgmma descriptors.
  bool wgmma;
  struct SwizzledTile {
    Value view;    // 1-D memref over all stages, in workgroup memory
    Value address; // i64 shared address of stage 0
    int64_t rows, cols, stages;
    int64_t offset; // bytes from the arena's start
    int64_t bytes() const { return llvm::alignTo(rows * cols * stages * 2, kSwizzleAtomBytes); }
  };
  SmallVector<SwizzledTile> swizzledTiles;
  DenseMap<BufferKey, int> swizzledBuffers; // lowered sources -> tile
  Value arena, arenaShift, arenaAddress; // dynamic shared memory, aligned to 1024 bytes
  Operation *arenaAnchor = nullptr;      // views are created right after it, in the entry
  int64_t arenaBytes = 0;
  void beginSharedArena();
  int allocateSwizzled(int64_t rows, int64_t cols, int64_t stages, Type elem, StringRef kind,
                       Operation *owner = nullptr);
  /// The swizzled buffer of `op`'s (source, tile type), allocated at first use with the
  /// stages planStages gave it.
  int swizzledBuffer(const TileCopy &copy);
  /// Stages of the buffer `copy` fills: the copy's buffer type's, or the plan's.
  int64_t bufferStages(const TileCopy &copy);
  /// Whether the stage plan double-buffers only first-product operands.
  bool firstProductOnly() const { return plannedBlocksPerSM > 0; }
  /// Stages of a prefetched buffer: num_stages where more than two (copies run
  /// num_stages - 1 iterations ahead in loops that qualify, deepPrefetch), else two.
  int64_t prefetchStages() const { return std::max<int64_t>(2, numStages); }
  bool deepPrefetch(scf::ForOp op, ArrayRef<Prefetch> prefetches);
  DenseSet<BufferKey> doubleBuffered; // tile-level sources
  /// Copy groups a loop issues for its next iteration, while this one's may still fly
  /// (-2 - buffer; the same map takes such a group back to its buffer).
  static int nextStageGroup(int buffer) { return -2 - buffer; }
  /// Elements from stage 0 to stage `stage` of a multi-buffered tile.
  Value stageOffset(const SwizzledTile &t, Value stage);
  void issueCopies(const TileCopy &copy, const SwizzledTile &t, Value stage,
                   ValueRange origin, int group = -1);
  /// Waits until at most `newerGroupsLeft` groups are in flight: made here, recorded
  /// (the scratch lowering of tessera-tgpu-insert-waits) or, in a grid whose waits are
  /// ops, found made already (an error where the IR has none).
  void waitForCopies(int newerGroupsLeft = 0);
  /// A wait the lowering makes itself, with the proxy fence wgmma's reads need (the
  /// IR's waits are lowered alone: their fence is an op of its own).
  Operation *emitCopyWait(int newerGroupsLeft);
  /// The bookkeeping of a wait: all but the newest `newerGroupsLeft` groups landed.
  void landCopies(int newerGroupsLeft);
  /// Waits for the newest pending group `needed` accepts (and every older one); false
  /// when there is none.
  bool waitForGroup(function_ref<bool(int)> needed);
  /// Ends a region with no copies in flight and no barrier owed (loop and branch ends).
  void settleCopies();
  /// Before a persistent grid's work loop and at the end of each item: no products or
  /// copies in flight, and after an item a block barrier (the next item's copies reuse
  /// the buffers this one read). PersistentGrid.cpp.
  void settleWorkItem(bool itemEnd);
  /// A persistent grid's work loop (tgpu.work_items, tgpu.pipeline "none"): one item
  /// after another, each from an opaque thread index (values derived from it are not
  /// hoisted out of the loop, where they would hold registers across every item).
  LogicalResult lowerWorkItems(scf::ForOp op);
  LogicalResult lowerWarpgroupDot(tile::DotOp op);
  /// Warpgroup products committed and not yet waited for: result -> its wgmma group
  /// (1, 2, ... in commit order). A product's registers are read only after a wait that
  /// covers its group, so that independent products (Q Kᵀ and Q S) and the arithmetic
  /// between them overlap.
  DenseMap<Value, int64_t> productsInFlight;
  int64_t productGroups = 0;
  /// Waits for `v`'s group (and every older one) and fences the registers it covers.
  void awaitProduct(Value v);
  /// Waits for every product in flight (region boundaries; before shared-memory writes
  /// that a product in flight may still be reading).
  void settleProducts();
  void waitProducts(int64_t newerLeft, int64_t upTo);

  // TMA copies (TensorMemory.cpp): a descriptor per (argument, tile rows), an mbarrier
  // per stage of each buffer they fill, one phase bit per barrier in `phaseWord`.
  bool tensorCopies = false;
  /// The kernel's descriptor parameter for each (source argument, tile rows).
  DenseMap<std::pair<unsigned, int64_t>, Value> tensorMapParam;
  DenseMap<int, int> barrierBase; // swizzled buffer -> its stage 0 barrier
  int numBarriers = 0;
  arith::ConstantIntOp barrierOffset; // arena offset of the barriers, set when finished
  Value barrierArea, phaseWord;
  Operation *barrierInitAnchor = nullptr;
  int barriersOf(int buffer);
  Value barrierIndex(int buffer, Value stage);
  Value barrierAddress(Value index);
  Value awaitedParity(Value index);
  Value parityOfNewestFill(Value word, Value index);
  void waitBarrier(Value index);
  /// One elected thread copies `op`'s tile at `origin` into stage `stage` of `buffer`.
  void issueTensorCopies(tile::LoadOp op, int buffer, Value stage, ValueRange origin);
  /// Waits until the newest copy into `t`'s stage has landed (no-op without TMA).
  void awaitTensorCopies(const SharedTile &t);
  /// Waits for the newest copy into every stage of `buffers`.
  void drainTensorCopies(ArrayRef<int> buffers);
  /// Every barrier's newest fill, waited for by every thread (not warp-specialised).
  void drainAllTensorCopies();
  /// Whether `buffers` are all filled by TMA and no other staging copy can be pending:
  /// readers that waited on their barriers need no block barrier.
  bool tensorCopiesVisible(ArrayRef<int> buffers);
  bool onlyTensorStaging = false; // every staged load of the kernel is a TMA copy
  SmallVector<int64_t> barrierArrivals; // per barrier: arrivals a phase (mbarrier.init)
  /// The mbarrier at 32-bit shared address `address`, as the tgpu ops take it.
  Value mbarrierAt(Value address);
  void waitParity(Value address, Value parity);
  /// This thread's generic-proxy accesses to shared memory before async-proxy ones after.
  void fenceAsyncProxy();
  /// Where a TMA copy of a tile at `origin` lands: stage `stage` of `buffer`, and the
  /// origin as the descriptor's coordinates (innermost first).
  struct TensorCopyTarget {
    Value dst;
    SmallVector<Value> coords;
  };
  TensorCopyTarget tensorCopyTarget(int buffer, Value stage, ValueRange origin);
  /// The issuing thread's part: arm `barrier` with the tile's bytes, copy its boxes.
  void armTensorCopy(tile::LoadOp op, int buffer, const TensorCopyTarget &target,
                     Value barrier);

  // Warp specialisation (WarpSpecialize.cpp): a tgpu.warp_specialize's producer
  // partition runs on one thread of an extra warpgroup, filling a ring of stages per
  // buffer (full barriers: TMA completion; empty barriers: one arrival per consumer
  // warp); the consumers take each tile from the ring and give it back once its
  // products have been waited for (else at the end of the block that loaded it).
  bool warpSpecialized = false;
  LogicalResult lowerWarpSpecialize(tgpu::WarpSpecializeOp op);
  LogicalResult lowerProducerBlock(Block &block);
  void produceRingTile(tile::LoadOp op);
  LogicalResult acquireRingTile(tile::LoadOp op);
  struct RingTake {
    int buffer;
    Value stage, tile;
    bool givenBack = false;
  };
  /// Ring tiles taken in each block being lowered, innermost last.
  SmallVector<SmallVector<RingTake>> ringTaken;
  /// lowerBlock's hooks around each op of a consumer block: ping-pong turns
  /// (before / after its products) and early release (after).
  void beforeConsumerOp(Operation &op);
  void afterConsumerOp(Operation &op);
  /// Whether every read of ring tile `tile` is lowered (`lowered` the last op so far of
  /// its block) and waited for: it is read by products only.
  bool ringTileRead(Value tile, Operation &lowered);
  /// The ring tiles of the innermost block read by `lowered` and before; all (and the
  /// block's list) where null: the block's end.
  void giveBackRingTiles(Operation *lowered);
  /// Ping-pong (kPingpongAttr): each consumer block with two or more products is a
  /// turn, from a wait on the warpgroup's named barrier before its first product to an
  /// arrival on the other's after its last. The turns' barriers, for the check that no
  /// block barrier lies inside one.
  bool pingpong = false;
  SmallVector<std::pair<Operation *, Operation *>> turns;
  Value turnBarrier(bool own);
  /// Warpgroup `warpgroupIndex` waits on (or arrives on) barrier kFirstTurnBarrier.
  void turnAtEdge(int64_t warpgroupIndex, bool wait);
  LogicalResult checkTurns();
  DenseMap<int, int> emptyBarrierBase; // ring buffer -> its stage 0 empty barrier
  int emptyBarriersOf(int buffer);
  DenseMap<int, Value> ringCounters; // ring buffer -> a thread's count of its fills
  /// The stage and phase parity of `buffer`'s next fill (counted per thread).
  std::pair<Value, Value> nextRingFill(int buffer);

  Value base(const Layout &l, LaneBase lb) {
    switch (lb) {
    case LaneBase::WarpRow:
      return warpRowFor(l.mTiles);
    case LaneBase::G:
      return g;
    case LaneBase::T2:
      return t2;
    case LaneBase::Zero:
      return arith::ConstantIndexOp::create(b, 0);
    }
    return {};
  }
  Value coord(const Layout &l, LaneBase lb, int64_t c) {
    return arith::AddIOp::create(b, base(l, lb), arith::ConstantIndexOp::create(b, c));
  }
  /// The tile coordinates (row, column) of slot `s` of layout `l` in this thread; a 1-D
  /// layout's position is its row.
  std::pair<Value, Value> position(const Layout &l, int64_t s) {
    SlotCoord c = slotCoord(l, s);
    return {coord(l, c.rowBase, c.row), l.cols ? coord(l, c.colBase, c.col) : Value()};
  }
  /// The layout tessera-tile-to-tgpu wrote in `v`'s type (every non-splat tile has one).
  static Layout layoutOf(Value v) {
    std::optional<Layout> l = layoutOfType(v.getType());
    assert(l && "a tile without a #tgpu layout");
    return *l;
  }

  /// The per-thread scalars of tile `v` in layout `want`; a splat gives its scalar in
  /// every slot.
  FailureOr<Slots> slotsOf(Value v, const Layout &want);
  Value splatScalar(Value v);

  // Layout conversions (a value used in a layout it was not computed in) go through
  // shared memory: its owners write it, a barrier, the consumers read their slots.
  struct Conversion {
    Layout layout;
    Slots slots;
    Block *block; // where it was made: reusable in this block and blocks nested in it
  };
  DenseMap<Value, SmallVector<Conversion>> conversions;
  DenseMap<Type, Value> scratchBuffers; // one per shape: conversions fence around it
  /// A view of the arena for a `kind` buffer (SharedAllocation.cpp) requested by `owner`
  /// (null: the op being lowered).
  Value workgroupBuffer(ArrayRef<int64_t> shape, Type elem, StringRef kind,
                        Operation *owner = nullptr);
  Value scratchBuffer(ArrayRef<int64_t> shape, Type elem);
  void writeSlots(Value mem, const Layout &have, ArrayRef<Value> slots, bool transpose);
  Slots readSlots(Value mem, const Layout &want, bool transposed);
  FailureOr<Slots> convertThroughShared(Value v, const Layout &want, bool transpose);
  bool visibleHere(Block *made);
  /// A register tile a product reads whole (its right operand) copied to shared memory.
  FailureOr<SharedTile> stageRegisters(Value v);
  /// tgpu.local_alloc of a computed tile (tessera-tgpu-stage-operands): staged where it
  /// stands; tgpu.local_load: the buffer's tile, transposed or not.
  LogicalResult lowerLocalAlloc(tgpu::LocalAllocOp op);
  LogicalResult lowerLocalLoad(tgpu::LocalLoadOp op);

  LogicalResult lowerOp(Operation *op);
  LogicalResult lowerLoad(tile::LoadOp op);
  LogicalResult lowerStore(tile::StoreOp op);
  LogicalResult lowerGather(tile::GatherOp op);
  LogicalResult lowerScatterAdd(tile::ScatterAddOp op); // ScatterAdd.cpp
  LogicalResult lowerTileAddAtOffset(tile::ScatterAddOp op, const Layout &layout);
  LogicalResult lowerDot(tile::DotOp op);
  LogicalResult lowerReduce(tile::ReduceOp op);
  LogicalResult lowerBroadcast(tile::BroadcastOp op);
  LogicalResult lowerRange(tile::RangeOp op);
  LogicalResult lowerElementwise(Operation *op);
  /// Ops a tgpu -> nvvm conversion pattern lowers (tessera-convert-tgpu-to-nvvm) are
  /// left in the kernel on tiles: `tileOf` casts slots to a tile of `like`'s shape and
  /// element type in layout `l`; `handOff` clones `op` on such tiles and returns its
  /// result's slots (`slotsOfTile`: a cast back), which the pattern's output replaces.
  Value tileOf(ArrayRef<Value> slots, Type like, const Layout &l);
  Slots handOff(Operation *op, IRMapping &operands);
  Slots slotsOfTile(Value tile);
  LogicalResult lowerRowScale(arith::MulFOp op, Value scaled, Value factor);
  LogicalResult lowerFor(scf::ForOp op);
  LogicalResult lowerIf(scf::IfOp op);
  LogicalResult lowerWhile(scf::WhileOp op);
  /// Types of `values` once distributed: a scalar per slot of each tile, 16-bit floats
  /// two to a 32-bit word (pairedSlots).
  SmallVector<Type> flatTypes(ValueRange values);
  /// Whether a tile of `type` in `layout` crosses loop and branch edges as 32-bit words
  /// of two 16-bit slots (a carried P for a later product: a register each pair, as the
  /// product reads it, not one each slot).
  bool pairedSlots(Type type, const Layout &layout);
  /// Each value combined over the warps through a [num_warps, columns] shared scratch;
  /// `column(i)` is where value i goes in its warp's row.
  Slots combineWarps(tile::Combiner kind, ArrayRef<Value> values,
                     function_ref<Value(int64_t)> column, int64_t columns);
  /// Flattens `values` into per-thread scalars, each tile in the layout of the value at
  /// the same position in `like` (a loop's or if's results); see pairedSlots.
  LogicalResult flatten(ValueRange values, ValueRange like, SmallVectorImpl<Value> &out);
  void unflatten(ValueRange values, ValueRange flat);

  // Shared-memory allocation (SharedAllocation.cpp, docs/RationaleTgpu.md): every buffer
  // is requested through sharedOffset. Lowering a scratch copy for
  // tessera-tgpu-allocate-shared, the requests are laid end to end and recorded with
  // the tile ops that touch each buffer (its live range); otherwise their offsets are
  // the plan's (tgpu.shared_offset on the requesting ops, tgpu.shared_bytes on the grid).
public:
  /// Before lowerBlock: records (in a module marked as the allocation's scratch copy) or
  /// follows `grid`'s plan; fails, located, on a grid without one.
  LogicalResult beginSharedPlan(tile::GridOp grid);
  /// After lowering: the recorded requests as `kernel`'s tgpu.shared_requests, or a
  /// check that every planned offset was taken; fails, located, where the plan was not
  /// followed.
  LogicalResult endSharedPlan(::mlir::gpu::GPUFuncOp kernel);
  bool recordingShared() const { return sharedRecorder != nullptr; }

private:
  struct SharedRequest {
    Operation *owner; // the tile op (or the grid) whose tgpu.shared_offset names it
    std::string kind;
    int64_t bytes, align, offset;
    SmallVector<Value> handles; // what its accesses use: its view, its i64 address
  };
  SmallVector<SharedRequest> sharedRequests;
  tile::GridOp sharedGrid;
  Operation *lowering = nullptr; // the tile op being lowered (lowerBlock)
  DenseMap<Operation *, unsigned> plannedTaken; // offsets taken per owner (following)
  bool sharedPlanBroken = false;
  struct SharedRecorder : OpBuilder::Listener {
    explicit SharedRecorder(Operation *const &lowering) : lowering(lowering) {}
    void notifyOperationInserted(Operation *op, OpBuilder::InsertPoint) override {
      if (lowering)
        tileOpOf[op] = lowering;
    }
    Operation *const &lowering;
    DenseMap<Operation *, Operation *> tileOpOf; // emitted op -> the tile op lowering it
  };
  std::unique_ptr<SharedRecorder> sharedRecorder; // tags emitted ops with their tile op
  /// The offset of the next buffer `owner` (null: the op being lowered) requests; its
  /// handles are added with noteSharedHandle. Where the plan lets it reuse bytes an
  /// earlier buffer had, the copies and readers of those are waited for first.
  int64_t sharedOffset(Operation *owner, StringRef kind, int64_t bytes, int64_t align);
  void noteSharedHandle(Value v) { sharedRequests.back().handles.push_back(v); }
  /// Waits for the products, copies and readers of arena bytes [begin, end), then a
  /// block barrier.
  void settleSharedBytes(int64_t begin, int64_t end);
  /// Swizzled buffers sharing bytes with `index` (itself included), in index order.
  SmallVector<int> overlappingSwizzled(int index);

  // cp.async waits as ops (AsyncWaits.cpp): lowering the scratch copy of
  // tessera-tgpu-insert-waits, each wait the lowering makes is recorded with where it
  // stands in the tile program; in a grid marked tgpu.waits_placed the IR's waits are
  // the only ones, and a copy the lowering finds in flight where it needs it landed is
  // an error.
public:
  /// Before lowerBlock: records, follows or makes `grid`'s waits.
  void beginWaitPlacement(tile::GridOp grid);
  /// After lowering: the recorded waits as `kernel`'s tgpu.async_waits; fails where a
  /// wait was missing.
  LogicalResult endWaitPlacement(::mlir::gpu::GPUFuncOp kernel, tile::GridOp grid);

private:
  /// Where in the tile program a wait made now belongs: before the tile op `before`, or
  /// at the end of `block` (no `before`: a block without a terminator).
  struct WaitPoint {
    Block *block = nullptr;
    Operation *before = nullptr;
    // Product waits made before the op's lowering began (-1 at a region's end).
    int64_t productWaits = -1;
  };
  WaitPoint waitPoint;
  /// Waits at the end of `block` (before its terminator) from here on.
  WaitPoint blockEnd(Block &block) {
    return {&block, block.mightHaveTerminator() ? block.getTerminator() : nullptr};
  }
  enum class WaitMode { make, record, follow };
  WaitMode waitMode = WaitMode::make;
  struct WaitRecord {
    WaitPoint at;
    int64_t pending;
    Operation *wait; // as lowered
    // The op's lowering waited for products before this wait: a barrier written before
    // the op would come before them.
    bool afterProducts;
  };
  int64_t productWaits = 0; // tgpu.warpgroup_wait ops made
  SmallVector<WaitRecord> waitRecords;
  bool waitsBroken = false;
};

/// Two 16-bit floats as one 32-bit word (lo in the low half), the register form of a
/// product's operand pair; and back.
Value packHalves(ImplicitLocOpBuilder &b, Value lo, Value hi);
std::pair<Value, Value> unpackHalves(ImplicitLocOpBuilder &b, Value word, Type elem);
} // namespace tessera::gpu

#endif // TESSERA_CODEGEN_GPU_DISTRIBUTOR_H
