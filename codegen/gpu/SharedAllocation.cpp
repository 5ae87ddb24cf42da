//===- SharedAllocation.cpp - shared-memory offsets from live ranges --------===//
//
// tessera-tgpu-allocate-shared: every shared buffer a kernel needs (operand tiles with
// their stages, staging and conversion / reduction scratch, computed operands, outputs
// stored through shared memory, TMA mbarriers) with its size, alignment and live range,
// and an offset for each, buffers whose live ranges do not meet sharing bytes. The
// buffers are what tessera-tile-to-gpu requests: it lowers a scratch copy of the module,
// which records each request with the tile ops whose lowering touches the buffer. The
// offsets are written as tgpu.shared_offset on the requesting ops (the grid for its
// mbarriers) and tgpu.shared_bytes on the grid; tessera-tile-to-gpu follows them.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/SharedAllocation.h"
#include "codegen/gpu/KernelOutlining.h"
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringMap.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUALLOCATESHARED
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

//===----------------------------------------------------------------------===//
// The distributor's side: requests, followed or recorded.
//===----------------------------------------------------------------------===//

LogicalResult Distributor::beginSharedPlan(tile::GridOp grid) {
  sharedGrid = grid;
  if (grid->getParentOfType<ModuleOp>()->hasAttr(kSharedScratchAttr)) {
    sharedRecorder = std::make_unique<SharedRecorder>(lowering);
    b.setListener(sharedRecorder.get());
    return success();
  }
  auto bytes = grid->getAttrOfType<IntegerAttr>(kSharedBytesAttr);
  if (!bytes || bytes.getInt() < 0)
    return grid.emitError("tessera-tile-to-gpu follows the grid's shared-memory plan: ")
           << kSharedBytesAttr << " must be an integer >= 0 (tessera-tgpu-allocate-shared)";
  arenaBytes = bytes.getInt();
  return success();
}

int64_t Distributor::sharedOffset(Operation *owner, StringRef kind, int64_t bytes,
                                  int64_t align) {
  if (!owner)
    owner = lowering ? lowering : sharedGrid.getOperation();
  int64_t offset = llvm::alignTo(arenaBytes, align);
  bool following = sharedGrid && !recordingShared();
  if (!following) {
    arenaBytes = offset + bytes; // end to end: the plan comes from the live ranges
    sharedRequests.push_back({owner, kind.str(), bytes, align, offset, {}});
    return offset;
  }
  auto offsets = owner->getAttrOfType<DenseI64ArrayAttr>(kSharedOffsetAttr);
  unsigned n = plannedTaken[owner]++;
  auto broken = [&]() -> InFlightDiagnostic {
    InFlightDiagnostic diag = owner->emitError();
    sharedPlanBroken = true;
    return diag;
  };
  if (!offsets || n >= offsets.size()) {
    if (!sharedPlanBroken)
      broken() << "the lowering requests a " << kind << " buffer of " << bytes
               << " bytes here that " << kSharedOffsetAttr << " does not place ("
               << (offsets ? offsets.size() : 0)
               << " offsets given); run tessera-tgpu-allocate-shared";
  } else if (offsets[n] < 0 || offsets[n] % align || offsets[n] + bytes > arenaBytes) {
    if (!sharedPlanBroken)
      broken() << kSharedOffsetAttr << " places the " << kind << " buffer (" << bytes
               << " bytes) at " << offsets[n] << "; it must be a multiple of " << align
               << " and end inside the grid's " << kSharedBytesAttr << " = " << arenaBytes;
  } else {
    offset = offsets[n];
  }
  // Bytes an earlier buffer had: its products, copies and readers finish first. (An
  // output stored after the loops waits for them itself, storeThroughShared.) In a loop
  // this runs every iteration, next to the barrier the lowering puts before a buffer is
  // written (the two merge); settling once before the loop instead measured one more
  // barrier in HyperAttention's kernels.
  bool waitsItself = kind == "output" && !isa<scf::ForOp>(owner->getParentOp());
  bool reuses = llvm::any_of(sharedRequests, [&](const SharedRequest &r) {
    return r.offset < offset + bytes && offset < r.offset + r.bytes;
  });
  if (reuses && !waitsItself && !sharedPlanBroken)
    settleSharedBytes(offset, offset + bytes);
  sharedRequests.push_back({owner, kind.str(), bytes, align, offset, {}});
  return offset;
}

