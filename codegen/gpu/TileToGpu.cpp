//===- TileToGpu.cpp - tile programs to warp-level tensor-core kernels ----===//
//
// Each tile.grid becomes a gpu.func (one CUDA block per program, 32 x num_warps threads)
// in a gpu.module. Tile values are distributed over the block's threads by the layouts
// of LayoutAssignment: a tile becomes a list of per-thread scalars ("slots"), element-wise
// ops run slot by slot, row reductions finish with two butterfly shuffles inside each
// quad of lanes, and tile.dot becomes mma.sync m16n8k16 (f16/bf16 in, f32 accumulate).
// The host side keeps a launch record (grid as a formula of argument sizes, block size)
// on the function so a runtime without MLIR can launch the kernel.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"

#include "codegen/gpu/LayoutAssignment.h"
#include "codegen/gpu/Wgmma.h"
#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/SaveAndRestore.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TILETOGPU
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
using Slots = SmallVector<Value>;
/// Shared memory a block may opt in to on sm_90 (227 KiB).
constexpr int64_t kSharedLimit = 227 * 1024;
/// Shared memory of one SM on sm_90 (each block also takes 1 KiB of it).
constexpr int64_t kSharedPerSM = 228 * 1024;

/// Emits the body of one kernel: the grid body's ops, distributed over threads.
class Distributor {
public:
  Distributor(ImplicitLocOpBuilder &b, const DenseMap<Value, Layout> &layouts,
              int64_t numWarps, int64_t numStages, bool wgmma,
              ::mlir::gpu::GPUFuncOp kernel)
      : b(b), layouts(layouts), kernel(kernel), numThreads(32 * numWarps),
        numWarps(numWarps), numStages(numStages), wgmma(wgmma) {
    Value tid = ::mlir::gpu::ThreadIdOp::create(b, ::mlir::gpu::Dimension::x);
    threadId = tid;
    Value c32 = arith::ConstantIndexOp::create(b, 32);
    lane = arith::RemUIOp::create(b, tid, c32);
    Value warp = arith::DivUIOp::create(b, tid, c32);
    warpgroup = arith::DivUIOp::create(b, warp, arith::ConstantIndexOp::create(b, 4));
    beginSharedArena(); // unused (and removed) when nothing is staged
    g = arith::DivUIOp::create(b, lane, arith::ConstantIndexOp::create(b, 4));
    Value t = arith::RemUIOp::create(b, lane, arith::ConstantIndexOp::create(b, 4));
    t2 = arith::MulIOp::create(b, t, arith::ConstantIndexOp::create(b, 2));
    isQuadLeader = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, t,
                                         arith::ConstantIndexOp::create(b, 0));
    this->warp = warp;
    laneAnchor = isQuadLeader.getDefiningOp();
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
  IRMapping scalars; // non-tile values: program ids, sizes, loop counters
  /// Bytes of dynamic shared memory the kernel needs (wgmma kernels; 0 otherwise).
  int64_t dynamicSharedBytes() const {
    return arenaBytes ? arenaBytes + kSwizzleAtomBytes : 0;
  }

private:
  ImplicitLocOpBuilder &b;
  const DenseMap<Value, Layout> &layouts;
  DenseMap<Value, Slots> tiles;
  Value g, t2, isQuadLeader, threadId, lane, warp, warpgroup;
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
  };
  DenseMap<Value, SharedTile> shared;
  /// The same bytes read as the transpose.
  static SharedTile transposedView(SharedTile t) {
    t.transposed = !t.transposed;
    return t;
  }
  /// One staging buffer per (source buffer, tile type): the loops of a program run one
  /// after another, so the key tiles of every loop share one buffer.
  DenseMap<std::pair<Value, Type>, Value> stagingBuffers;
  /// Loads whose tile goes to shared memory: right operands; left operands read from
  /// memory with wgmma (Q), and with mma.sync those loaded in a loop.
  bool isStaged(tile::LoadOp op) {
    LayoutKind kind = layoutOf(op.getResult()).kind;
    if (kind == LayoutKind::B || kind == LayoutKind::BT)
      return true;
    if (kind != LayoutKind::A)
      return false;
    // A left operand loaded in a loop is copied with 16-byte vectors (and prefetched)
    // and read by ldmatrix: far fewer memory instructions than loading its fragments.
    bool onlyProducts = llvm::all_of(op->getUsers(), [&](Operation *user) {
      auto dot = dyn_cast<tile::DotOp>(user);
      return dot && dot.getLhs() == op.getResult();
    });
    return wgmma || (onlyProducts && isa<scf::ForOp>(op->getParentOp()) &&
                     vectorsPerThread(op) > 0);
  }
  /// Whether a staged load goes to a swizzled buffer by cp.async (16-bit tiles of wgmma
  /// kernels; an f32 tile, a state, goes to a padded one).
  bool swizzles(tile::LoadOp op) {
    return wgmma && cast<RankedTensorType>(op.getType()).getElementType().getIntOrFloatBitWidth() == 16;
  }
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
  Value stagingBuffer(tile::LoadOp op);
  int64_t vectorsPerThread(tile::LoadOp op);
  std::pair<Value, Value> vectorPosition(tile::LoadOp op, int64_t i);
  /// The same for a [*, cols] tile of `elemBits`-bit elements.
  std::pair<Value, Value> vectorPosition(int64_t cols, int64_t elemBits, int64_t i);
  /// Global indices of this thread's `i`-th 16-byte vector of `op`'s tile at `origin`,
  /// whether its row is inside the buffer, and its (row, column) in the tile.
  struct VectorSource {
    SmallVector<Value> indices;
    Value inBounds, row, col;
  };
  VectorSource vectorSource(tile::LoadOp op, ValueRange origin, int64_t i, Value rowsInBuffer,
                            bool clampOutside = true);
  /// Whether the 16-byte chunk at global indices `idx` of `buffer` lies inside it: its row
  /// below `rowsInBuffer` and, unless the tile (`tileCols` wide at tile-level column index
  /// `tileCol`) spans whole rows, its column below the row length. A chunk lies wholly
  /// inside or wholly outside.
  Value chunkInside(ArrayRef<Value> idx, Value buffer, Value rowsInBuffer, int64_t tileCols,
                    Value tileCol);
  SmallVector<Value> loadRows(tile::LoadOp op, ValueRange origin);
  void storeRows(tile::LoadOp op, Value mem, ArrayRef<Value> regs);
  /// Loop-level software pipelining (num_stages >= 2): the next iteration's staged tiles
  /// are loaded into registers while this one computes, then stored to shared memory at
  /// the top of the next iteration.
  struct Prefetch {
    tile::LoadOp load;
    SmallVector<Operation *> indexSlice; // body ops computing the load's indices
  };
  SmallVector<Prefetch> findPrefetches(scf::ForOp op);
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
  void flushBarrier() {
    if (barrierPending) {
      if (copiesPending())
        waitForCopies();
      ::mlir::gpu::BarrierOp::create(b);
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
  /// A register tile written to a swizzled buffer of its own: a warpgroup product's
  /// right operand that was computed (a state, a feature-mapped key).
  FailureOr<SharedTile> stageSwizzled(Value v);
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

  // Hopper (wgmma) kernels: operands live in dynamic shared memory in the 128-byte
  // swizzled layout (Wgmma.h), are filled by cp.async and read by wgmma descriptors.
  bool wgmma;
  struct SwizzledTile {
    Value view;    // 1-D memref over all stages, in workgroup memory
    Value address; // i64 shared address of stage 0
    int64_t rows, cols, stages;
  };
  SmallVector<SwizzledTile> swizzledTiles;
  DenseMap<std::pair<Value, Type>, int> swizzledBuffers; // (source, type) -> tile
  Value arena, arenaShift, arenaAddress; // dynamic shared memory, aligned to 1024 bytes
  Operation *arenaAnchor = nullptr;      // views are created right after it, in the entry
  int64_t arenaBytes = 0;
  void beginSharedArena();
  int allocateSwizzled(int64_t rows, int64_t cols, int64_t stages, Type elem);
  /// The swizzled buffer of `op`'s (source, tile type), allocated at first use with the
  /// stages planStages gave it.
  int swizzledBuffer(tile::LoadOp op);
  /// Whether the stage plan double-buffers only first-product operands.
  bool firstProductOnly() const { return plannedBlocksPerSM > 0; }
  /// Stages of a prefetched buffer: num_stages where more than two (copies run
  /// num_stages - 1 iterations ahead in loops that qualify, deepPrefetch), else two.
  int64_t prefetchStages() const { return std::max<int64_t>(2, numStages); }
  bool deepPrefetch(scf::ForOp op, ArrayRef<Prefetch> prefetches);
  DenseSet<std::pair<Value, Type>> doubleBuffered; // (source, tile type), tile level
  /// Copy groups a loop issues for its next iteration, while this one's may still fly
  /// (-2 - buffer; the same map takes such a group back to its buffer).
  static int nextStageGroup(int buffer) { return -2 - buffer; }
  /// Elements from stage 0 to stage `stage` of a multi-buffered tile.
  Value stageOffset(const SwizzledTile &t, Value stage);
  void issueCopies(tile::LoadOp op, const SwizzledTile &t, Value stage, ValueRange origin,
                   int group = -1);
  void waitForCopies(int newerGroupsLeft = 0);
  /// Waits for the newest pending group `needed` accepts (and every older one); false
  /// when there is none.
  bool waitForGroup(function_ref<bool(int)> needed);
  /// Ends a region with no copies in flight and no barrier owed (loop and branch ends).
  void settleCopies();
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
  const Layout &layoutOf(Value v) { return layouts.find(v)->second; }

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
  Value workgroupBuffer(ArrayRef<int64_t> shape, Type elem);
  Value scratchBuffer(ArrayRef<int64_t> shape, Type elem);
  void writeSlots(Value mem, const Layout &have, ArrayRef<Value> slots, bool transpose);
  Slots readSlots(Value mem, const Layout &want, bool transposed);
  FailureOr<Slots> convertThroughShared(Value v, const Layout &want, bool transpose);
  bool visibleHere(Block *made);
  /// A register tile a product reads whole (its right operand) copied to shared memory.
  FailureOr<SharedTile> stageRegisters(Value v);

  LogicalResult lowerOp(Operation *op);
  LogicalResult lowerLoad(tile::LoadOp op);
  LogicalResult lowerStore(tile::StoreOp op);
  LogicalResult lowerGather(tile::GatherOp op);
  LogicalResult lowerDot(tile::DotOp op);
  LogicalResult lowerReduce(tile::ReduceOp op);
  LogicalResult lowerBroadcast(tile::BroadcastOp op);
  LogicalResult lowerRange(tile::RangeOp op);
  LogicalResult lowerElementwise(Operation *op);
  LogicalResult lowerRowScale(arith::MulFOp op, Value scaled, Value factor);
  LogicalResult lowerFor(scf::ForOp op);
  LogicalResult lowerIf(scf::IfOp op);
  LogicalResult lowerWhile(scf::WhileOp op);
  /// Types of `values` once distributed: a scalar per slot of each tile.
  SmallVector<Type> flatTypes(ValueRange values);
  /// `v` combined with the values of the lanes `offsets` apart (xor shuffles).
  Value combineLanes(tile::Combiner kind, Value v, ArrayRef<int64_t> offsets);
  /// Each value combined over the warps through a [num_warps, columns] shared scratch;
  /// `column(i)` is where value i goes in its warp's row.
  Slots combineWarps(tile::Combiner kind, ArrayRef<Value> values,
                     function_ref<Value(int64_t)> column, int64_t columns);
  /// Flattens `values` into per-thread scalars, each tile in the layout of the value at
  /// the same position in `like` (a loop's or if's results).
  LogicalResult flatten(ValueRange values, ValueRange like, SmallVectorImpl<Value> &out);
  void unflatten(ValueRange values, ValueRange flat);
};
} // namespace

/// Rows padded by 16 bytes so that the 8 rows one ldmatrix (or one column walk) reads
/// fall in different banks.
static SmallVector<int64_t> paddedShape(ArrayRef<int64_t> shape, Type elem) {
  SmallVector<int64_t> out(shape);
  if (out.size() == 2)
    out[1] += 16 / (elem.getIntOrFloatBitWidth() / 8);
  return out;
}

Value Distributor::splatScalar(Value v) {
  if (auto splat = v.getDefiningOp<tensor::SplatOp>())
    return scalars.lookup(splat.getInput());
  DenseElementsAttr dense;
  matchPattern(v, m_Constant(&dense));
  return arith::ConstantOp::create(b, cast<TypedAttr>(dense.getSplatValue<Attribute>()));
}

bool Distributor::visibleHere(Block *made) {
  for (Block *cur = b.getInsertionBlock(); cur;
       cur = cur->getParentOp() ? cur->getParentOp()->getBlock() : nullptr)
    if (cur == made)
      return true;
  return false;
}

Value Distributor::workgroupBuffer(ArrayRef<int64_t> shape, Type elem) {
  // A view of the dynamic shared memory arena: no 48 KiB cap on static allocations, and
  // 128-byte alignment for 16-byte vector copies and ldmatrix rows.
  int64_t bytes = elem.getIntOrFloatBitWidth() / 8;
  for (int64_t d : shape)
    bytes *= d;
  int64_t offset = llvm::alignTo(arenaBytes, 128);
  arenaBytes = offset + bytes;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(arenaAnchor);
  auto workgroup = ::mlir::gpu::AddressSpaceAttr::get(
      b.getContext(), ::mlir::gpu::GPUDialect::getWorkgroupAddressSpace());
  Value shift = arith::AddIOp::create(b, arenaShift, arith::ConstantIndexOp::create(b, offset));
  return memref::ViewOp::create(
      b, MemRefType::get(shape, elem, MemRefLayoutAttrInterface{}, workgroup), arena, shift,
      ValueRange{});
}

Value Distributor::scratchBuffer(ArrayRef<int64_t> shape, Type elem) {
  SmallVector<int64_t> padded = paddedShape(shape, elem);
  Value &mem = scratchBuffers[MemRefType::get(padded, elem)];
  if (!mem)
    mem = workgroupBuffer(padded, elem);
  return mem;
}

void Distributor::writeSlots(Value mem, const Layout &have, ArrayRef<Value> slots,
                             bool transpose) {
  // Layouts that replicate a value (a quad's lanes, every warp) write it several times,
  // all the same.
  for (auto [s, v] : llvm::enumerate(slots)) {
    auto [r, c] = position(have, s);
    SmallVector<Value> idx{r};
    if (c)
      idx = transpose ? SmallVector<Value>{c, r} : SmallVector<Value>{r, c};
    memref::StoreOp::create(b, v, mem, idx);
  }
}

Slots Distributor::readSlots(Value mem, const Layout &want, bool transposed) {
  Slots out;
  for (int64_t s = 0; s < numSlots(want); ++s) {
    auto [r, c] = position(want, s);
    SmallVector<Value> idx{r};
    if (c)
      idx = transposed ? SmallVector<Value>{c, r} : SmallVector<Value>{r, c};
    out.push_back(memref::LoadOp::create(b, mem, idx));
  }
  return out;
}

FailureOr<Slots> Distributor::convertThroughShared(Value v, const Layout &want,
                                                   bool transpose) {
  auto type = cast<RankedTensorType>(v.getType());
  FailureOr<Slots> have = slotsOf(v, layoutOf(v));
  if (failed(have))
    return failure();
  SmallVector<int64_t> shape(type.getShape());
  if (transpose)
    std::swap(shape[0], shape[1]);
  Value mem = scratchBuffer(shape, type.getElementType());
  // Earlier readers of the scratch are done (and pending staged copies have landed).
  barrierPending = true;
  flushBarrier();
  writeSlots(mem, layoutOf(v), *have, transpose);
  ::mlir::gpu::BarrierOp::create(b);
  return readSlots(mem, want, /*transposed=*/false);
}