void Distributor::settleSharedBytes(int64_t begin, int64_t end) {
  settleProducts();
  if (copiesPending())
    waitForCopies();
  SmallVector<int> earlier;
  for (auto [i, t] : llvm::enumerate(swizzledTiles))
    if (t.offset < end && begin < t.offset + t.bytes())
      earlier.push_back(i);
  drainTensorCopies(earlier);
  blockBarrier();
  barrierPending = false;
}

/// Ops that only compute an address from a buffer's (its accesses use their results).
static bool isAddressArithmetic(Operation *op) {
  return isa<arith::AddIOp, arith::SubIOp, arith::MulIOp, arith::AndIOp, arith::OrIOp,
             arith::XOrIOp, arith::IndexCastOp, arith::IndexCastUIOp, arith::TruncIOp,
             arith::ExtUIOp, arith::ExtSIOp, arith::RemUIOp, arith::DivUIOp, arith::ShLIOp,
             arith::ShRUIOp, arith::SelectOp, memref::ViewOp, memref::SubViewOp,
             memref::CastOp, memref::ReinterpretCastOp, memref::ExtractAlignedPointerAsIndexOp,
             LLVM::IntToPtrOp, LLVM::PtrToIntOp, LLVM::AddrSpaceCastOp, LLVM::GEPOp,
             UnrealizedConversionCastOp>(op);
}

LogicalResult Distributor::endSharedPlan(::mlir::gpu::GPUFuncOp kernel) {
  if (!sharedGrid)
    return success();
  if (!recordingShared()) {
    if (sharedPlanBroken)
      return failure();
    WalkResult unused = sharedGrid->walk([&](Operation *op) {
      auto offsets = op->getAttrOfType<DenseI64ArrayAttr>(kSharedOffsetAttr);
      if (!offsets || size_t(offsets.size()) == plannedTaken.lookup(op))
        return WalkResult::advance();
      op->emitError(kSharedOffsetAttr)
          << " places " << offsets.size() << " buffers; the lowering requests "
          << plannedTaken.lookup(op) << " here";
      return WalkResult::interrupt();
    });
    return failure(unused.wasInterrupted());
  }
  b.setListener(nullptr);
  // Tile ops in pre-order: a buffer lives from the first to the last op whose lowering
  // touches it, over the whole of each loop around one (the next iteration comes back).
  DenseMap<Operation *, int64_t> index = opNumbers(sharedGrid);
  auto lastIn = [&](Operation *op) {
    int64_t last = index.lookup(op);
    op->walk([&](Operation *x) { last = std::max(last, index.lookup(x)); });
    return last;
  };
  MLIRContext *ctx = kernel.getContext();
  Builder attrs(ctx);
  SmallVector<Attribute> log;
  for (const SharedRequest &r : sharedRequests) {
    int64_t first = index.lookup(r.owner), last = first;
    auto cover = [&](Operation *tileOp) {
      first = std::min(first, index.lookup(tileOp));
      last = std::max(last, index.lookup(tileOp));
      for (Operation *p = tileOp; p && p != sharedGrid; p = p->getParentOp())
        if (isa<scf::ForOp, scf::WhileOp>(p)) {
          first = std::min(first, index.lookup(p));
          last = std::max(last, lastIn(p));
        }
    };
    if (r.owner == sharedGrid.getOperation())
      last = lastIn(r.owner); // the grid's own (mbarriers): the whole kernel
    else
      cover(r.owner);
    SmallVector<Value> work(r.handles);
    DenseSet<Operation *> seen;
    while (!work.empty()) {
      Value v = work.pop_back_val();
      for (Operation *user : v.getUsers()) {
        if (!seen.insert(user).second)
          continue;
        if (isAddressArithmetic(user)) {
          llvm::append_range(work, user->getResults());
          continue;
        }
        for (Operation *x = user; x; x = x->getParentOp())
          if (Operation *tileOp = sharedRecorder->tileOpOf.lookup(x)) {
            cover(tileOp);
            break;
          }
      }
    }
    log.push_back(attrs.getDictionaryAttr({
        attrs.getNamedAttr("owner", attrs.getI64IntegerAttr(index.lookup(r.owner))),
        attrs.getNamedAttr("kind", attrs.getStringAttr(r.kind)),
        attrs.getNamedAttr("bytes", attrs.getI64IntegerAttr(r.bytes)),
        attrs.getNamedAttr("align", attrs.getI64IntegerAttr(r.align)),
        attrs.getNamedAttr("first", attrs.getI64IntegerAttr(first)),
        attrs.getNamedAttr("last", attrs.getI64IntegerAttr(last)),
    }));
  }
  kernel->setAttr(kSharedRequestsAttr, attrs.getArrayAttr(log));
  return success();
}