FailureOr<Distributor::SharedTile> Distributor::stageRegisters(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getRank() != 2 || type.getElementType().getIntOrFloatBitWidth() != 16)
    return emitError(v.getLoc(), "a product's right operand must be a 2-D 16-bit tile");
  if (wgmma)
    return stageSwizzled(v);
  FailureOr<Slots> have = slotsOf(v, layoutOf(v));
  if (failed(have))
    return failure();
  // Its own buffer: the operand stays readable for as long as the value lives.
  Value mem = workgroupBuffer(paddedShape(type.getShape(), type.getElementType()),
                              type.getElementType());
  barrierPending = true;
  flushBarrier(); // the previous iteration's readers are done
  writeSlots(mem, layoutOf(v), *have, /*transpose=*/false);
  ::mlir::gpu::BarrierOp::create(b);
  SharedTile t{mem, /*transposed=*/false};
  shared[v] = t;
  return t;
}

FailureOr<Slots> Distributor::slotsOf(Value v, const Layout &want) {
  if (isSplat(v))
    return Slots(numSlots(want), splatScalar(v));
  if (productsInFlight.count(v))
    awaitProduct(v);
  for (const Conversion &c : conversions.lookup(v))
    if (c.layout == want && visibleHere(c.block))
      return c.slots;
  auto remember = [&](Slots slots) {
    conversions[v].push_back({want, slots, b.getInsertionBlock()});
    return slots;
  };
  auto it = tiles.find(v);
  if (it == tiles.end()) {
    // A tile staged in shared memory for a product, used elsewhere too.
    auto sh = shared.find(v);
    if (sh == shared.end())
      return emitError(v.getLoc(), "tile used before it was distributed");
    auto type = cast<RankedTensorType>(v.getType());
    Type elem = type.getElementType();
    bool fragments = (want.kind == LayoutKind::A || want.kind == LayoutKind::Acc) &&
                     (elem.isBF16() || elem.isF16()) && want.cols % 16 == 0;
    if (!sh->second.mem) {
      if (!fragments)
        return remember(readSwizzled(sh->second, want));
      awaitSwizzled({sh->second.swizzled});
    } else {
      flushBarrier();
      if (!fragments)
        return remember(readSlots(sh->second.mem, want, sh->second.transposed));
    }
    // A and Acc hold the same elements per thread in another order: read A fragments
    // with ldmatrix (one per 16 x 16 block instead of 8 scalar loads), then reorder.
    Slots a;
    for (int64_t mt = 0; mt < want.mTiles; ++mt)
      for (int64_t kb = 0; kb < want.cols / 16; ++kb)
        for (Value word : aFragment(sh->second, want.mTiles, mt, kb, elem)) {
          Value pair = elem.isF16() ? word
                                    : Value(vector::BitCastOp::create(
                                          b, VectorType::get({2}, elem),
                                          vector::FromElementsOp::create(
                                              b, VectorType::get({1}, b.getI32Type()), word)));
          for (int64_t i = 0; i < 2; ++i)
            a.push_back(vector::ExtractOp::create(b, pair, ArrayRef<int64_t>{i}));
        }
    if (want.kind == LayoutKind::A)
      return remember(a);
    Slots acc(a.size());
    for (int64_t s = 0; s < int64_t(a.size()); ++s)
      acc[accSlotForOperandA(s, want.cols)] = a[s];
    return remember(acc);
  }
  const Layout &have = layoutOf(v);
  if (have == want)
    return it->second;
  // The one conversion that needs no data movement: an accumulator read as a left
  // operand (FlashAttention-2's P, straight from registers into the second product).
  if (have.kind == LayoutKind::Acc && want.kind == LayoutKind::A && have.rows == want.rows &&
      have.cols == want.cols) {
    Slots out;
    for (int64_t s = 0; s < numSlots(want); ++s)
      out.push_back(it->second[accSlotForOperandA(s, want.cols)]);
    return out;
  }
  FailureOr<Slots> converted = convertThroughShared(v, want, /*transpose=*/false);
  if (failed(converted))
    return failure();
  return remember(*converted);
}

Value Distributor::stagingBuffer(tile::LoadOp op) {
  auto tileType = cast<RankedTensorType>(op.getType());
  Type elem = tileType.getElementType();
  SmallVector<int64_t> shape = paddedShape(tileType.getShape(), elem);
  Value &mem = stagingBuffers[{scalars.lookup(op.getSource()), MemRefType::get(shape, elem)}];
  if (!mem)
    mem = workgroupBuffer(shape, elem);
  return mem;
}

void Distributor::beginSharedArena() {
  MLIRContext *ctx = b.getContext();
  auto workgroup = ::mlir::gpu::AddressSpaceAttr::get(
      ctx, ::mlir::gpu::GPUDialect::getWorkgroupAddressSpace());
  arena = ::mlir::gpu::DynamicSharedMemoryOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(), MemRefLayoutAttrInterface{},
                         workgroup));
  // Swizzle atoms must start on 1024-byte boundaries of the shared window: shift the
  // arena's start up to the next one (the launch reserves the slack).
  Value raw = memref::ExtractAlignedPointerAsIndexOp::create(b, arena);
  Value atom = arith::ConstantIndexOp::create(b, kSwizzleAtomBytes);
  arenaShift = arith::RemUIOp::create(
      b, arith::SubIOp::create(b, atom, arith::RemUIOp::create(b, raw, atom)), atom);
  Value aligned = arith::AddIOp::create(b, raw, arenaShift);
  arenaAddress = arith::IndexCastUIOp::create(b, b.getI64Type(), aligned);
  arenaAnchor = arenaAddress.getDefiningOp();
}

int Distributor::allocateSwizzled(int64_t rows, int64_t cols, int64_t stages, Type elem) {
  // Whole 64-column swizzle blocks: a partial block's chunks land anywhere in its rows.
  cols = llvm::alignTo(cols, kSwizzleCols);
  int64_t elements = rows * cols * stages;
  int64_t offset = llvm::alignTo(arenaBytes, kSwizzleAtomBytes);
  arenaBytes = offset + llvm::alignTo(elements * 2, kSwizzleAtomBytes);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointAfter(arenaAnchor);
  auto workgroup = ::mlir::gpu::AddressSpaceAttr::get(
      b.getContext(), ::mlir::gpu::GPUDialect::getWorkgroupAddressSpace());
  Value shift = arith::AddIOp::create(b, arenaShift, arith::ConstantIndexOp::create(b, offset));
  Value view = memref::ViewOp::create(
      b, MemRefType::get({elements}, elem, MemRefLayoutAttrInterface{}, workgroup), arena,
      shift, ValueRange{});
  Value address = arith::AddIOp::create(
      b, arenaAddress, arith::ConstantIntOp::create(b, b.getI64Type(), offset));
  swizzledTiles.push_back({view, address, rows, cols, stages});
  return swizzledTiles.size() - 1;
}

int Distributor::swizzledBuffer(tile::LoadOp op) {
  auto tileType = cast<RankedTensorType>(op.getType());
  int64_t stages = doubleBuffered.contains({op.getSource(), tileType}) ? prefetchStages() : 1;
  auto key = std::make_pair(scalars.lookup(op.getSource()), Type(tileType));
  auto it = swizzledBuffers.find(key);
  if (it != swizzledBuffers.end())
    return it->second;
  int index = allocateSwizzled(tileType.getDimSize(0), tileType.getDimSize(1), stages,
                               tileType.getElementType());
  swizzledBuffers[key] = index;
  return index;
}

Value Distributor::stageOffset(const SwizzledTile &t, Value stage) {
  return arith::MulIOp::create(b, stage, arith::ConstantIndexOp::create(b, t.rows * t.cols));
}

void Distributor::issueCopies(tile::LoadOp op, const SwizzledTile &t, Value stage,
                              ValueRange origin, int group) {
  Value buffer = scalars.lookup(op.getSource());
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value full = arith::ConstantIndexOp::create(b, 8), none = zero;
  Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
  Value base = stageOffset(t, stage);
  auto token = nvgpu::DeviceAsyncTokenType::get(b.getContext());
  for (int64_t i = 0; i < vectorsPerThread(op); ++i) {
    // Rows past the buffer copy nothing: cp.async fills the 16 bytes with zeros without
    // reading its source, so the address needs no clamp and stays an affine function of
    // the tile origin (a few instructions per copy once LLVM shares the common terms).
    VectorSource v = vectorSource(op, origin, i, rowsInBuffer, /*clampOutside=*/false);
    Value dst = arith::AddIOp::create(b, base, swizzledOffset(b, v.row, v.col, t.rows));
    nvgpu::DeviceAsyncCopyOp::create(b, token, t.view, ValueRange{dst}, buffer, v.indices,
                                     b.getIndexAttr(8),
                                     arith::SelectOp::create(b, v.inBounds, full, none),
                                     b.getUnitAttr());
  }
  NVVM::CpAsyncCommitGroupOp::create(b);
  pendingCopies.push_back(group);
}

void Distributor::waitForCopies(int newerGroupsLeft) {
  NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(newerGroupsLeft));
  // cp.async writes through the generic proxy; wgmma reads through the async one.
  NVVM::FenceProxyOp::create(
      b, NVVM::ProxyKindAttr::get(b.getContext(), NVVM::ProxyKind::async_shared),
      NVVM::SharedSpaceAttr::get(b.getContext(), NVVM::SharedSpace::shared_cta));
  pendingCopies.erase(pendingCopies.begin(), pendingCopies.end() - newerGroupsLeft);
}

bool Distributor::waitForGroup(function_ref<bool(int)> needed) {
  for (int i = int(pendingCopies.size()) - 1; i >= 0; --i)
    if (needed(pendingCopies[i])) {
      waitForCopies(int(pendingCopies.size()) - 1 - i);
      return true;
    }
  return false;
}

void Distributor::settleCopies() {
  flushBarrier();
  if (copiesPending()) {
    waitForCopies();
    ::mlir::gpu::BarrierOp::create(b);
  }
}

void Distributor::waitProducts(int64_t newerLeft, int64_t upTo) {
  NVVM::WgmmaWaitGroupSyncOp::create(b, newerLeft);
  SmallVector<Value> done;
  for (auto &[v, group] : productsInFlight)
    if (group <= upTo)
      done.push_back(v);
  for (Value v : done) {
    tiles[v] = fenceRegisters(b, tiles[v]);
    productsInFlight.erase(v);
  }
}

void Distributor::awaitProduct(Value v) {
  int64_t group = productsInFlight.lookup(v);
  waitProducts(productGroups - group, group);
}

void Distributor::settleProducts() {
  if (!productsInFlight.empty())
    waitProducts(0, productGroups);
}

void Distributor::flushForProduct(tile::DotOp op) {
  SmallVector<int> operandBuffers;
  for (Value operand : {op.getLhs(), op.getRhs()})
    if (auto it = shared.find(operand); it != shared.end() && it->second.swizzled >= 0)
      operandBuffers.push_back(it->second.swizzled);
  awaitSwizzled(operandBuffers);
}

void Distributor::awaitSwizzled(ArrayRef<int> buffers) {
  if (!waitForGroup([&](int group) { return llvm::is_contained(buffers, group); })) {
    flushBarrier();
    return;
  }
  ::mlir::gpu::BarrierOp::create(b);
  barrierPending = false;
}

Slots Distributor::readSwizzled(const SharedTile &t, const Layout &want) {
  awaitSwizzled({t.swizzled});
  const SwizzledTile &st = swizzledTiles[t.swizzled];
  Value base = stageOffset(st, t.stage);
  Slots out;
  for (int64_t s = 0; s < numSlots(want); ++s) {
    auto [r, c] = position(want, s);
    if (t.transposed)
      std::swap(r, c);
    Value at = arith::AddIOp::create(b, base, swizzledOffset(b, r, c, st.rows));
    out.push_back(memref::LoadOp::create(b, st.view, ValueRange{at}));
  }
  return out;
}

FailureOr<Distributor::SharedTile> Distributor::stageSwizzled(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  int64_t rows = type.getDimSize(0), cols = type.getDimSize(1);
  if (rows % 8 || cols % kSwizzleCols)
    return emitError(v.getLoc(), "a computed warpgroup operand needs rows in multiples of 8 "
                                 "and columns in multiples of 64");
  const Layout &have = layoutOf(v);
  FailureOr<Slots> slots = slotsOf(v, have);
  if (failed(slots))
    return failure();
  int index = allocateSwizzled(rows, cols, /*stages=*/1, type.getElementType());
  const SwizzledTile &st = swizzledTiles[index];
  // Earlier readers of the buffer (last iteration's products) are done; copies in flight
  // elsewhere keep flying.
  ::mlir::gpu::BarrierOp::create(b);
  if (have.kind == LayoutKind::Acc) {
    writeAccumulatorPairs(have, *slots, index, type.getElementType());
  } else {
    for (int64_t s = 0; s < int64_t(slots->size()); ++s) {
      auto [r, c] = position(have, s);
      memref::StoreOp::create(b, (*slots)[s], st.view, ValueRange{swizzledOffset(b, r, c, rows)});
    }
  }
  // Written through the generic proxy, read by wgmma through the async one.
  NVVM::FenceProxyOp::create(
      b, NVVM::ProxyKindAttr::get(b.getContext(), NVVM::ProxyKind::async_shared),
      NVVM::SharedSpaceAttr::get(b.getContext(), NVVM::SharedSpace::shared_cta));
  ::mlir::gpu::BarrierOp::create(b);
  SharedTile t{Value(), /*transposed=*/false, index, arith::ConstantIndexOp::create(b, 0)};
  shared[v] = t;
  return t;
}

static bool knownMultipleOf(Value v, int64_t w);

void Distributor::writeAccumulatorPairs(const Layout &have, ArrayRef<Value> slots, int buffer,
                                        Type elem) {
  const SwizzledTile &st = swizzledTiles[buffer];
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  // Slots 2i and 2i + 1 are neighbouring columns of one row: one 32-bit store. They sit
  // at rows warpRow + dr (dr a multiple of 8, so row % 8 is g) and columns 2t + dc: the
  // swizzled offset is rowBase ^ (16-byte chunk) plus a constant, one base per thread
  // for every store instead of one address register per store (ptxas spilled those,
  // and reloaded them every block).
  Value rowBase = arith::AddIOp::create(
      b, arith::MulIOp::create(b, base(have, LaneBase::WarpRow), c(kSwizzleCols)),
      arith::AddIOp::create(b, t2, arith::MulIOp::create(b, g, c(8))));
  for (int64_t s = 0; s < int64_t(slots.size()); s += 2) {
    SlotCoord sc = slotCoord(have, s);
    int64_t block = sc.col / kSwizzleCols, chunk = sc.col % kSwizzleCols / 8;
    Value swizzled = arith::XOrIOp::create(b, rowBase, c(chunk * 8));
    Value at = arith::AddIOp::create(
        b, swizzled, c(block * st.rows * kSwizzleCols + sc.row * kSwizzleCols));
    Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, elem),
                                                ValueRange{slots[s], slots[s + 1]});
    vector::StoreOp::create(b, pair, st.view, ValueRange{at});
  }
}

int Distributor::throughSharedBuffer(tile::StoreOp op, const Layout &l) {
  auto tileType = dyn_cast<RankedTensorType>(op.getValue().getType());
  auto type = cast<MemRefType>(op.getDest().getType());
  bool inLoop = isa<scf::ForOp>(op->getParentOp());
  if (!wgmma || l.kind != LayoutKind::Acc || !tileType || tileType.getRank() != 2 ||
      !(inLoop || isa<tile::GridOp>(op->getParentOp())))
    return -1;
  Type elem = type.getElementType();
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  int64_t rowLength = type.getDimSize(type.getRank() - 1);
  if (elem.getIntOrFloatBitWidth() != 16 || rows % 8 || cols % kSwizzleCols ||
      numThreads % (cols / 8) || (rows * cols / 8) % numThreads ||
      ShapedType::isDynamic(rowLength) || rowLength % 8 ||
      !knownMultipleOf(op.getIndices().back(), 8))
    return -1;
  // Stored once, after the loops (a softmax's O): only through a buffer nothing reads
  // any more (Q's), so that shared memory, and blocks per SM, stay as they are.
  if (!inLoop)
    return bufferFreeAfter(op, rows, cols, elem);
  return allocateSwizzled(rows, cols, /*stages=*/1, elem);
}

Value Distributor::opaqueIndex(Value v) {
  Value word = arith::IndexCastUIOp::create(b, b.getI32Type(), v);
  Value same = LLVM::InlineAsmOp::create(
                   b, b.getI32Type(), ValueRange{word}, b.getStringAttr(""),
                   b.getStringAttr("=r,0"), /*has_side_effects=*/b.getUnitAttr(), UnitAttr(),
                   LLVM::TailCallKindAttr(),
                   LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
                   ArrayAttr())
                   .getResult(0);
  return arith::IndexCastUIOp::create(b, b.getIndexType(), same);
}

/// A swizzled buffer of rows x cols `elem`s that no op after `op` can touch: the ops
/// after it load, multiply and branch nothing, and read no tile staged in it.
int Distributor::bufferFreeAfter(tile::StoreOp op, int64_t rows, int64_t cols, Type elem) {
  llvm::SmallDenseSet<int> readLater;
  for (Operation *later = op->getNextNode(); later; later = later->getNextNode()) {
    if (later->getNumRegions() || isa<tile::LoadOp, tile::DotOp, tile::GatherOp>(later))
      return -1;
    for (Value v : later->getOperands())
      if (auto it = shared.find(v); it != shared.end())
        readLater.insert(it->second.swizzled);
  }
  for (auto [index, t] : llvm::enumerate(swizzledTiles))
    if (t.rows == rows && t.cols == cols && getElementTypeOrSelf(t.view.getType()) == elem &&
        !readLater.contains(int(index)))
      return index;
  return -1;
}

/// A block's output stored every iteration goes out through shared memory: its pairs
/// into a swizzled buffer, then 16-byte rows, a quarter of the global store instructions
/// of 32-bit pairs (each holding its address and data registers until the store drains)
/// and whole 32-byte sectors. Not from a branch (two branches' stores, as the grouped
/// gradient sweeps had before they became a grid per case, spilled).
void Distributor::storeThroughShared(tile::StoreOp op, const Layout &l, ArrayRef<Value> slots,
                                     int index) {
  auto tileType = cast<RankedTensorType>(op.getValue().getType());
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  Value buffer = scalars.lookup(op.getDest());
  auto type = cast<MemRefType>(buffer.getType());
  Type elem = type.getElementType();
  int64_t rank = type.getRank();
  const SwizzledTile &st = swizzledTiles[index];
  // The buffer's last readers (the last iteration's, or a reused buffer's) are done; a
  // reused buffer's copies still landing (a prefetch past the last iteration) too.
  bool reused = !isa<scf::ForOp>(op->getParentOp());
  if (reused && copiesPending())
    waitForCopies();
  ::mlir::gpu::BarrierOp::create(b);
  // After the loops, positions from a thread index LLVM cannot equate with the entry's:
  // it would otherwise reuse the reused buffer's copy addresses, computed at the entry,
  // and keep them in registers through every loop (26 more at D = 128).
  llvm::SaveAndRestore<Value> localThreadId(threadId);
  if (reused) {
    barrierPending = false;
    threadId = opaqueIndex(threadId);
  }
  writeAccumulatorPairs(l, slots, index, elem);
  ::mlir::gpu::BarrierOp::create(b);
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
  auto vecType = VectorType::get({8}, elem);
  for (int64_t i = 0; i < rows * cols / 8 / numThreads; ++i) {
    auto [r, c] = vectorPosition(cols, 16, i);
    Value v = vector::LoadOp::create(b, vecType, st.view, ValueRange{swizzledOffset(b, r, c, rows)},
                                     /*nontemporal=*/false, b.getI64IntegerAttr(16));
    SmallVector<Value> idx(origin);
    idx[rank - 2] = arith::AddIOp::create(b, idx[rank - 2], r);
    idx[rank - 1] = arith::AddIOp::create(b, idx[rank - 1], c);
    Value inside = chunkInside(idx, buffer, rowsInBuffer, cols, op.getIndices().back());
    scf::IfOp::create(b, inside, [&](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      vector::StoreOp::create(b, v, buffer, idx, /*nontemporal=*/false, b.getI64IntegerAttr(16));
      scf::YieldOp::create(b);
    });
  }
}

/// 16-byte vectors per thread when `op`'s tile spans whole rows of its buffer (the head
/// dim) and divides evenly among `numThreads` threads; 0 otherwise.
/// Whether index `v` is a multiple of `w` by construction.
static bool knownMultipleOf(Value v, int64_t w) {
  APInt c;
  if (matchPattern(v, m_ConstantInt(&c)))
    return c.getSExtValue() % w == 0;
  if (auto mul = v.getDefiningOp<arith::MulIOp>())
    return knownMultipleOf(mul.getLhs(), w) || knownMultipleOf(mul.getRhs(), w);
  if (auto add = v.getDefiningOp<arith::AddIOp>())
    return knownMultipleOf(add.getLhs(), w) && knownMultipleOf(add.getRhs(), w);
  return false;
}

/// 16-byte vectors per thread when `op`'s tile is made of whole 16-byte chunks of its
/// buffer's rows (all of a row, or columns starting at a multiple of 16 bytes of a row
/// that is a whole number of chunks) and the chunks divide evenly among `numThreads`
/// threads; 0 otherwise.
static int64_t vectorsPerThreadOf(tile::LoadOp op, int64_t numThreads) {
  auto tileType = cast<RankedTensorType>(op.getType());
  auto buffer = cast<MemRefType>(op.getSource().getType());
  if (tileType.getRank() != 2)
    return 0;
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  int64_t width = 16 / (tileType.getElementType().getIntOrFloatBitWidth() / 8);
  int64_t rowLength = buffer.getDimSize(buffer.getRank() - 1);
  bool wholeRows = rowLength == cols && matchPattern(op.getIndices().back(), m_Zero());
  bool wholeChunks = !ShapedType::isDynamic(rowLength) && rowLength % width == 0 &&
                     knownMultipleOf(op.getIndices().back(), width);
  if (!(wholeRows || wholeChunks) || cols % width || (rows * cols / width) % numThreads)
    return 0;
  return rows * cols / width / numThreads;
}

int64_t Distributor::vectorsPerThread(tile::LoadOp op) {
  return vectorsPerThreadOf(op, numThreads);
}

/// Position (row, column) in the tile of this thread's `i`-th vector: consecutive threads
/// take consecutive vectors of a row, so a warp reads 512 contiguous bytes.
std::pair<Value, Value> Distributor::vectorPosition(tile::LoadOp op, int64_t i) {
  auto tileType = cast<RankedTensorType>(op.getType());
  return vectorPosition(tileType.getDimSize(1), tileType.getElementType().getIntOrFloatBitWidth(),
                        i);
}

std::pair<Value, Value> Distributor::vectorPosition(int64_t cols, int64_t elemBits, int64_t i) {
  int64_t width = 16 / (elemBits / 8);
  int64_t perRow = cols / width;
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, v); };
  if (numThreads % perRow == 0) {
    // Every pass of the threads covers whole rows: vector i is vector 0 moved down
    // i x numThreads / perRow rows (the same column), so its addresses (and swizzle, for
    // passes of a multiple of 8 rows) differ from vector 0's by constants and need no
    // register of their own.
    Value r = arith::AddIOp::create(b, arith::DivUIOp::create(b, threadId, c(perRow)),
                                    c(i * (numThreads / perRow)));
    return {r, arith::MulIOp::create(b, arith::RemUIOp::create(b, threadId, c(perRow)),
                                     c(width))};
  }
  Value linear = arith::AddIOp::create(b, threadId, c(i * numThreads));
  Value r = arith::DivUIOp::create(b, linear, c(perRow));
  Value col = arith::MulIOp::create(b, arith::RemUIOp::create(b, linear, c(perRow)), c(width));
  return {r, col};
}

Distributor::VectorSource Distributor::vectorSource(tile::LoadOp op, ValueRange origin,
                                                    int64_t i, Value rowsInBuffer,
                                                    bool clampOutside) {
  auto [r, c] = vectorPosition(op, i);
  int64_t rank = origin.size();
  VectorSource v{SmallVector<Value>(origin), Value(), r, c};
  v.indices[rank - 2] = arith::AddIOp::create(b, v.indices[rank - 2], r);
  v.indices[rank - 1] = arith::AddIOp::create(b, v.indices[rank - 1], c);
  // One past the buffer reads nothing (loads clamp its address to (0, 0); see
  // vectorsPerThreadOf for why a chunk is wholly inside or outside).
  v.inBounds = chunkInside(v.indices, scalars.lookup(op.getSource()), rowsInBuffer,
                           cast<RankedTensorType>(op.getType()).getDimSize(1),
                           op.getIndices().back());
  if (!clampOutside)
    return v;
  Value zero = arith::ConstantIndexOp::create(b, 0);
  for (int64_t d : {rank - 2, rank - 1})
    v.indices[d] = arith::SelectOp::create(b, v.inBounds, v.indices[d], zero);
  return v;
}

Value Distributor::chunkInside(ArrayRef<Value> idx, Value buffer, Value rowsInBuffer,
                               int64_t tileCols, Value tileCol) {
  int64_t rank = idx.size(), rowLength = cast<MemRefType>(buffer.getType()).getDimSize(rank - 1);
  Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 2], rowsInBuffer);
  if (rowLength != tileCols || !matchPattern(tileCol, m_Zero()))
    inside = arith::AndIOp::create(
        b, inside,
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 1],
                              arith::ConstantIndexOp::create(b, rowLength)));
  return inside;
}

SmallVector<Value> Distributor::loadRows(tile::LoadOp op, ValueRange origin) {
  auto tileType = cast<RankedTensorType>(op.getType());
  Type elem = tileType.getElementType();
  int64_t width = 16 / (elem.getIntOrFloatBitWidth() / 8);
  Value buffer = scalars.lookup(op.getSource());
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  auto vecType = VectorType::get({width}, elem);
  Value zeros = arith::ConstantOp::create(b, vecType,
                                          DenseElementsAttr::get(vecType, b.getZeroAttr(elem)));
  Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
  SmallVector<Value> regs;
  for (int64_t i = 0; i < vectorsPerThread(op); ++i) {
    // A row past the buffer reads row 0 and becomes zeros.
    VectorSource v = vectorSource(op, origin, i, rowsInBuffer);
    Value x = vector::LoadOp::create(b, vecType, buffer, v.indices, /*nontemporal=*/false,
                                     b.getI64IntegerAttr(16));
    regs.push_back(arith::SelectOp::create(b, v.inBounds, x, zeros));
  }
  return regs;
}

void Distributor::storeRows(tile::LoadOp op, Value mem, ArrayRef<Value> regs) {
  for (auto [i, v] : llvm::enumerate(regs)) {
    auto [r, c] = vectorPosition(op, i);
    vector::StoreOp::create(b, v, mem, ValueRange{r, c}, /*nontemporal=*/false,
                            b.getI64IntegerAttr(16));
  }
}

LogicalResult Distributor::lowerLoadToShared(tile::LoadOp op) {
  auto tileType = cast<RankedTensorType>(op.getType());
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  Type elem = tileType.getElementType();
  Value buffer = scalars.lookup(op.getSource());
  int64_t rank = cast<MemRefType>(buffer.getType()).getRank();
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));

  // The previous iteration's readers must be done before the tile is overwritten.
  settleProducts();
  if (swizzles(op)) {
    int index = swizzledBuffer(op);
    if (!barrierPending) {
      // No two copies in flight to the same bytes: wait for the newest earlier copy into
      // this buffer (a prefetch, -1, may target any; a next-stage copy, either stage).
      waitForGroup([&](int group) {
        return group == index || group == -1 || group == nextStageGroup(index);
      });
      ::mlir::gpu::BarrierOp::create(b);
    }
    Value first = arith::ConstantIndexOp::create(b, 0);
    issueCopies(op, swizzledTiles[index], first, origin, index);
    barrierPending = true;
    shared[op.getResult()] = {Value(), false, index, first};
    return success();
  }
  if (!barrierPending)
    ::mlir::gpu::BarrierOp::create(b);
  Value mem = stagingBuffer(op);
  if (vectorsPerThread(op)) {
    storeRows(op, mem, loadRows(op, origin));
  } else {
    // Consecutive threads copy consecutive elements of a row: coalesced global reads.
    Value zero = arith::ConstantIndexOp::create(b, 0);
    Value pad = arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(elem)));
    Value colsC = arith::ConstantIndexOp::create(b, cols);
    Value rowsInBuffer = memref::DimOp::create(b, buffer, rank - 2);
    Value colsInBuffer = memref::DimOp::create(b, buffer, rank - 1);
    auto copy = scf::ForOp::create(b, zero, arith::ConstantIndexOp::create(b, rows * cols),
                                   arith::ConstantIndexOp::create(b, numThreads));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(copy.getBody());
    Value linear = arith::AddIOp::create(b, copy.getInductionVar(), threadId);
    Value r = arith::DivUIOp::create(b, linear, colsC);
    Value c = arith::RemUIOp::create(b, linear, colsC);
    SmallVector<Value> idx(origin);
    idx[rank - 2] = arith::AddIOp::create(b, idx[rank - 2], r);
    idx[rank - 1] = arith::AddIOp::create(b, idx[rank - 1], c);
    Value ok = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 2], rowsInBuffer),
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 1], colsInBuffer));
    idx[rank - 2] = arith::SelectOp::create(b, ok, idx[rank - 2], zero);
    idx[rank - 1] = arith::SelectOp::create(b, ok, idx[rank - 1], zero);
    Value v = memref::LoadOp::create(b, buffer, idx);
    memref::StoreOp::create(b, arith::SelectOp::create(b, ok, v, pad), mem, ValueRange{r, c});
  }
  barrierPending = true;
  shared[op.getResult()] = {mem, /*transposed=*/false};
  return success();
}

LogicalResult Distributor::lowerLoad(tile::LoadOp op) {
  if (isStaged(op))
    return lowerLoadToShared(op);
  const Layout &l = layoutOf(op.getResult());
  Value buffer = scalars.lookup(op.getSource());
  auto type = cast<MemRefType>(buffer.getType());
  int64_t rank = type.getRank(), tileRank = l.cols ? 2 : 1;
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  SmallVector<Value> dims;
  for (int64_t d = rank - tileRank; d < rank; ++d)
    dims.push_back(memref::DimOp::create(b, buffer, d));
  Type elem = type.getElementType();
  TypedAttr padAttr = op.getPaddingAttr() ? op.getPaddingAttr()
                                          : cast<TypedAttr>(b.getZeroAttr(elem));
  Value pad = arith::ConstantOp::create(b, padAttr);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SlotCoord c = slotCoord(l, s);
    SmallVector<Value> idx(origin);
    Value inBounds;
    for (int64_t k = 0; k < tileRank; ++k) {
      Value local = k == 0 ? coord(l, c.rowBase, c.row) : coord(l, c.colBase, c.col);
      Value &i = idx[rank - tileRank + k];
      i = arith::AddIOp::create(b, i, local);
      Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, dims[k]);
      inBounds = inBounds ? arith::AndIOp::create(b, inBounds, ok).getResult() : ok;
      // Out-of-bounds slots read element 0 and are replaced by the padding: no branch.
      i = arith::SelectOp::create(b, ok, i, zero);
    }
    Value v = memref::LoadOp::create(b, buffer, idx);
    out.push_back(arith::SelectOp::create(b, inBounds, v, pad));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

/// A transpose of a register tile that only stores read: the stores write the input's
/// slots at swapped coordinates instead (no trip through shared memory).
static bool isStoredTranspose(tile::TransOp t) {
  return llvm::all_of(t->getUsers(), [](Operation *u) { return isa<tile::StoreOp>(u); });
}