//===----------------------------------------------------------------------===//
// The plan: offsets from sizes, alignments and live ranges.
//===----------------------------------------------------------------------===//

namespace {
struct Buffer {
  Operation *owner;
  std::string kind;
  int64_t bytes, align, first, last;
  int64_t offset = -1; // -1: not placed yet
  bool given = false;  // an offset the op carried
  int64_t end() const { return offset + bytes; }
  bool liveWith(const Buffer &o) const { return first <= o.last && o.first <= last; }
  bool meets(const Buffer &o) const { return offset < o.end() && o.offset < end(); }
};
} // namespace

SmallVector<Operation *> tessera::gpu::numberedOps(tile::GridOp grid) {
  SmallVector<Operation *> ops;
  grid->walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (!isa<tgpu::ConvertLayoutOp>(op))
      ops.push_back(op);
  });
  return ops;
}

DenseMap<Operation *, int64_t> tessera::gpu::opNumbers(tile::GridOp grid) {
  DenseMap<Operation *, int64_t> numbers;
  for (auto [i, op] : llvm::enumerate(numberedOps(grid)))
    numbers[op] = i;
  return numbers;
}

/// Each buffer not placed yet, in request order: into the bytes of the first earlier
/// buffer of its size that is dead by then (an output into a tile nothing reads any
/// more), else above the earlier buffers it lives with; moved up past any placed buffer
/// it would meet while both live.
static void place(MutableArrayRef<Buffer> buffers) {
  for (auto [k, b] : llvm::enumerate(buffers)) {
    if (b.offset >= 0)
      continue;
    auto collision = [&](int64_t at) -> std::optional<int64_t> {
      for (auto [j, o] : llvm::enumerate(buffers))
        if (j != k && o.offset >= 0 && o.liveWith(b) && at < o.end() && o.offset < at + b.bytes)
          return o.end();
      return std::nullopt;
    };
    for (const Buffer &o : buffers.take_front(k))
      if (o.offset >= 0 && o.bytes == b.bytes && !o.liveWith(b) && o.offset % b.align == 0 &&
          !collision(o.offset)) {
        b.offset = o.offset;
        break;
      }
    if (b.offset >= 0)
      continue;
    int64_t at = 0;
    for (const Buffer &o : buffers.take_front(k))
      if (o.offset >= 0 && o.liveWith(b))
        at = std::max(at, o.end());
    at = llvm::alignTo(at, b.align);
    while (std::optional<int64_t> past = collision(at))
      at = llvm::alignTo(*past, b.align);
    b.offset = at;
  }
}