LogicalResult Distributor::lowerStore(tile::StoreOp op) {
  Value value = op.getValue();
  bool transposed = false;
  if (auto t = value.getDefiningOp<tile::TransOp>();
      t && isStoredTranspose(t) && tiles.count(t.getInput())) {
    value = t.getInput();
    transposed = true;
  }
  const Layout &l = layoutOf(value);
  FailureOr<Slots> values = slotsOf(value, l);
  if (failed(values))
    return failure();
  Value buffer = scalars.lookup(op.getDest());
  auto type = cast<MemRefType>(buffer.getType());
  int64_t rank = type.getRank(), tileRank = l.cols ? 2 : 1;
  SmallVector<Value> origin;
  for (Value i : op.getIndices())
    origin.push_back(scalars.lookup(i));
  if (int index = transposed ? -1 : throughSharedBuffer(op, l); index >= 0) {
    storeThroughShared(op, l, *values, index);
    return success();
  }
  // An accumulator tile of 16-bit elements at an even column of rows of even length:
  // each thread's neighbouring columns (2t, 2t + 1) go out as one 32-bit store.
  Type elem = type.getElementType();
  int64_t rowLength = type.getDimSize(rank - 1);
  bool wholeRows = rowLength == l.cols && matchPattern(op.getIndices().back(), m_Zero());
  if (!transposed && l.kind == LayoutKind::Acc && tileRank == 2 &&
      elem.getIntOrFloatBitWidth() == 16 &&
      !ShapedType::isDynamic(rowLength) && rowLength % 2 == 0 &&
      knownMultipleOf(op.getIndices().back(), 2)) {
    Value rows = memref::DimOp::create(b, buffer, rank - 2);
    auto pairType = VectorType::get({2}, elem);
    // One bounds branch per row this thread holds, around all of that row's pairs: a
    // branch per pair would repeat the row test and the buffer's address arithmetic.
    llvm::MapVector<std::pair<int64_t, int64_t>, SmallVector<int64_t>> pairsOfRow;
    for (int64_t s = 0; s < numSlots(l); s += 2) {
      SlotCoord c = slotCoord(l, s);
      pairsOfRow[{int64_t(c.rowBase), c.row}].push_back(s);
    }
    for (auto &[row, slots] : pairsOfRow) {
      SlotCoord first = slotCoord(l, slots.front());
      Value r = arith::AddIOp::create(b, origin[rank - 2],
                                      coord(l, first.rowBase, first.row));
      Value rowOk = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, r, rows);
      scf::IfOp::create(b, rowOk, [&](OpBuilder &nb, Location loc) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        for (int64_t s : slots) {
          SlotCoord c = slotCoord(l, s);
          SmallVector<Value> idx(origin);
          idx[rank - 2] = r;
          idx[rank - 1] = arith::AddIOp::create(b, idx[rank - 1], coord(l, c.colBase, c.col));
          Value pair = vector::FromElementsOp::create(
              b, pairType, ValueRange{(*values)[s], (*values)[s + 1]});
          auto store = [&] {
            vector::StoreOp::create(b, pair, buffer, idx, /*nontemporal=*/false,
                                    b.getI64IntegerAttr(4));
          };
          if (wholeRows) {
            store();
            continue;
          }
          Value colOk = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, idx[rank - 1],
                                              arith::ConstantIndexOp::create(b, rowLength));
          scf::IfOp::create(b, colOk, [&](OpBuilder &cb, Location) {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPoint(cb.getInsertionBlock(), cb.getInsertionPoint());
            store();
            scf::YieldOp::create(b);
          });
        }
        scf::YieldOp::create(b);
      });
    }
    return success();
  }
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SlotCoord c = slotCoord(l, s);
    SmallVector<Value> idx(origin);
    // Row and RowSpan values are replicated over the 4 lanes of a quad: one writes them;
    // a Whole value is held by every thread: the first writes it.
    bool quadReplicated = l.kind == LayoutKind::Row || l.kind == LayoutKind::RowSpan;
    Value inBounds = quadReplicated ? isQuadLeader : Value();
    if (l.kind == LayoutKind::Whole)
      inBounds = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, threadId,
                                       arith::ConstantIndexOp::create(b, 0));
    for (int64_t k = 0; k < tileRank; ++k) {
      Value local = (k == 0) != transposed ? coord(l, c.rowBase, c.row)
                                           : coord(l, c.colBase, c.col);
      Value &i = idx[rank - tileRank + k];
      i = arith::AddIOp::create(b, i, local);
      Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i,
                                       memref::DimOp::create(b, buffer, rank - tileRank + k));
      inBounds = inBounds ? arith::AndIOp::create(b, inBounds, ok).getResult() : ok;
    }
    Value v = (*values)[s];
    scf::IfOp::create(b, inBounds, [&](OpBuilder &nb, Location loc) {
      memref::StoreOp::create(nb, loc, v, buffer, idx);
      scf::YieldOp::create(nb, loc);
    });
  }
  return success();
}

LogicalResult Distributor::lowerGather(tile::GatherOp op) {
  const Layout &l = layoutOf(op.getResult());
  SmallVector<Slots> indices;
  for (Value tileOfIndices : op.getIndices()) {
    FailureOr<Slots> s = slotsOf(tileOfIndices, l);
    if (failed(s))
      return failure();
    indices.push_back(std::move(*s));
  }
  Value table = scalars.lookup(op.getSource());
  SmallVector<Value> sizes;
  for (int64_t d = 0; d < int64_t(indices.size()); ++d)
    sizes.push_back(memref::DimOp::create(b, table, d));
  Type elem = cast<MemRefType>(table.getType()).getElementType();
  TypedAttr padAttr = op.getPaddingAttr() ? op.getPaddingAttr()
                                          : cast<TypedAttr>(b.getZeroAttr(elem));
  Value pad = arith::ConstantOp::create(b, padAttr);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    // Outside any dimension: read element 0 (always there) and give the padding.
    Value ok;
    SmallVector<Value> at;
    for (auto [slots, size] : llvm::zip(indices, sizes)) {
      Value i = arith::IndexCastOp::create(b, b.getIndexType(), slots[s]);
      Value inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, size);
      ok = ok ? arith::AndIOp::create(b, ok, inside).getResult() : inside;
      at.push_back(i);
    }
    for (Value &i : at)
      i = arith::SelectOp::create(b, ok, i, zero);
    Value v = memref::LoadOp::create(b, table, at);
    out.push_back(arith::SelectOp::create(b, ok, v, pad));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

/// Packs two 16-bit floats into one 32-bit register.
static Value packWord(ImplicitLocOpBuilder &b, Value lo, Value hi) {
  Value v = vector::FromElementsOp::create(b, VectorType::get({2}, lo.getType()),
                                           ValueRange{lo, hi});
  Value word = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), v);
  return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
}

/// The register an mma.sync operand takes: the f16 form takes vector<2xf16>, bf16 a word.
static Value packPair(ImplicitLocOpBuilder &b, Value lo, Value hi) {
  if (lo.getType().isF16())
    return vector::FromElementsOp::create(b, VectorType::get({2}, lo.getType()),
                                          ValueRange{lo, hi});
  return packWord(b, lo, hi);
}

std::array<Value, 4> Distributor::ldmatrixWords(Value mem, ArrayRef<Value> idx,
                                                bool transpose, Type elem) {
  Value frag = nvgpu::LdMatrixOp::create(b, VectorType::get({4, 2}, elem), mem, idx,
                                         transpose, /*numTiles=*/4);
  std::array<Value, 4> words;
  for (int64_t i = 0; i < 4; ++i) {
    // The f16 mma takes vector<2xf16>; bf16 takes a 32-bit word.
    Value pair = vector::ExtractOp::create(b, frag, ArrayRef<int64_t>{i});
    if (elem.isF16()) {
      words[i] = pair;
      continue;
    }
    Value w = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), pair);
    words[i] = vector::ExtractOp::create(b, w, ArrayRef<int64_t>{0});
  }
  return words;
}

std::array<Value, 4> Distributor::aFragment(const SharedTile &t, int64_t tilesPerWarp,
                                            int64_t mt, int64_t kb, Type elem) {
  // Matrices (m half, k half) = (0,0) (1,0) (0,1) (1,1): the fragment's register order.
  auto [row, mHalf, kHalf] = ldmatrixLane();
  Value m0 = arith::AddIOp::create(
      b, arith::MulIOp::create(b, warp, arith::ConstantIndexOp::create(b, 16 * tilesPerWarp)),
      arith::ConstantIndexOp::create(b, 16 * mt));
  Value mIdx = arith::AddIOp::create(b, m0, mHalf);
  Value kIdx = arith::AddIOp::create(b, kHalf, arith::ConstantIndexOp::create(b, 16 * kb));
  SmallVector<Value> idx = t.transposed
                               ? SmallVector<Value>{arith::AddIOp::create(b, kIdx, row), mIdx}
                               : SmallVector<Value>{arith::AddIOp::create(b, mIdx, row), kIdx};
  if (t.mem)
    return ldmatrixWords(t.mem, idx, t.transposed, elem);
  // A swizzled tile: each lane's 8 elements (one 16-byte chunk) stay contiguous.
  const SwizzledTile &st = swizzledTiles[t.swizzled];
  Value at = arith::AddIOp::create(b, stageOffset(st, t.stage),
                                   swizzledOffset(b, idx[0], idx[1], st.rows));
  return ldmatrixWords(st.view, {at}, t.transposed, elem);
}

LogicalResult Distributor::lowerDot(tile::DotOp op) {
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
  int64_t m = lhsType.getDimSize(0), k = lhsType.getDimSize(1), n = rhsType.getDimSize(1);
  Type elem = lhsType.getElementType();
  if (!elem.isF16() && !elem.isBF16())
    return op.emitError("GPU tensor cores take f16 or bf16 operands, got ") << elem;
  if (k % 16 || n % 8)
    return op.emitError("GPU dot needs K % 16 == 0 and N % 8 == 0");
  int64_t mTiles = layoutOf(op.getResult()).mTiles;
  FailureOr<Slots> c = slotsOf(op.getAcc(), {LayoutKind::Acc, m, n, mTiles});
  if (failed(c))
    return failure();
  // Left-operand registers of m-tile mt, k-block kb: in registers, or one ldmatrix.x4
  // from shared memory (a staged Q, or Kᵀ read from K's buffer with .trans).
  auto sharedLhs = shared.find(op.getLhs());
  bool lhsShared = !tiles.count(op.getLhs()) && sharedLhs != shared.end() &&
                   sharedLhs->second.mem;
  FailureOr<Slots> a = Slots();
  if (!lhsShared)
    a = slotsOf(op.getLhs(), {LayoutKind::A, m, k, mTiles});
  if (failed(a))
    return failure();
  DenseMap<std::pair<int64_t, int64_t>, SmallVector<Value>> lhsFetched;
  auto lhsRegs = [&](int64_t mt, int64_t kb) -> SmallVector<Value> {
    SmallVector<Value> regs;
    if (auto it = lhsFetched.find({mt, kb}); it != lhsFetched.end())
      return it->second;
    if (!lhsShared) {
      int64_t aBase = mt * (k / 2) + 8 * kb;
      for (int64_t r = 0; r < 4; ++r)
        regs.push_back(packPair(b, (*a)[aBase + 2 * r], (*a)[aBase + 2 * r + 1]));
      return regs;
    }
    std::array<Value, 4> w = aFragment(sharedLhs->second, mTiles, mt, kb, elem);
    return lhsFetched[{mt, kb}] = SmallVector<Value>(w.begin(), w.end());
  };
  // Every warp reads the right operand whole: from shared memory, where a computed one
  // is copied first.
  if (!shared.count(op.getRhs()) && failed(stageRegisters(op.getRhs())))
    return failure();
  auto sharedRhs = shared.find(op.getRhs());
  // Right-operand registers of the 16 x 8 block (kb, nb): two 32-bit words. From shared
  // memory, one ldmatrix.x4 fetches the words of two neighbouring blocks (nb, nb + 1);
  // K (stored [n][k]) reads plainly, V (stored [k][n]) with .trans.
  DenseMap<std::pair<int64_t, int64_t>, std::array<Value, 2>> fetched;
  auto rhsRegs = [&](int64_t kb, int64_t nb) -> std::array<Value, 2> {
    auto it = fetched.find({kb, nb});
    if (it != fetched.end())
      return it->second;
    int64_t pairBase = nb - nb % 2;
    const SharedTile &tile = sharedRhs->second;
    // Matrices (k half 0, nb), (k half 1, nb), (k half 0, nb + 1), (k half 1, nb + 1).
    auto [row, kHalf, nPart] = ldmatrixLane();
    Value k0 = arith::AddIOp::create(b, kHalf, arith::ConstantIndexOp::create(b, 16 * kb));
    Value n0 = arith::AddIOp::create(b, nPart, arith::ConstantIndexOp::create(b, 8 * pairBase));
    SmallVector<Value> idx = tile.transposed
                                 ? SmallVector<Value>{arith::AddIOp::create(b, n0, row), k0}
                                 : SmallVector<Value>{arith::AddIOp::create(b, k0, row), n0};
    std::array<Value, 4> w = ldmatrixWords(tile.mem, idx, !tile.transposed, elem);
    fetched[{kb, pairBase}] = {w[0], w[1]};
    fetched[{kb, pairBase + 1}] = {w[2], w[3]};
    return fetched[{kb, nb}];
  };
  if ((n / 8) % 2)
    return op.emitError("GPU dot from shared memory needs N % 16 == 0");
  auto ptxType = elem.isF16() ? NVVM::MMATypes::f16 : NVVM::MMATypes::bf16;
  Type f32 = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  Slots out(*c);
  // Each right-operand fragment, loaded once, serves every m-tile of the warp.
  for (int64_t nb = 0; nb < n / 8; ++nb)
    for (int64_t kb = 0; kb < k / 16; ++kb) {
      std::array<Value, 2> bRegs = rhsRegs(kb, nb);
      for (int64_t mt = 0; mt < mTiles; ++mt) {
        int64_t cBase = mt * (n / 2) + 4 * nb;
        SmallVector<Value> aRegs = lhsRegs(mt, kb);
        SmallVector<Value> cRegs(out.begin() + cBase, out.begin() + cBase + 4);
        Value d = NVVM::MmaOp::create(
            b, resultType, aRegs, ValueRange{bRegs[0], bRegs[1]}, cRegs,
            ArrayRef<int64_t>{16, 8, 16}, std::nullopt, std::nullopt,
            std::array<NVVM::MMATypes, 2>{ptxType, ptxType},
            std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row, NVVM::MMALayout::col});
        for (int64_t e = 0; e < 4; ++e)
          out[cBase + e] = LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{e});
      }
    }
  tiles[op.getResult()] = std::move(out);
  return success();
}

LogicalResult Distributor::lowerWarpgroupDot(tile::DotOp op) {
  MLIRContext *ctx = b.getContext();
  auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
  auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
  int64_t m = lhsType.getDimSize(0), k = lhsType.getDimSize(1), n = rhsType.getDimSize(1);
  Type elem = lhsType.getElementType();
  if (!shared.count(op.getRhs()) && failed(stageSwizzled(op.getRhs())))
    return failure();
  auto rhs = shared.find(op.getRhs());
  if (rhs->second.swizzled < 0)
    return op.emitError("wgmma needs the right operand in swizzled shared memory");
  // A zero accumulator is not read: the first product overwrites it.
  bool zeroInit = matchPattern(op.getAcc(), m_AnyZeroFloat());
  int64_t mTiles = layoutOf(op.getResult()).mTiles;
  FailureOr<Slots> acc = slotsOf(op.getAcc(), {LayoutKind::Acc, m, n, mTiles});
  if (failed(acc))
    return failure();
  auto startOf = [&](const SwizzledTile &t, Value stage) {
    Value bytes = arith::MulIOp::create(b, stageOffset(t, stage),
                                        arith::ConstantIndexOp::create(b, 2));
    return arith::AddIOp::create(b, t.address,
                                 arith::IndexCastUIOp::create(b, b.getI64Type(), bytes));
  };
  auto i64 = [&](int64_t v) { return arith::ConstantIntOp::create(b, b.getI64Type(), v); };
  // K stored [n][k] is K-major; V stored [k][n] is MN-major: its 64-column blocks are
  // `rows * 128` bytes apart (the leading byte offset), its 8-row groups 1024.
  const SwizzledTile &tb = swizzledTiles[rhs->second.swizzled];
  bool bKMajor = rhs->second.transposed;
  Value descB0 = matrixDescriptor(b, startOf(tb, rhs->second.stage),
                                  bKMajor ? 16 : tb.rows * 128, kSwizzleAtomBytes);
  auto descB = [&](int64_t kk) {
    int64_t step = bKMajor ? kMajorStepOffset(tb.rows, 16 * kk) : 16 * kk * 128;
    return arith::AddIOp::create(b, descB0, i64(step >> 4));
  };
  Slots out;
  Value ssResult; // the struct a shared-memory-sourced chain ends with
  auto lhsShared = shared.find(op.getLhs());
  if (lhsShared == shared.end() || lhsShared->second.swizzled < 0 ||
      lhsShared->second.transposed) {
    // Left operand in registers (P, or a transposed tile read from its buffer): each
    // warp's fragment is the mma.sync A layout. All operands are ready before the first
    // wgmma, so the chain runs uninterrupted.
    FailureOr<Slots> a = slotsOf(op.getLhs(), {LayoutKind::A, m, k, mTiles});
    if (failed(a))
      return failure();
    SmallVector<SmallVector<Value>> aRegs(k / 16);
    SmallVector<Value> descs;
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      for (int64_t r = 0; r < 4; ++r)
        aRegs[kk].push_back(packWord(b, (*a)[8 * kk + 2 * r], (*a)[8 * kk + 2 * r + 1]));
      descs.push_back(descB(kk));
    }
    out = *acc;
    NVVM::WgmmaFenceAlignedOp::create(b);
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      Value d = registerSourcedWgmma(b, out, aRegs[kk], descs[kk], elem.isF16(), !bKMajor);
      for (int64_t i = 0; i < n / 2; ++i)
        out[i] = LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i});
    }
  } else {
    // Left operand in shared memory (Q); warpgroup w multiplies its rows [64 w, 64 w + 64).
    const SwizzledTile &ta = swizzledTiles[lhsShared->second.swizzled];
    Value rowBlock = arith::IndexCastUIOp::create(
        b, b.getI64Type(),
        arith::MulIOp::create(b, warpgroup, arith::ConstantIndexOp::create(b, 64 * 128)));
    Value descA0 = matrixDescriptor(
        b, arith::AddIOp::create(b, startOf(ta, lhsShared->second.stage), rowBlock), 16,
        kSwizzleAtomBytes);
    auto wgmmaType = elem.isF16() ? NVVM::WGMMATypes::f16 : NVVM::WGMMATypes::bf16;
    auto structType = LLVM::LLVMStructType::getLiteral(ctx, SmallVector<Type>(n / 2, b.getF32Type()));
    NVVM::WgmmaFenceAlignedOp::create(b);
    Value d = LLVM::UndefOp::create(b, structType);
    if (!zeroInit)
      for (auto [i, v] : llvm::enumerate(*acc))
        d = LLVM::InsertValueOp::create(b, d, v, ArrayRef<int64_t>{int64_t(i)});
    for (int64_t kk = 0; kk < k / 16; ++kk) {
      Value descA = arith::AddIOp::create(b, descA0, i64(kMajorStepOffset(ta.rows, 16 * kk) >> 4));
      auto scaleD = zeroInit && kk == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one;
      d = NVVM::WgmmaMmaAsyncOp::create(
          b, structType, d, descA, descB(kk), NVVM::MMAShapeAttr::get(ctx, 64, n, 16),
          NVVM::WGMMATypesAttr::get(ctx, wgmmaType), NVVM::WGMMATypesAttr::get(ctx, wgmmaType),
          NVVM::WGMMATypesAttr::get(ctx, NVVM::WGMMATypes::f32),
          NVVM::WGMMAScaleOutAttr::get(ctx, scaleD),
          NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
          NVVM::WGMMAScaleInAttr::get(ctx, NVVM::WGMMAScaleIn::one),
          NVVM::MMALayoutAttr::get(ctx, NVVM::MMALayout::row),
          NVVM::MMALayoutAttr::get(ctx, bKMajor ? NVVM::MMALayout::col : NVVM::MMALayout::row),
          nullptr);
    }
    ssResult = d;
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b);
  for (int64_t i = 0; ssResult && i < n / 2; ++i)
    out.push_back(LLVM::ExtractValueOp::create(b, ssResult, ArrayRef<int64_t>{i}));
  tiles[op.getResult()] = std::move(out);
  productsInFlight[op.getResult()] = ++productGroups;
  return success();
}

static Value combine(ImplicitLocOpBuilder &b, tile::Combiner kind, Value x, Value y) {
  bool isFloat = isa<FloatType>(x.getType());
  switch (kind) {
  case tile::Combiner::sum:
    return isFloat ? Value(arith::AddFOp::create(b, x, y)) : Value(arith::AddIOp::create(b, x, y));
  case tile::Combiner::max:
    return isFloat ? Value(arith::MaxNumFOp::create(b, x, y))
                   : Value(arith::MaxSIOp::create(b, x, y));
  case tile::Combiner::min:
    return isFloat ? Value(arith::MinimumFOp::create(b, x, y))
                   : Value(arith::MinSIOp::create(b, x, y));
  }
  return {};
}

Value Distributor::combineLanes(tile::Combiner kind, Value v, ArrayRef<int64_t> offsets) {
  Value width = arith::ConstantIntOp::create(b, b.getI32Type(), 32);
  for (int64_t offset : offsets) {
    Value off = arith::ConstantIntOp::create(b, b.getI32Type(), offset);
    v = combine(b, kind, v,
                ::mlir::gpu::ShuffleOp::create(b, v, off, width, ::mlir::gpu::ShuffleMode::XOR)
                    .getShuffleResult());
  }
  return v;
}

Slots Distributor::combineWarps(tile::Combiner kind, ArrayRef<Value> values,
                                function_ref<Value(int64_t)> column, int64_t columns) {
  Value mem = scratchBuffer({numWarps, columns}, values.front().getType());
  barrierPending = true; // earlier readers of the scratch are done
  flushBarrier();
  for (auto [i, v] : llvm::enumerate(values))
    memref::StoreOp::create(b, v, mem, ValueRange{warp, column(i)});
  ::mlir::gpu::BarrierOp::create(b);
  Slots out;
  for (size_t i = 0; i < values.size(); ++i) {
    Value acc;
    for (int64_t w = 0; w < numWarps; ++w) {
      Value x = memref::LoadOp::create(b, mem,
                                       ValueRange{arith::ConstantIndexOp::create(b, w), column(i)});
      acc = acc ? combine(b, kind, acc, x) : x;
    }
    out.push_back(acc);
  }
  barrierPending = true; // before the scratch is written again
  return out;
}