static LogicalResult check(tile::GridOp grid, ArrayRef<Buffer> buffers, int64_t sharedBytes) {
  for (auto [k, b] : llvm::enumerate(buffers)) {
    if (b.offset % b.align)
      return b.owner->emitError(kSharedOffsetAttr)
             << ": the " << b.kind << " buffer (" << b.bytes << " bytes) at " << b.offset
             << " is not aligned to " << b.align << " bytes";
    for (const Buffer &o : buffers.take_front(k))
      if (b.liveWith(o) && b.meets(o)) {
        InFlightDiagnostic diag = b.owner->emitError(kSharedOffsetAttr);
        diag << ": the " << b.kind << " buffer at [" << b.offset << ", " << b.end()
             << ") overlaps the " << o.kind << " buffer at [" << o.offset << ", " << o.end()
             << ") while both are live (ops " << b.first << "-" << b.last << " and "
             << o.first << "-" << o.last << ")";
        diag.attachNote(o.owner->getLoc()) << "the " << o.kind << " buffer is requested here";
        return diag;
      }
    if (b.end() > sharedBytes)
      return grid.emitError(kSharedBytesAttr)
             << " = " << sharedBytes << ", but the " << b.kind << " buffer ends at " << b.end();
  }
  return checkLaunchSharedBytes(grid, sharedBytes);
}

static LogicalResult allocateGrid(tile::GridOp grid, ArrayAttr requests, bool report) {
  if (!requests)
    return grid.emitError("the shared-memory allocation's scratch lowering made no kernel "
                          "for this grid");
  SmallVector<Operation *> ops = numberedOps(grid);
  SmallVector<Buffer> buffers;
  for (Attribute a : requests) {
    auto d = cast<DictionaryAttr>(a);
    auto get = [&](StringRef name) { return cast<IntegerAttr>(d.get(name)).getInt(); };
    int64_t owner = get("owner");
    if (owner < 0 || owner >= int64_t(ops.size()))
      return grid.emitError("the shared-memory allocation's scratch lowering numbers ops "
                            "this grid does not have");
    buffers.push_back({ops[owner], cast<StringAttr>(d.get("kind")).str(), get("bytes"),
                       get("align"), get("first"), get("last")});
  }
  // Offsets an op carries (a user's, or an earlier run's) are kept, every one or none.
  DenseMap<Operation *, unsigned> requested;
  for (Buffer &b : buffers)
    if (auto given = b.owner->getAttrOfType<DenseI64ArrayAttr>(kSharedOffsetAttr)) {
      unsigned n = requested[b.owner]++;
      if (n < given.size()) {
        b.offset = given[n];
        b.given = true;
      }
    }
  for (Operation *op : ops)
    if (auto given = op->getAttrOfType<DenseI64ArrayAttr>(kSharedOffsetAttr);
        given && size_t(given.size()) != requested.lookup(op))
      return op->emitError(kSharedOffsetAttr)
             << " places " << given.size() << " buffers; the kernel requests "
             << requested.lookup(op) << " here";
  auto planned = grid->getAttrOfType<IntegerAttr>(kSharedBytesAttr);
  if (planned)
    for (const Buffer &b : buffers)
      if (!b.given)
        return b.owner->emitError("the grid's ")
               << kSharedBytesAttr << " says it is planned, but nothing places the "
               << b.kind << " buffer (" << b.bytes << " bytes) requested here";
  place(buffers);
  int64_t end = 0;
  for (const Buffer &b : buffers)
    end = std::max(end, b.end());
  int64_t sharedBytes = planned ? planned.getInt() : end;
  if (failed(check(grid, buffers, sharedBytes)))
    return failure();
  llvm::MapVector<Operation *, SmallVector<int64_t>> offsets;
  for (const Buffer &b : buffers)
    offsets[b.owner].push_back(b.offset);
  for (auto &[op, list] : offsets)
    op->setAttr(kSharedOffsetAttr, DenseI64ArrayAttr::get(grid.getContext(), list));
  grid->setAttr(kSharedBytesAttr,
                IntegerAttr::get(IntegerType::get(grid.getContext(), 64), sharedBytes));
  if (report)
    for (const Buffer &b : buffers)
      b.owner->emitRemark() << "shared " << b.kind << " buffer: " << b.bytes << " bytes at "
                            << b.offset << " (align " << b.align << "), live over ops "
                            << b.first << "-" << b.last;
  return success();
}