LogicalResult Distributor::lowerReduce(tile::ReduceOp op) {
  const Layout &in = layoutOf(op.getInput());
  bool rowSpanToRows = in.kind == LayoutKind::RowSpan && op.getAxis() == 1;
  if (in.kind != LayoutKind::Acc && in.kind != LayoutKind::Row && in.kind != LayoutKind::Col &&
      !rowSpanToRows)
    return op.emitError("the GPU target reduces accumulator, row and column tiles (and "
                        "narrow tiles along their rows) only");
  FailureOr<Slots> values = slotsOf(op.getInput(), in);
  if (failed(values))
    return failure();
  tile::Combiner kind = op.getCombiner();
  auto fold = [&](Value acc, Value v) { return acc ? combine(b, kind, acc, v) : v; };
  if (rowSpanToRows) {
    // Each thread holds its rows whole: no lane holds another part of them.
    Slots out;
    for (int64_t row = 0; row < 2 * in.mTiles; ++row) {
      Value acc;
      for (int64_t c = 0; c < in.cols; ++c)
        acc = fold(acc, (*values)[row * in.cols + c]);
      out.push_back(acc);
    }
    tiles[op.getResult()] = std::move(out);
    return success();
  }
  if (in.kind != LayoutKind::Acc) {
    // To one value: a column tile's quads hold different columns (every warp all of
    // them); a row tile's 8 quads hold different rows and so do its warps.
    Value acc;
    for (Value v : *values)
      acc = fold(acc, v);
    if (in.kind == LayoutKind::Col) {
      acc = combineLanes(kind, acc, {1, 2});
    } else {
      acc = combineLanes(kind, acc, {4, 8, 16});
      acc = combineWarps(
          kind, {acc}, [&](int64_t) { return arith::ConstantIndexOp::create(b, 0); }, 1)[0];
    }
    scalars.map(op.getResult(), acc);
    return success();
  }
  int64_t perTile = in.cols / 2;
  if (op.getAxis() == 0) {
    // Over rows: each thread's rows (both halves of every m-tile) per column slot, then
    // the 8 quads of a warp, then the warps.
    Layout out{LayoutKind::Col, in.cols, 0, 1};
    Slots acc(numSlots(out));
    for (int64_t s = 0; s < numSlots(in); ++s) {
      int64_t r = s % perTile, c = 2 * (r / 4) + (r % 2);
      acc[c] = fold(acc[c], (*values)[s]);
    }
    for (Value &v : acc)
      v = combineLanes(kind, v, {4, 8, 16});
    tiles[op.getResult()] = combineWarps(
        kind, acc, [&](int64_t c) { return position(out, c).first; }, in.cols);
    return success();
  }
  Slots out;
  for (int64_t row = 0; row < 2 * in.mTiles; ++row) {
    // Slots of m-tile row / 2 whose row half (g or g + 8) is row % 2; the 4 lanes of a
    // quad hold the same row.
    Value acc;
    for (int64_t s = (row / 2) * perTile; s < (row / 2 + 1) * perTile; ++s)
      if (((s % 4) >> 1) == row % 2)
        acc = fold(acc, (*values)[s]);
    out.push_back(combineLanes(kind, acc, {1, 2}));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

LogicalResult Distributor::lowerBroadcast(tile::BroadcastOp op) {
  const Layout &outL = layoutOf(op.getResult());
  bool rowSpan = outL.kind == LayoutKind::RowSpan;
  if (!rowSpan && outL.kind != LayoutKind::Acc)
    return op.emitError("the GPU target broadcasts into accumulator and row-span tiles only");
  // Along rows from the rows' values; along columns from the columns' (an accumulator's
  // lanes split them, a row span's threads hold them all).
  bool alongRows = op.getAxis() == 1;
  Layout inL = alongRows ? Layout{LayoutKind::Row, outL.rows, 0, outL.mTiles}
                         : Layout{rowSpan ? LayoutKind::Whole : LayoutKind::Col, outL.cols, 0};
  FailureOr<Slots> in = slotsOf(op.getInput(), inL);
  if (failed(in))
    return failure();
  Slots out;
  for (int64_t s = 0; s < numSlots(outL); ++s) {
    if (rowSpan) {
      out.push_back(alongRows ? (*in)[s / outL.cols] : (*in)[s % outL.cols]);
      continue;
    }
    int64_t perTile = outL.cols / 2, mt = s / perTile, r = s % perTile;
    out.push_back(alongRows ? (*in)[2 * mt + ((r % 4) >> 1)] : (*in)[2 * (r / 4) + (r % 2)]);
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

LogicalResult Distributor::lowerRange(tile::RangeOp op) {
  const Layout &l = layoutOf(op.getResult());
  Value start = scalars.lookup(op.getStart());
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SlotCoord c = slotCoord(l, s);
    Value i = arith::AddIOp::create(b, start, coord(l, c.rowBase, c.row));
    out.push_back(arith::IndexCastOp::create(b, b.getI32Type(), i));
  }
  tiles[op.getResult()] = std::move(out);
  return success();
}

/// The row vector `op` multiplies an accumulator by along its rows (an online softmax's
/// rescale), with the accumulator in `scaled`; null otherwise.
static Value rowFactor(arith::MulFOp op, Value &scaled) {
  for (int i = 0; i < 2; ++i) {
    auto broadcast = op->getOperand(i).getDefiningOp<tile::BroadcastOp>();
    if (broadcast && broadcast.getAxis() == 1) {
      scaled = op->getOperand(1 - i);
      return broadcast.getInput();
    }
  }
  return {};
}

/// A warp whose rows are all scaled by exactly 1 skips the multiplies: one vote and a
/// branch instead of a product per element. An online softmax's factor is 1 for every
/// key tile that moves no row's maximum (most of them, see SoftmaxTileProgram's kMaxLag).
LogicalResult Distributor::lowerRowScale(arith::MulFOp op, Value scaled, Value factor) {
  const Layout &l = layoutOf(op.getResult());
  Value broadcast = op.getLhs() == scaled ? op.getRhs() : op.getLhs();
  FailureOr<Slots> rows = slotsOf(factor, {LayoutKind::Row, l.rows, 0, l.mTiles});
  FailureOr<Slots> in = slotsOf(scaled, l);
  FailureOr<Slots> factors = slotsOf(broadcast, l);
  if (failed(rows) || failed(in) || failed(factors))
    return failure();
  Type elem = getElementTypeOrSelf(op.getType());
  Value one = arith::ConstantOp::create(b, b.getFloatAttr(elem, 1.0));
  Value allOne = arith::ConstantIntOp::create(b, b.getI1Type(), 1);
  for (Value r : *rows)
    allOne = arith::AndIOp::create(
        b, allOne, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, r, one));
  Value warpAllOne = NVVM::VoteSyncOp::create(
      b, b.getI1Type(), arith::ConstantIntOp::create(b, b.getI32Type(), -1), allOne,
      NVVM::VoteSyncKind::all);
  auto ifOp = scf::IfOp::create(b, SmallVector<Type>(in->size(), elem), warpAllOne,
                                /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    scf::YieldOp::create(b, *in);
    b.setInsertionPointToStart(ifOp.elseBlock());
    Slots out;
    for (auto [x, f] : llvm::zip(*in, *factors))
      out.push_back(arith::MulFOp::create(b, x, f, op.getFastmathAttr()));
    scf::YieldOp::create(b, out);
  }
  tiles[op.getResult()] = Slots(ifOp.getResults().begin(), ifOp.getResults().end());
  return success();
}

LogicalResult Distributor::lowerElementwise(Operation *op) {
  Value result = op->getResult(0);
  const Layout &l = layoutOf(result);
  // Worth a branch only where a thread holds many elements per row factor.
  constexpr int64_t kMinSlotsPerFactor = 8;
  if (auto mul = dyn_cast<arith::MulFOp>(op);
      mul && l.kind == LayoutKind::Acc && l.cols / 2 >= kMinSlotsPerFactor) {
    Value scaled;
    if (Value factor = rowFactor(mul, scaled))
      return lowerRowScale(mul, scaled, factor);
  }
  SmallVector<Slots> operands;
  for (Value v : op->getOperands()) {
    if (!isa<RankedTensorType>(v.getType())) {
      operands.push_back(Slots(numSlots(l), scalars.lookup(v)));
      continue;
    }
    FailureOr<Slots> s = slotsOf(v, l);
    if (failed(s))
      return failure();
    operands.push_back(std::move(*s));
  }
  Type scalarType = cast<RankedTensorType>(result.getType()).getElementType();
  Slots out;
  for (int64_t s = 0; s < numSlots(l); ++s) {
    SmallVector<Value> args;
    for (Slots &o : operands)
      args.push_back(o[s]);
    // One MUFU.EX2 / MUFU.LG2. Upstream's ex2.approx.f32 brackets each call with a
    // rescale for subnormal results (three more instructions); flushing them to zero
    // changes no softmax weight or decay factor by more than 2^-126. log2 (of softmax
    // sums, >= 1 for any row that saw a key) would otherwise be a ~30-instruction
    // polynomial; lg2.approx is within 2^-22 of it.
    StringRef intrinsic = !scalarType.isF32()          ? ""
                          : isa<math::Exp2Op>(op) ? "llvm.nvvm.ex2.approx.ftz.f32"
                          : isa<math::Log2Op>(op) ? "llvm.nvvm.lg2.approx.ftz.f"
                                                  : "";
    if (!intrinsic.empty()) {
      out.push_back(
          LLVM::CallIntrinsicOp::create(b, scalarType, b.getStringAttr(intrinsic), args)
              .getResult(0));
      continue;
    }
    OperationState state(op->getLoc(), op->getName(), args, {scalarType}, op->getAttrs());
    out.push_back(b.create(state)->getResult(0));
  }
  tiles[result] = std::move(out);
  return success();
}

LogicalResult Distributor::flatten(ValueRange values, ValueRange like,
                                   SmallVectorImpl<Value> &out) {
  for (auto [v, l] : llvm::zip(values, like)) {
    if (!isa<RankedTensorType>(v.getType())) {
      out.push_back(scalars.lookup(v));
      continue;
    }
    FailureOr<Slots> s = slotsOf(v, layoutOf(l));
    if (failed(s))
      return failure();
    out.append(s->begin(), s->end());
  }
  return success();
}

void Distributor::unflatten(ValueRange values, ValueRange flat) {
  size_t pos = 0;
  for (Value v : values) {
    if (!isa<RankedTensorType>(v.getType())) {
      scalars.map(v, flat[pos++]);
      continue;
    }
    int64_t n = numSlots(layoutOf(v));
    tiles[v] = Slots(flat.begin() + pos, flat.begin() + pos + n);
    pos += n;
  }
}

/// A scalar load from a buffer the kernel never writes (a block list, a table): as safe
/// to compute one iteration early as a pure op, given in-bounds indices, which the tile
/// program guarantees for every value of the induction variable.
static bool isReadOfInput(Operation *op) {
  auto load = dyn_cast<memref::LoadOp>(op);
  if (!load)
    return false;
  return llvm::none_of(load.getMemRef().getUsers(), [](Operation *user) {
    return isa<memref::StoreOp, tile::StoreOp>(user);
  });
}

SmallVector<Distributor::Prefetch> Distributor::findPrefetches(scf::ForOp op) {
  SmallVector<Prefetch> out;
  if (numStages < 2)
    return out;
  for (Operation &o : op.getBody()->without_terminator()) {
    auto load = dyn_cast<tile::LoadOp>(o);
    if (!load)
      continue;
    if (!isStaged(load) || !vectorsPerThread(load) || (wgmma && !swizzles(load)))
      continue;
    // The indices must follow from the induction variable through pure ops of the body.
    SetVector<Operation *> slice;
    SmallVector<Value> work(load.getIndices().begin(), load.getIndices().end());
    bool ok = true;
    while (!work.empty() && ok) {
      Value v = work.pop_back_val();
      Operation *def = v.getDefiningOp();
      if (!def && v != op.getInductionVar() && cast<BlockArgument>(v).getOwner() == op.getBody()) {
        ok = false; // a loop-carried value: next iteration's is not known yet
        break;
      }
      if (!def || def->getBlock() != op.getBody())
        continue; // the induction variable or a value from outside the loop
      if (!(isPure(def) || isReadOfInput(def)) || def->getNumRegions() ||
          isa<RankedTensorType>(v.getType())) {
        ok = false;
        break;
      }
      if (slice.insert(def))
        work.append(def->operand_begin(), def->operand_end());
    }
    if (!ok)
      continue;
    if (firstProductOnly() && !feedsFirstProduct(load, op))
      continue;
    Prefetch p{load, {}};
    for (Operation &x : op.getBody()->without_terminator())
      if (slice.contains(&x))
        p.indexSlice.push_back(&x);
    out.push_back(std::move(p));
  }
  return out;
}

/// Whether `v` is an operand of `dot`, directly or transposed.
static bool feedsProduct(Value v, tile::DotOp dot) {
  return llvm::any_of(v.getUsers(), [&](Operation *user) {
    return user == dot.getOperation() ||
           (isa<tile::TransOp>(user) && feedsProduct(user->getResult(0), dot));
  });
}

bool Distributor::feedsFirstProduct(tile::LoadOp load, scf::ForOp loop) {
  tile::DotOp first;
  loop.getBody()->walk<WalkOrder::PreOrder>([&](tile::DotOp dot) {
    first = dot;
    return WalkResult::interrupt();
  });
  return first && feedsProduct(load.getResult(), first);
}

void Distributor::planStages(Block &gridBody) {
  if (!wgmma || numStages < 2)
    return;
  using Key = std::pair<Value, Type>;
  llvm::MapVector<Key, int64_t> stageBytes;
  DenseSet<Key> prefetched, firstOperands, notLeft;
  gridBody.walk([&](tile::LoadOp load) {
    if (!isStaged(load) || !swizzles(load))
      return;
    auto type = cast<RankedTensorType>(load.getType());
    Key key{load.getSource(), type};
    // As allocateSwizzled lays it out: whole 64-column swizzle blocks.
    stageBytes[key] = llvm::alignTo(
        type.getDimSize(0) * llvm::alignTo(type.getDimSize(1), kSwizzleCols) * 2,
        kSwizzleAtomBytes);
    if (layoutOf(load.getResult()).kind != LayoutKind::A)
      notLeft.insert(key);
  });
  gridBody.walk([&](scf::ForOp loop) {
    for (Prefetch &p : findPrefetches(loop)) {
      Key key{p.load.getSource(), p.load.getType()};
      prefetched.insert(key);
      if (feedsFirstProduct(p.load, loop))
        firstOperands.insert(key);
    }
  });
  auto bytes = [&](function_ref<bool(Key)> twoStages) {
    int64_t total = 0;
    for (auto &[key, b] : stageBytes)
      total += b * (twoStages(key) ? prefetchStages() : 1);
    return total;
  };
  auto everyTile = [&](Key k) { return prefetched.contains(k) || notLeft.contains(k); };
  auto firstOnly = [&](Key k) { return firstOperands.contains(k); };
  // Computed right operands (a state, a feature-mapped key) take swizzled buffers of
  // their own.
  DenseSet<Value> computed;
  int64_t computedBytes = 0;
  gridBody.walk([&](tile::DotOp dot) {
    Value r = dot.getRhs();
    if (auto t = r.getDefiningOp<tile::TransOp>())
      r = t.getInput();
    if (!r.getDefiningOp<tile::LoadOp>() && computed.insert(r).second)
      computedBytes += llvm::alignTo(cast<RankedTensorType>(r.getType()).getNumElements() * 2,
                                     kSwizzleAtomBytes);
  });
  // num_stages beyond two is a ceiling: as many stages as leave a quarter of a block's
  // shared memory to its other buffers.
  while (numStages > 2 && bytes(everyTile) + computedBytes > kSharedLimit * 3 / 4)
    --numStages;
  // Warpgroup kernels take >= 128 registers a thread: at most 16 / num_warps blocks;
  // those computing a right operand carry a tile state across their loop (~200).
  int64_t registerBound = (computed.empty() ? 16 : 8) / numWarps;
  auto blocksPerSM = [&](int64_t smem) {
    return std::min(kSharedPerSM / (smem + computedBytes + 1024), registerBound);
  };
  // (num_stages > 2 asks for every tile num_stages - 1 iterations ahead.) Head dims
  // other than 64 and 128 (a partial swizzle block to address, or wide accumulators) need
  // more registers than the planned blocks leave a thread: every tile double-buffered.
  bool partialBlocks = llvm::any_of(stageBytes, [](auto &entry) {
    int64_t cols = cast<RankedTensorType>(entry.first.second).getDimSize(1);
    return cols % kSwizzleCols != 0 || cols > 128;
  });
  if (!firstOperands.empty() && numStages <= 2 && !partialBlocks &&
      blocksPerSM(bytes(firstOnly)) > blocksPerSM(bytes(everyTile)))
    plannedBlocksPerSM = blocksPerSM(bytes(firstOnly));
  for (auto &[key, b] : stageBytes)
    if (firstProductOnly() ? firstOnly(key) : everyTile(key))
      doubleBuffered.insert(key);
}

SmallVector<Value> Distributor::prefetchAt(const Prefetch &p, Value iv, Value loopIv) {
  return loadRows(p.load, prefetchOrigin(p, iv, loopIv));
}

SmallVector<Value> Distributor::prefetchOrigin(const Prefetch &p, Value iv, Value loopIv) {
  // Recompute the load's indices for induction value `iv` without touching the mapping
  // the rest of the body uses.
  IRMapping local;
  local.map(loopIv, iv);
  for (Operation *o : p.indexSlice) {
    for (Value operand : o->getOperands())
      if (!local.contains(operand))
        local.map(operand, scalars.lookup(operand));
    b.clone(*o, local);
  }
  SmallVector<Value> origin;
  tile::LoadOp load = p.load;
  for (Value i : load.getIndices())
    origin.push_back(local.contains(i) ? local.lookup(i) : scalars.lookup(i));
  return origin;
}

/// Whether `a` (in loop `la`) and `b` (in loop `lb`) compute the same function of their
/// loops' induction variables.
static bool sameFunctionOfIv(Value a, scf::ForOp la, Value b, scf::ForOp lb) {
  if (a == la.getInductionVar() || b == lb.getInductionVar())
    return a == la.getInductionVar() && b == lb.getInductionVar();
  Operation *da = a.getDefiningOp(), *db = b.getDefiningOp();
  bool insideA = da && da->getBlock() == la.getBody();
  bool insideB = db && db->getBlock() == lb.getBody();
  if (!insideA || !insideB)
    return !insideA && !insideB && a == b;
  return cast<OpResult>(a).getResultNumber() == cast<OpResult>(b).getResultNumber() &&
         OperationEquivalence::isEquivalentTo(
             da, db, [&](Value x, Value y) {
               return success(sameFunctionOfIv(x, la, y, lb));
             },
             nullptr, OperationEquivalence::IgnoreLocations);
}

bool Distributor::continuesLastLoop(scf::ForOp op, ArrayRef<Prefetch> prefetches) {
  if (!lastPrefetchingLoop || op->getPrevNode() != lastPrefetchingLoop->op.getOperation())
    return false;
  scf::ForOp last = lastPrefetchingLoop->op;
  if (op.getLowerBound() != last.getUpperBound() || op.getStep() != last.getStep() ||
      prefetches.size() != lastPrefetchingLoop->prefetches.size())
    return false;
  for (auto [p, q] : llvm::zip(prefetches, lastPrefetchingLoop->prefetches)) {
    tile::LoadOp x = p.load, y = q.load;
    if (x.getSource() != y.getSource() || x.getType() != y.getType())
      return false;
    for (auto [i, j] : llvm::zip(x.getIndices(), y.getIndices()))
      if (!sameFunctionOfIv(i, op, j, last))
        return false;
  }
  return true;
}

/// Whether `op`'s copies may run num_stages - 1 iterations ahead: a loop of its own (it
/// neither continues the last prefetching loop nor is continued: the next loop does not
/// look back at it) whose staged tiles are all prefetched, so that no copy group but the
/// prefetches' is committed in its body and every iteration waits for a fixed count.
bool Distributor::deepPrefetch(scf::ForOp op, ArrayRef<Prefetch> prefetches) {
  if (!wgmma || firstProductOnly() || numStages <= 2 || prefetches.empty() ||
      continuesLastLoop(op, prefetches))
    return false;
  auto prefetched = [&](tile::LoadOp load) {
    return llvm::any_of(prefetches, [&](const Prefetch &p) { return p.load == load; });
  };
  return !op.getBody()
              ->walk([&](tile::LoadOp load) {
                return isStaged(load) && !prefetched(load) ? WalkResult::interrupt()
                                                           : WalkResult::advance();
              })
              .wasInterrupted();
}

LogicalResult Distributor::lowerFor(scf::ForOp op) {
  SmallVector<Value> init;
  if (failed(flatten(op.getInitArgs(), op.getResults(), init)))
    return failure();
  settleProducts();
  size_t numCarried = init.size();
  SmallVector<Prefetch> prefetches = findPrefetches(op);
  // Iterations a prefetch runs ahead: one, each iteration's copies landing in the stage
  // the last one read, or num_stages - 1 for a loop of its own (the copy engine keeps
  // num_stages - 1 tiles in flight where a short body alone would not hide a copy).
  int64_t ahead = deepPrefetch(op, prefetches) ? numStages - 1 : 1;
  // Copies in flight before a wgmma loop (Q) stay in flight into it: only products read
  // swizzled tiles, and the first to need them waits (older groups are waited for with
  // any newer one). Every iteration starts as if after a barrier-free body end.
  SmallVector<int> copiesBeforeLoop;
  if (!wgmma) {
    flushBarrier();
  } else if (prefetches.empty()) {
    if (barrierPending)
      ::mlir::gpu::BarrierOp::create(b);
    barrierPending = false;
    copiesBeforeLoop = pendingCopies;
  }
  Value lb = scalars.lookup(op.getLowerBound()), step = scalars.lookup(op.getStep());
  SmallVector<size_t> regCounts;
  Value first = arith::ConstantIndexOp::create(b, 0);
  SmallVector<int> buffers; // the prefetched tiles' swizzled buffers (wgmma)
  for (Prefetch &p : prefetches)
    if (wgmma)
      buffers.push_back(swizzledBuffer(p.load));
  // A next-stage copy group of this loop's prefetched buffers.
  auto isNextStage = [&](int group) {
    return group <= -2 && llvm::is_contained(buffers, nextStageGroup(group));
  };
  if (wgmma && !prefetches.empty()) {
    if (continuesLastLoop(op, prefetches)) {
      init.push_back(lastPrefetchingLoop->nextStage);
    } else {
      init.push_back(first); // the stage the first iteration reads
      // The first iteration's tiles go to stage 0 once earlier readers and copies are
      // done; copies issued just before (Q) need no wait: the loop's first wait covers them.
      if (!barrierPending) {
        if (copiesPending())
          waitForCopies();
        ::mlir::gpu::BarrierOp::create(b);
      }
      for (int64_t j = 0; j < ahead; ++j) {
        Value iv = lb, stage = first;
        if (j) {
          stage = arith::ConstantIndexOp::create(b, j);
          iv = arith::AddIOp::create(b, lb, arith::MulIOp::create(b, stage, step));
        }
        for (auto [p, index] : llvm::zip(prefetches, buffers))
          issueCopies(p.load, swizzledTiles[index], stage,
                      prefetchOrigin(p, iv, op.getInductionVar()),
                      firstProductOnly() ? index : -1);
      }
    }
  }
  // Copies pending before a loop that may run no iteration still need their barrier.
  bool pendingBefore = barrierPending;
  for (const Prefetch &p : prefetches) {
    if (wgmma)
      break;
    SmallVector<Value> regs = prefetchAt(p, lb, op.getInductionVar());
    regCounts.push_back(regs.size());
    init.append(regs);
  }
  auto loop = scf::ForOp::create(b, lb, scalars.lookup(op.getUpperBound()), step, init);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  scalars.map(op.getInductionVar(), loop.getInductionVar());
  unflatten(op.getRegionIterArgs(), loop.getRegionIterArgs().take_front(numCarried));
  SmallVector<Value> nextRegs;
  SmallVector<int> copiesAtEntry = pendingCopies;
  if (wgmma && firstProductOnly() && !prefetches.empty()) {
    // Everyone is done with the other stage and the single buffers: copy this
    // iteration's single-buffered tiles (V), then the next iteration's prefetched ones
    // (K) into the other stage; products wait for their own copies only, so this
    // iteration's K (copied an iteration ago) and V may still be landing here.
    Value stage = loop.getRegionIterArgs()[numCarried];
    ::mlir::gpu::BarrierOp::create(b);
    barrierPending = true; // the single-buffered copies share this barrier
    Value other = arith::SubIOp::create(b, arith::ConstantIndexOp::create(b, 1), stage);
    Value next = arith::AddIOp::create(b, loop.getInductionVar(), step);
    for (auto [p, index] : llvm::zip(prefetches, buffers)) {
      shared[p.load.getResult()] = {Value(), false, index, stage};
      preStaged.insert(p.load);
    }
    // The copies the previous iteration (or loop) made for this one are this one's now.
    for (int &group : pendingCopies)
      if (isNextStage(group))
        group = nextStageGroup(group);
    Value iv = op.getInductionVar();
    auto issueNext = [this, prefetches, buffers, other, next, iv] {
      for (auto [p, index] : llvm::zip(prefetches, buffers))
        issueCopies(p.load, swizzledTiles[index], other, prefetchOrigin(p, next, iv),
                    nextStageGroup(index));
    };
    // After the body's own staged loads that come before its first product or branch.
    Operation *lastSingle = nullptr;
    for (Operation &x : op.getBody()->without_terminator()) {
      if (isa<tile::DotOp>(x) || x.getNumRegions())
        break;
      if (auto load = dyn_cast<tile::LoadOp>(x); load && isStaged(load) && !preStaged.contains(&x))
        lastSingle = &x;
    }
    if (lastSingle)
      afterOp = {lastSingle, issueNext};
    else
      issueNext();
    nextRegs.push_back(other);
  } else if (wgmma && !prefetches.empty()) {
    // This iteration's tiles have landed (and everyone is done with the stage the last
    // one read): start copying those `ahead` iterations on into it while this one
    // computes; the copies for the iterations in between stay in flight.
    Value stage = loop.getRegionIterArgs()[numCarried];
    waitForCopies(int((ahead - 1) * prefetches.size()));
    ::mlir::gpu::BarrierOp::create(b);
    barrierPending = false;
    Value one = arith::ConstantIndexOp::create(b, 1), last = arith::ConstantIndexOp::create(b, ahead);
    Value previous = arith::SubIOp::create(b, one, stage), following = previous;
    if (ahead > 1) {
      Value zero = arith::ConstantIndexOp::create(b, 0);
      Value atZero = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, stage, zero);
      Value atLast = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, stage, last);
      previous = arith::SelectOp::create(b, atZero, last, arith::SubIOp::create(b, stage, one));
      following = arith::SelectOp::create(b, atLast, zero, arith::AddIOp::create(b, stage, one));
    }
    Value target = arith::AddIOp::create(b, loop.getInductionVar(),
                                         arith::MulIOp::create(b, last, step));
    for (auto [p, index] : llvm::zip(prefetches, buffers)) {
      issueCopies(p.load, swizzledTiles[index], previous,
                  prefetchOrigin(p, target, op.getInductionVar()));
      shared[p.load.getResult()] = {Value(), false, index, stage};
      preStaged.insert(p.load);
    }
    nextRegs.push_back(following);
  } else if (!prefetches.empty()) {
    // Store the tiles loaded one iteration ahead, then start loading the next ones:
    // their latency hides behind this iteration's arithmetic.
    flushBarrier();
    ::mlir::gpu::BarrierOp::create(b);
    size_t pos = numCarried;
    for (auto [p, count] : llvm::zip(prefetches, regCounts)) {
      Value mem = stagingBuffer(p.load);
      SmallVector<Value> regs(loop.getRegionIterArgs().slice(pos, count));
      storeRows(p.load, mem, regs);
      pos += count;
      shared[p.load.getResult()] = {mem, /*transposed=*/false};
      preStaged.insert(p.load);
    }
    barrierPending = true;
    Value next = arith::AddIOp::create(b, loop.getInductionVar(), step);
    for (const Prefetch &p : prefetches)
      nextRegs.append(prefetchAt(p, next, op.getInductionVar()));
  }
  if (failed(lowerBlock(*op.getBody())))
    return failure();
  SmallVector<Value> yielded;
  if (failed(flatten(op.getBody()->getTerminator()->getOperands(), op.getResults(), yielded)))
    return failure();
  yielded.append(nextRegs);
  if (loop.getBody()->mightHaveTerminator())
    loop.getBody()->getTerminator()->erase();
  b.setInsertionPointToEnd(loop.getBody());
  scf::YieldOp::create(b, yielded);
  b.setInsertionPointAfter(loop);
  unflatten(op.getResults(), loop.getResults().take_front(numCarried));
  barrierPending |= pendingBefore;
  // A loop that runs no iteration leaves the earlier copies in flight (kept as the
  // oldest groups; waiting for one already landed costs nothing).
  if (!copiesBeforeLoop.empty()) {
    copiesBeforeLoop.append(pendingCopies);
    pendingCopies = std::move(copiesBeforeLoop);
  }
  if (wgmma && firstProductOnly() && !prefetches.empty()) {
    // In flight now: the copies for iteration `ub` (or, with no iteration, for `lb`),
    // the newest groups; everything else the loop's products waited for.
    pendingCopies.clear();
    for (int group : copiesAtEntry)
      if (!llvm::is_contained(buffers, group) && !isNextStage(group))
        pendingCopies.push_back(group);
    for (int index : buffers)
      pendingCopies.push_back(nextStageGroup(index));
  }
  if (wgmma && !prefetches.empty())
    lastPrefetchingLoop = PrefetchingLoop{op, prefetches, loop.getResults().back()};
  if (ahead > 1)
    lastPrefetchingLoop.reset(); // the next loop cannot take over `ahead` stages in flight
  return success();
}