FailureOr<llvm::StringMap<ArrayAttr>> tessera::gpu::lowerScratchCopy(ModuleOp top,
                                                                    StringRef marker,
                                                                    StringRef found,
                                                                    bool quiet) {
  MLIRContext *ctx = top.getContext();
  OwningOpRef<ModuleOp> scratch(cast<ModuleOp>(top->clone()));
  (*scratch)->setAttr(marker, UnitAttr::get(ctx));
  PassManager pm(ctx, ModuleOp::getOperationName());
  pm.addPass(createTileToGpu());
  {
    std::optional<ScopedDiagnosticHandler> dropped;
    if (quiet)
      dropped.emplace(ctx, [](Diagnostic &) { return success(); });
    if (failed(pm.run(*scratch)))
      return failure();
  }
  llvm::StringMap<ArrayAttr> byKernel;
  scratch->walk([&](::mlir::gpu::GPUFuncOp kernel) {
    if (auto log = kernel->getAttrOfType<ArrayAttr>(found))
      byKernel[kernel.getName()] = log;
  });
  return byKernel;
}

int64_t tessera::gpu::launchSharedBytes(int64_t arenaBytes) {
  return arenaBytes > 0 ? arenaBytes + kSwizzleAtomBytes : 0;
}

LogicalResult tessera::gpu::checkLaunchSharedBytes(Operation *grid, int64_t arenaBytes) {
  int64_t bytes = launchSharedBytes(arenaBytes);
  if (bytes <= kSharedLimit)
    return success();
  return grid->emitError("the kernel needs ")
         << bytes << " bytes of shared memory, more than the " << kSharedLimit
         << " a block can have; use smaller tiles or a larger split";
}

LogicalResult tessera::gpu::allocateShared(ModuleOp top, bool asPass, bool report) {
  SmallVector<std::pair<std::string, tile::GridOp>> grids; // with their kernels' names
  for (func::FuncOp func : top.getOps<func::FuncOp>())
    for (auto [i, grid] : llvm::enumerate(func.getBody().getOps<tile::GridOp>()))
      if (asPass || !grid->hasAttr(kSharedBytesAttr))
        grids.push_back({kernelName(func, i), grid});
  if (grids.empty())
    return success();
  // The plan numbers ops: a grid whose staged loads are not copies yet is rewritten
  // first, by tessera-tgpu-copy-staged-loads' and tessera-tgpu-pipeline-loops' code
  // (its scratch lowering would).
  for (auto &[name, grid] : grids)
    if (accumulatorOf(grid) && (failed(copyStagedLoads(grid)) || failed(pipelineLoops(grid))))
      return failure();
  // The requests come from the lowering itself, on a scratch copy (diagnostics carry
  // the original locations). The IR stages (kernel.ir("tgpu")) show programs the
  // lowering rejects too.
  FailureOr<llvm::StringMap<ArrayAttr>> requests =
      lowerScratchCopy(top, kSharedScratchAttr, kSharedRequestsAttr, /*quiet=*/asPass);
  if (failed(requests))
    return success(asPass);
  for (auto &[name, grid] : grids)
    if (failed(allocateGrid(grid, requests->lookup(name), report)))
      return failure();
  return success();
}

namespace {
struct TgpuAllocateSharedPass
    : tessera::gpu::impl::TgpuAllocateSharedBase<TgpuAllocateSharedPass> {
  using TgpuAllocateSharedBase::TgpuAllocateSharedBase;
  void runOnOperation() override {
    if (failed(allocateShared(getOperation(), /*asPass=*/true, report)))
      signalPassFailure();
  }
};
} // namespace