SmallVector<Type> Distributor::flatTypes(ValueRange values) {
  SmallVector<Type> types;
  for (Value v : values) {
    auto tileType = dyn_cast<RankedTensorType>(v.getType());
    if (!tileType) {
      types.push_back(v.getType());
      continue;
    }
    types.append(numSlots(layoutOf(v)), tileType.getElementType());
  }
  return types;
}

/// A while loop (per-token lists: the next block above the last visited) carries its
/// tiles as slots. Its regions start and end with no copies in flight and no barrier
/// owed, the state an iteration boundary must have whatever ran before.
LogicalResult Distributor::lowerWhile(scf::WhileOp op) {
  SmallVector<Value> init;
  if (failed(flatten(op.getInits(), op.getBeforeArguments(), init)))
    return failure();
  settleProducts();
  if (copiesPending())
    waitForCopies();
  barrierPending = true;
  flushBarrier();
  auto loop = scf::WhileOp::create(b, flatTypes(op.getAfterArguments()), init);
  OpBuilder::InsertionGuard guard(b);
  Block *before = b.createBlock(&loop.getBefore(), {}, flatTypes(op.getBeforeArguments()),
                                SmallVector<Location>(init.size(), op.getLoc()));
  unflatten(op.getBeforeArguments(), before->getArguments());
  if (failed(lowerBlock(op.getBefore().front())))
    return failure();
  scf::ConditionOp cond = op.getConditionOp();
  SmallVector<Value> forwarded;
  if (failed(flatten(cond.getArgs(), op.getAfterArguments(), forwarded)))
    return failure();
  settleCopies();
  scf::ConditionOp::create(b, scalars.lookup(cond.getCondition()), forwarded);
  Block *after = b.createBlock(&loop.getAfter(), {}, flatTypes(op.getAfterArguments()),
                               SmallVector<Location>(forwarded.size(), op.getLoc()));
  unflatten(op.getAfterArguments(), after->getArguments());
  if (failed(lowerBlock(op.getAfter().front())))
    return failure();
  SmallVector<Value> yielded;
  if (failed(flatten(op.getYieldOp().getOperands(), op.getBeforeArguments(), yielded)))
    return failure();
  settleCopies();
  scf::YieldOp::create(b, yielded);
  b.setInsertionPointAfter(loop);
  unflatten(op.getResults(), loop.getResults());
  return success();
}

LogicalResult Distributor::lowerIf(scf::IfOp op) {
  settleProducts();
  auto ifOp = scf::IfOp::create(b, flatTypes(op.getResults()),
                                scalars.lookup(op.getCondition()), !op.getElseRegion().empty());
  // Copies in flight at the branch (K and V loaded before a whole/partial choice) are
  // waited for by each branch's products; each branch ends with none in flight.
  SmallVector<int> copiesBefore = pendingCopies;
  bool barrierBefore = barrierPending;
  for (auto [from, to] : {std::pair{&op.getThenRegion(), &ifOp.getThenRegion()},
                          std::pair{&op.getElseRegion(), &ifOp.getElseRegion()}}) {
    if (from->empty())
      continue;
    OpBuilder::InsertionGuard guard(b);
    Block &block = to->front();
    if (block.mightHaveTerminator())
      block.getTerminator()->erase();
    b.setInsertionPointToEnd(&block);
    pendingCopies = copiesBefore;
    barrierPending = barrierBefore;
    if (failed(lowerBlock(from->front())))
      return failure();
    settleCopies();
    SmallVector<Value> yielded;
    if (failed(flatten(from->front().getTerminator()->getOperands(), op.getResults(),
                       yielded)))
      return failure();
    scf::YieldOp::create(b, yielded);
  }
  unflatten(op.getResults(), ifOp.getResults());
  return success();
}

LogicalResult Distributor::lowerOp(Operation *op) {
  if (auto pid = dyn_cast<tile::ProgramIdOp>(op)) {
    static const ::mlir::gpu::Dimension dims[] = {
        ::mlir::gpu::Dimension::x, ::mlir::gpu::Dimension::y, ::mlir::gpu::Dimension::z};
    scalars.map(pid.getResult(), ::mlir::gpu::BlockIdOp::create(b, dims[pid.getDim()]));
    return success();
  }
  if (auto load = dyn_cast<tile::LoadOp>(op))
    return lowerLoad(load);
  if (auto store = dyn_cast<tile::StoreOp>(op))
    return lowerStore(store);
  if (auto gather = dyn_cast<tile::GatherOp>(op))
    return lowerGather(gather);
  if (auto dot = dyn_cast<tile::DotOp>(op))
    return wgmma ? lowerWarpgroupDot(dot) : lowerDot(dot);
  if (auto red = dyn_cast<tile::ReduceOp>(op))
    return lowerReduce(red);
  if (auto bc = dyn_cast<tile::BroadcastOp>(op))
    return lowerBroadcast(bc);
  if (auto range = dyn_cast<tile::RangeOp>(op))
    return lowerRange(range);
  if (auto trans = dyn_cast<tile::TransOp>(op)) {
    if (auto it = shared.find(trans.getInput()); it != shared.end()) {
      shared[trans.getResult()] = transposedView(it->second);
      return success();
    }
    const Layout &in = layoutOf(trans.getInput()), &out = layoutOf(trans.getResult());
    // BT and B enumerate the same elements in the same slot order: a relabeling.
    if (in.kind == LayoutKind::BT && out.kind == LayoutKind::B) {
      tiles[trans.getResult()] = tiles.lookup(trans.getInput());
      return success();
    }
    // Read whole by a product: staged once, read transposed.
    if (out.kind == LayoutKind::B || out.kind == LayoutKind::BT) {
      FailureOr<SharedTile> t = stageRegisters(trans.getInput());
      if (failed(t))
        return failure();
      shared[trans.getResult()] = transposedView(*t);
      return success();
    }
    if (isStoredTranspose(trans) && tiles.count(trans.getInput()))
      return success(); // lowerStore writes the input transposed
    FailureOr<Slots> moved = convertThroughShared(trans.getInput(), out, /*transpose=*/true);
    if (failed(moved))
      return failure();
    tiles[trans.getResult()] = std::move(*moved);
    return success();
  }
  if (auto forOp = dyn_cast<scf::ForOp>(op))
    return lowerFor(forOp);
  if (auto ifOp = dyn_cast<scf::IfOp>(op))
    return lowerIf(ifOp);
  if (auto whileOp = dyn_cast<scf::WhileOp>(op))
    return lowerWhile(whileOp);
  if (auto extract = dyn_cast<tensor::ExtractOp>(op);
      extract && extract.getTensor().getType().getRank() == 0) {
    scalars.map(extract.getResult(), scalars.lookup(extract.getTensor()));
    return success();
  }
  bool producesTile = llvm::any_of(op->getResultTypes(),
                                   [](Type t) { return isa<RankedTensorType>(t); });
  if (producesTile) {
    if (isSplat(op->getResult(0)))
      return success(); // materialized at each use
    StringRef ns = op->getDialect() ? op->getDialect()->getNamespace() : "";
    if (ns == "arith" || ns == "math")
      return lowerElementwise(op);
    return op->emitError("has no GPU lowering");
  }
  if (llvm::any_of(op->getOperandTypes(), [](Type t) { return isa<RankedTensorType>(t); }))
    return op->emitError("reads a tile in a way the GPU target cannot lower yet");
  // Uniform scalar code (sizes, loop bounds, scalar loads) is cloned as is.
  b.clone(*op, scalars);
  return success();
}

/// Whether lowering `op` may read or write shared memory. Scalar ops, splat constants
/// and transposes of staged tiles (a flag on the tile) do not, so they leave pending
/// copies in flight.
bool Distributor::touchesSharedMemory(Operation *op) {
  if (auto trans = dyn_cast<tile::TransOp>(op))
    return !shared.count(trans.getInput());
  if (isa<arith::ConstantOp>(op))
    return false;
  // Both branches of an if start from the copies in flight (lowerIf).
  if (auto ifOp = dyn_cast<scf::IfOp>(op); ifOp && wgmma && !ifOp.getElseRegion().empty())
    return false;
  auto isTile = [](Type t) { return isa<RankedTensorType>(t); };
  return op->getNumRegions() || llvm::any_of(op->getOperandTypes(), isTile) ||
         llvm::any_of(op->getResultTypes(), isTile);
}

LogicalResult Distributor::lowerBlock(Block &block) {
  for (Operation &op : block.without_terminator()) {
    if (preStaged.contains(&op))
      continue;
    auto load = dyn_cast<tile::LoadOp>(op);
    bool staged = load && shared.count(load.getResult()) == 0 && isStaged(load);
    // Loops decide themselves (a prefetching wgmma loop issues its copies first).
    if (isa<scf::ForOp>(op))
      staged = true;
    if (wgmma && isa<tile::DotOp>(op))
      flushForProduct(cast<tile::DotOp>(op));
    else if (!staged && touchesSharedMemory(&op))
      flushBarrier();
    if (failed(lowerOp(&op)))
      return failure();
    if (afterOp.first == &op) {
      auto run = std::move(afterOp.second);
      afterOp = {};
      run();
    }
  }
  settleProducts();
  flushBarrier();
  return success();
}

/// (argument number, dim) of a `memref.dim` of an entry argument with a constant index.
static std::optional<std::pair<int64_t, int64_t>> argumentDim(Value x, func::FuncOp func) {
  auto dim = x.getDefiningOp<memref::DimOp>();
  if (!dim)
    return std::nullopt;
  auto arg = dyn_cast<BlockArgument>(dim.getSource());
  auto index = dim.getConstantIndex();
  if (!arg || arg.getOwner() != &func.getBody().front() || !index)
    return std::nullopt;
  return std::make_pair(int64_t(arg.getArgNumber()), *index);
}

/// A grid size as the runtime recomputes it: ceil(dim(arg, d) / divisor), or a constant;
/// or a dim that is 0 where it equals another, or where it differs (a buffer or a grid
/// only some shapes use); or the product of two of these.
static FailureOr<Attribute> gridFormula(Value size, func::FuncOp func) {
  Builder b(size.getContext());
  // [-2, a, d, a2, d2]: dim d of argument a, or 0 where it equals dim d2 of argument a2
  // (select(dim != dim2, dim, 0)); [-3, ...]: 0 where they differ (select(dim == dim2, ...)).
  if (auto select = size.getDefiningOp<arith::SelectOp>()) {
    auto cmp = select.getCondition().getDefiningOp<arith::CmpIOp>();
    bool ne = cmp && cmp.getPredicate() == arith::CmpIPredicate::ne;
    bool eq = cmp && cmp.getPredicate() == arith::CmpIPredicate::eq;
    if (!(ne || eq) || cmp.getLhs() != select.getTrueValue() ||
        !matchPattern(select.getFalseValue(), m_Zero()))
      return failure();
    auto dim = argumentDim(cmp.getLhs(), func), other = argumentDim(cmp.getRhs(), func);
    if (!dim || !other)
      return failure();
    return b.getDenseI64ArrayAttr(
        {ne ? -2 : -3, dim->first, dim->second, other->first, other->second});
  }
  // [-4, n, f1..., f2...]: the product of formula f1 (n entries) and formula f2 (a
  // classification grid over heads x key-tile chunks, for a mask_mod that reads h).
  if (auto mul = size.getDefiningOp<arith::MulIOp>()) {
    FailureOr<Attribute> lhs = gridFormula(mul.getLhs(), func);
    FailureOr<Attribute> rhs = gridFormula(mul.getRhs(), func);
    if (failed(lhs) || failed(rhs))
      return failure();
    ArrayRef<int64_t> f1 = cast<DenseI64ArrayAttr>(*lhs).asArrayRef();
    ArrayRef<int64_t> f2 = cast<DenseI64ArrayAttr>(*rhs).asArrayRef();
    SmallVector<int64_t> formula{-4, int64_t(f1.size())};
    formula.append(f1.begin(), f1.end());
    formula.append(f2.begin(), f2.end());
    return b.getDenseI64ArrayAttr(formula);
  }
  // [a, d, q1, q2, ...]: dim d of argument a (d itself when a = -1), divided by q1, then
  // q2, ... — rounding up for q > 0, down for q < 0 (recorded as -q).
  SmallVector<int64_t> divisors;
  Value x = size;
  APInt c;
  while (true) {
    Value lhs, rhs;
    int64_t sign = 1;
    if (auto ceil = x.getDefiningOp<arith::CeilDivSIOp>()) {
      lhs = ceil.getLhs(), rhs = ceil.getRhs();
    } else if (auto floor = x.getDefiningOp<arith::DivSIOp>()) {
      lhs = floor.getLhs(), rhs = floor.getRhs(), sign = -1;
    } else {
      break;
    }
    if (!matchPattern(rhs, m_ConstantInt(&c)) || c.getSExtValue() < 1)
      return failure();
    divisors.push_back(sign * c.getSExtValue());
    x = lhs;
  }
  std::reverse(divisors.begin(), divisors.end()); // innermost first
  if (divisors.empty())
    divisors.push_back(1);
  SmallVector<int64_t> formula;
  if (matchPattern(x, m_ConstantInt(&c))) {
    formula = {-1, c.getSExtValue()};
  } else {
    auto dim = argumentDim(x, func);
    if (!dim)
      return failure();
    formula = {dim->first, dim->second};
  }
  formula.append(divisors);
  return b.getDenseI64ArrayAttr(formula);
}

/// Why `grid` cannot use wgmma (empty when it can): warpgroups of 4 warps each owning 64
/// rows, 16-bit operands with contraction and column extents in multiples of 64 (of 16
/// where a head dim such as 80 or 96 takes a partial last swizzle block), memory-read
/// operands loaded whole with 16-byte copies, computed right operands
/// (written to a swizzled buffer from registers) filling whole 128-byte swizzle rows.
static std::string wgmmaMismatch(tile::GridOp grid, int64_t warps, int64_t mTiles,
                                 const DenseMap<Value, Layout> &layouts) {
  if (warps % 4 || mTiles != 1)
    return "needs num_warps % 4 == 0 and block_m = 16 x num_warps";
  // Kernels whose head dims (the rows operand tiles read whole) are 64 or 128 keep the
  // rule they were tuned under, K and N multiples of 64; other head dims (80, 96, 144,
  // 192, ...) take extents in multiples of 16 (32-key tiles, a partial last swizzle block).
  bool wholeBlocks = true;
  grid.walk([&](tile::LoadOp load) {
    auto type = cast<RankedTensorType>(load.getType());
    int64_t row = load.getSource().getType().getShape().back();
    if (type.getRank() == 2 && type.getElementType().getIntOrFloatBitWidth() == 16 &&
        type.getDimSize(1) == row && (row % kSwizzleCols || row > 128))
      wholeBlocks = false;
  });
  int64_t unit = wholeBlocks ? kSwizzleCols : 16;
  std::string reason;
  grid.walk([&](tile::DotOp dot) {
    auto lhs = cast<RankedTensorType>(dot.getLhs().getType());
    auto rhs = cast<RankedTensorType>(dot.getRhs().getType());
    int64_t k = lhs.getDimSize(1), n = rhs.getDimSize(1);
    if (!lhs.getElementType().isF16() && !lhs.getElementType().isBF16())
      reason = "needs f16/bf16 operands";
    else if (lhs.getDimSize(0) != 16 * warps)
      reason = "needs products of 16 x num_warps rows";
    else if (k % unit || n % unit || n > 256)
      reason = "needs K and N multiples of 64, or of 16 with a head dim that is not (N <= 256)";
    else if (!dot.getRhs().getDefiningOp<tile::LoadOp>() &&
             !dot.getRhs().getDefiningOp<tile::TransOp>() && (n % kSwizzleCols || k % 8))
      reason = "needs a computed right operand with N a multiple of 64";
  });
  grid.walk([&](tile::LoadOp load) {
    auto kind = layouts.lookup(load.getResult()).kind;
    if (kind != LayoutKind::A && kind != LayoutKind::B && kind != LayoutKind::BT)
      return;
    if (cast<RankedTensorType>(load.getType()).getElementType().getIntOrFloatBitWidth() != 16)
      return; // an f32 tile staged for a transpose (a state), not a product operand
    if (!vectorsPerThreadOf(load, 32 * warps))
      reason = "needs operand tiles spanning whole rows, 16-byte chunks spread evenly";
    if (kind == LayoutKind::A)
      for (Operation *user : load->getUsers())
        if (auto dot = dyn_cast<tile::DotOp>(user); !dot || dot.getLhs() != load.getResult())
          reason = "needs memory-read left operands used only by products";
  });
  return reason;
}

namespace {
struct TileToGpuPass : tessera::gpu::impl::TileToGpuBase<TileToGpuPass> {
  using TileToGpuBase::TileToGpuBase;
  void runOnOperation() override;
  LogicalResult checkRegisterBudget(tile::GridOp grid, int64_t warps,
                                    const DenseMap<Value, Layout> &layouts);
  LogicalResult outline(func::FuncOp func, tile::GridOp grid, int index,
                        ::mlir::gpu::GPUModuleOp module, SmallVectorImpl<Attribute> &launches);
};
} // namespace

/// ptxas cannot assemble a product whose accumulator, with the one carried beside it (a
/// softmax's O while S is computed), outgrows the registers a thread has; a min_blocks
/// that leaves fewer is reported here instead of failing at module load on the GPU.
LogicalResult TileToGpuPass::checkRegisterBudget(tile::GridOp grid, int64_t warps,
                                                 const DenseMap<Value, Layout> &layouts) {
  if (minBlocks == 0)
    return success(); // the stage plan's own hint leaves what its tiles need
  SmallVector<int64_t> accumulators;
  grid.walk([&](tile::DotOp dot) {
    accumulators.push_back(numSlots(layouts.lookup(dot.getResult())));
  });
  // Distinct sizes: a program's several loops repeat the same two products.
  llvm::sort(accumulators, std::greater<>());
  accumulators.erase(llvm::unique(accumulators), accumulators.end());
  int64_t needed = 0;
  for (int64_t slots : ArrayRef(accumulators).take_front(2))
    needed += slots;
  // Registers are allocated per warp in units of 8, at most 255 a thread.
  int64_t budget = std::min<int64_t>(255, 65536 / (minBlocks * 32 * warps) / 8 * 8);
  if (needed <= budget)
    return success();
  return grid.emitError("min_blocks = ")
         << int64_t(minBlocks) << " leaves " << budget << " registers a thread (65536 / ("
         << int64_t(minBlocks) << " blocks x " << 32 * warps
         << " threads)), fewer than the " << needed
         << " its two largest product accumulators hold; use a smaller min_blocks";
}

LogicalResult TileToGpuPass::outline(func::FuncOp func, tile::GridOp grid, int index,
                                     ::mlir::gpu::GPUModuleOp module,
                                     SmallVectorImpl<Attribute> &launches) {
  MLIRContext *ctx = &getContext();
  tile::ConfigAttr config = grid.getConfig();
  int64_t warps = config.getNumWarps();
  int64_t mTiles = config.getBlockM() / (16 * warps);
  if (config.getBlockM() % (16 * warps) || mTiles > 4)
    return grid.emitError("the GPU target needs block_m = 16 x num_warps x (1, 2 or 4), got "
                          "block_m = ")
           << config.getBlockM() << ", num_warps = " << warps;
  DenseMap<Value, Layout> layouts;
  if (failed(assignLayouts(grid, warps, layouts)))
    return failure();
  if (failed(checkRegisterBudget(grid, warps, layouts)))
    return failure();

  std::string name = (func.getName() + "_kernel" + Twine(index)).str();
  OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
  // Kernels assume unit stride in each buffer's last dimension (the runtime checks it),
  // which lets tile copies use 16-byte vector loads.
  SmallVector<Type> argTypes;
  for (Type t : func.getArgumentTypes()) {
    auto m = dyn_cast<MemRefType>(t);
    if (!m)
      return func.emitError("GPU kernels take buffers only; argument of type ") << t;
    SmallVector<int64_t> strides(m.getRank(), ShapedType::kDynamic);
    strides.back() = 1;
    argTypes.push_back(MemRefType::get(
        m.getShape(), m.getElementType(),
        StridedLayoutAttr::get(ctx, ShapedType::kDynamic, strides), m.getMemorySpace()));
  }
  auto kernel = ::mlir::gpu::GPUFuncOp::create(mb, grid.getLoc(), name,
                                               FunctionType::get(ctx, argTypes, {}));
  kernel->setAttr(::mlir::gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  kernel.setKnownBlockSizeAttr(DenseI32ArrayAttr::get(ctx, {int32_t(32 * warps), 1, 1}));
  Block &entry = kernel.getBody().front();
  ImplicitLocOpBuilder b(grid.getLoc(), ctx);
  b.setInsertionPointToStart(&entry);

  bool useWgmma = wgmma && wgmmaMismatch(grid, warps, mTiles, layouts).empty();
  Distributor d(b, layouts, warps, config.getNumStages(), useWgmma, kernel);
  d.planStages(grid.getBody().front());
  for (auto [hostArg, kernelArg] :
       llvm::zip(func.getArguments(), entry.getArguments()))
    d.scalars.map(hostArg, kernelArg);
  // Host values the body uses (sizes, group counts) are recomputed in the kernel from
  // its arguments: they are pure functions of the buffers' shapes.
  SetVector<Operation *> hostSlice;
  grid.getBody().walk([&](Operation *op) {
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (!def || grid->isAncestor(def))
        continue;
      SmallVector<Operation *> stack{def};
      while (!stack.empty()) {
        Operation *o = stack.pop_back_val();
        if (!hostSlice.insert(o))
          continue;
        for (Value x : o->getOperands())
          if (Operation *xd = x.getDefiningOp())
            stack.push_back(xd);
      }
    }
  });
  for (Operation &op : func.getBody().front())
    if (hostSlice.contains(&op))
      b.clone(op, d.scalars);
  if (failed(d.lowerBlock(grid.getBody().front())))
    return failure();
  ::mlir::gpu::ReturnOp::create(b);
  if (int64_t blocks = minBlocks ? minBlocks : d.plannedBlocksPerSM)
    kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b.getI32IntegerAttr(blocks));
  // Shared memory (staging and conversion buffers, all in the dynamic arena).
  if (d.dynamicSharedBytes() > kSharedLimit)
    return grid.emitError("the kernel needs ")
           << d.dynamicSharedBytes() << " bytes of shared memory, more than the "
           << kSharedLimit << " a block can have; use smaller tiles or a larger split";
  // Index arithmetic copied from the host (ceildiv/floordiv) becomes plain integer ops;
  // the rest of arith lowers directly to NVVM (max/min stay single instructions).
  RewritePatternSet divisions(ctx);
  arith::populateCeilFloorDivExpandOpsPatterns(divisions);
  if (failed(applyPatternsGreedily(kernel, std::move(divisions))))
    return kernel.emitError("could not expand index divisions");

  SmallVector<Attribute> grids;
  for (Value size : grid.getSizes()) {
    FailureOr<Attribute> f = gridFormula(size, func);
    if (failed(f))
      return grid.emitError("grid sizes must be ceil or floor of dim(argument) / constant, "
                            "constants, or products of these");
    grids.push_back(*f);
  }
  Builder attrs(ctx);
  launches.push_back(attrs.getDictionaryAttr({
      attrs.getNamedAttr("kernel", attrs.getStringAttr(name)),
      attrs.getNamedAttr("grid", attrs.getArrayAttr(grids)),
      attrs.getNamedAttr("block", attrs.getI64IntegerAttr(32 * warps)),
      attrs.getNamedAttr("smem", attrs.getI64IntegerAttr(d.dynamicSharedBytes())),
  }));
  grid.erase();
  return success();
}

/// Host-side allocations (intermediates between grids: tile lists, scratch, program
/// intermediates) become trailing function arguments the runtime allocates: their
/// shapes, as grid-size formulas of the other arguments, go to `tessera.workspaces`.
static LogicalResult allocationsToWorkspaces(func::FuncOp func) {
  Builder attrs(func.getContext());
  SmallVector<Attribute> workspaces;
  SmallVector<memref::AllocOp> allocs(func.getBody().getOps<memref::AllocOp>());
  for (memref::AllocOp alloc : allocs) {
    MemRefType type = alloc.getType();
    SmallVector<Attribute> shape;
    auto sizes = alloc.getDynamicSizes().begin();
    for (int64_t extent : type.getShape()) {
      if (!ShapedType::isDynamic(extent)) {
        shape.push_back(attrs.getDenseI64ArrayAttr({-1, extent, 1}));
        continue;
      }
      FailureOr<Attribute> f = gridFormula(*sizes++, func);
      if (failed(f))
        return alloc.emitError("GPU workspace sizes must be ceil or floor of dim(argument) / "
                               "constant, constants, or a dim selected where it differs "
                               "from another");
      shape.push_back(*f);
    }
    for (Operation *user : llvm::make_early_inc_range(alloc->getUsers()))
      if (isa<memref::DeallocOp>(user))
        user->erase();
    // Intermediates reach their grids through casts to a strided type (as arguments
    // do): the argument takes that type, so kernels see it like any other buffer.
    SmallVector<memref::CastOp> casts;
    for (Operation *user : alloc->getUsers())
      if (auto cast = dyn_cast<memref::CastOp>(user))
        casts.push_back(cast);
    Type argType = type;
    bool viaCasts = !casts.empty() &&
                    casts.size() == size_t(std::distance(alloc->user_begin(), alloc->user_end())) &&
                    llvm::all_of(casts, [&](memref::CastOp c) {
                      return c.getType() == casts.front().getType();
                    });
    if (viaCasts)
      argType = casts.front().getType();
    unsigned index = func.getNumArguments();
    if (failed(func.insertArgument(index, argType, {}, alloc.getLoc())))
      return alloc.emitError("could not turn the allocation into a kernel argument");
    if (viaCasts) {
      for (memref::CastOp cast : casts) {
        cast.replaceAllUsesWith(func.getArgument(index));
        cast.erase();
      }
    } else {
      alloc.replaceAllUsesWith(func.getArgument(index));
    }
    alloc.erase();
    std::string elem;
    llvm::raw_string_ostream os(elem);
    os << type.getElementType();
    workspaces.push_back(
        attrs.getDictionaryAttr({attrs.getNamedAttr("shape", attrs.getArrayAttr(shape)),
                                 attrs.getNamedAttr("dtype", attrs.getStringAttr(elem))}));
  }
  func->setAttr("tessera.workspaces", attrs.getArrayAttr(workspaces));
  return success();
}

void TileToGpuPass::runOnOperation() {
  ModuleOp top = getOperation();
  MLIRContext *ctx = &getContext();
  // An SM holds at most 32 blocks (sm_80, sm_90).
  if (minBlocks < 0 || minBlocks > 32) {
    top.emitError("min_blocks must be in [0, 32] (blocks per SM), got ") << int64_t(minBlocks);
    return signalPassFailure();
  }
  top->setAttr(::mlir::gpu::GPUDialect::getContainerModuleAttrName(), UnitAttr::get(ctx));
  SmallVector<func::FuncOp> funcs(top.getOps<func::FuncOp>());
  for (func::FuncOp func : funcs) {
    SmallVector<tile::GridOp> grids(func.getBody().getOps<tile::GridOp>());
    if (grids.empty())
      continue;
    if (failed(allocationsToWorkspaces(func)))
      return signalPassFailure();
    OpBuilder tb = OpBuilder::atBlockEnd(top.getBody());
    auto module = ::mlir::gpu::GPUModuleOp::create(tb, func.getLoc(),
                                                   (func.getName() + "_kernels").str());
    SmallVector<Attribute> launches;
    for (auto [i, grid] : llvm::enumerate(grids))
      if (failed(outline(func, grid, i, module, launches)))
        return signalPassFailure();
    func->setAttr("tessera.launches", ArrayAttr::get(ctx, launches));
  }
}
