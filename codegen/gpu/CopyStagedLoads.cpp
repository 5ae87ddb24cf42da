//===- CopyStagedLoads.cpp - staged loads as copies into buffers and reads ---===//
//
// tessera-tgpu-copy-staged-loads: in a scheduled grid whose operand tiles TMA does not
// copy (no tgpu.tensor_copies), each staged tile.load becomes what the lowering makes of
// it, in the IR: one mutable tgpu.local_alloc per buffer (swizzled: the loads of one
// source, tile type and constant column share one; padded rows: of one source and tile
// type; its stages
// are the schedule's tgpu.buffer_stages; made in the grid's body just before the op
// holding its first use), a tgpu.async_copy into it where the load was
// (keeping the load's tgpu.prefetch_distance), and a tgpu.local_load of the buffer
// right before each reader. The copy is cp.async into swizzled rows (wgmma), through
// registers into padded rows (mma.sync's operands, f32 tiles). Where a multi-buffered
// buffer's stage is left out, the loop's schedule picks it (tessera-tile-to-gpu's
// pipelining, docs/RationaleTgpu.md).
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Distributor.h"
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/SharedAllocation.h"
#include "codegen/gpu/StageAttrs.h"
#include "dialect/tgpu/TgpuDialect.h"
#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/MapVector.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TGPUCOPYSTAGEDLOADS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;
using namespace tessera;
using namespace tessera::gpu;

namespace {
/// A staged 2-D tile of whole 16-byte row chunks (a copy's unit); a tile whose rows are
/// not (none is staged today) stays a load the lowering copies element by element.
bool copiable(tile::LoadOp load) {
  auto type = cast<RankedTensorType>(load.getType());
  return Distributor::isStaged(load) && type.getRank() == 2 &&
         type.getDimSize(1) * type.getElementType().getIntOrFloatBitWidth() % 128 == 0;
}

int64_t bufferStagesOf(tile::LoadOp load) {
  auto stages = load->getAttrOfType<IntegerAttr>(kBufferStagesAttr);
  return stages ? stages.getInt() : 1;
}

/// Moves `alloc` to the grid's body, just before the op holding its first use: the
/// buffer lives from there (the shared-memory plan's live range starts at its owner, the
/// alloc) as it did from its first load, over every iteration of the loops it is used in.
void placeBefore(tgpu::LocalAllocOp alloc, Block &body) {
  Operation *first = nullptr;
  for (Operation *u : alloc->getUsers()) {
    Operation *at = body.findAncestorOpInBlock(*u);
    if (!first || at->isBeforeInBlock(first))
      first = at;
  }
  alloc->moveBefore(first);
}
} // namespace

bool tessera::gpu::copiesStagedLoads(tile::GridOp grid) {
  return accumulatorOf(grid) && !grid->hasAttr(kTensorCopiesAttr) &&
         !grid->hasAttr(kLoadsCopiedAttr);
}

LogicalResult tessera::gpu::copyStagedLoads(tile::GridOp grid) {
  if (!copiesStagedLoads(grid))
    return success();
  if (!grid->hasAttr(kNumStagesAttr) && failed(assignStages(grid)))
    return failure();
  MLIRContext *ctx = grid.getContext();
  // The lowering's buffers: a swizzled one per Distributor::bufferKey, a padded one per
  // source and tile type (pieces of a row at different columns share it).
  using Key = std::pair<Distributor::BufferKey, Attribute>;
  llvm::MapVector<Key, SmallVector<tile::LoadOp>> buffers; // in program order
  grid.getBody().walk<WalkOrder::PreOrder>([&](tile::LoadOp load) {
    if (!copiable(load))
      return;
    Distributor::BufferKey key = Distributor::bufferKey(load);
    if (!Distributor::swizzles(load))
      std::get<2>(key) = -1;
    buffers[{key, stagingOf(load)}].push_back(load);
  });
  for (auto &[key, loads] : buffers) {
    tile::LoadOp first = loads.front();
    for (tile::LoadOp load : loads) {
      if (bufferStagesOf(load) != bufferStagesOf(first))
        return load.emitError("loads sharing one buffer differ in ")
               << kBufferStagesAttr << ": " << bufferStagesOf(load) << " here, "
               << bufferStagesOf(first) << " at the first";
      // The first load requests the buffer (its offset moves to the buffer).
      if (load != first && load->hasAttr(kSharedOffsetAttr))
        return load.emitError(kSharedOffsetAttr)
               << " on a load whose buffer an earlier load requests (loads sharing a "
                  "buffer are copies into it)";
      // A copy fills what lies outside the source with zeros.
      if (auto pad = load.getPaddingAttr();
          pad && !matchPattern(pad, m_AnyZeroFloat()) && !matchPattern(pad, m_Zero()))
        return load.emitError("a staged tile is padded with zeros (its copy fills what "
                              "lies outside the source with them), not ")
               << pad;
    }
  }
  Block &body = grid.getBody().front();
  OpBuilder b(ctx);
  for (auto &[key, loads] : buffers) {
    tile::LoadOp first = loads.front();
    // (Set each time: the op the start was before may be a load erased since.)
    b.setInsertionPointToStart(&body);
    auto tileType = cast<RankedTensorType>(first.getType());
    auto type = tgpu::SharedBufferType::get(ctx, tileType.getShape(),
                                            tileType.getElementType(), stagingOf(first),
                                            bufferStagesOf(first), /*isMutable=*/true);
    auto alloc = tgpu::LocalAllocOp::create(b, first.getLoc(), type, Value(), false);
    // A hand-written plan's offset for the buffer moves from the load that requested it.
    if (auto offset = first->getAttr(kSharedOffsetAttr))
      alloc->setAttr(kSharedOffsetAttr, offset);
    for (tile::LoadOp load : loads) {
      OpBuilder at(load);
      auto copy = tgpu::AsyncCopyOp::create(at, load.getLoc(), tgpu::AsyncTokenType::get(ctx),
                                            load.getSource(), load.getIndices(), alloc,
                                            Value());
      if (auto distance = load->getAttr(kPrefetchDistanceAttr))
        copy->setAttr(kPrefetchDistanceAttr, distance);
      // Each reader reads the buffer right before it (a user's operands in order).
      SmallVector<Operation *> readers;
      for (Operation *user : load->getUsers())
        if (!llvm::is_contained(readers, user))
          readers.push_back(user);
      for (Operation *reader : readers) {
        at.setInsertionPoint(reader);
        Value read = tgpu::LocalLoadOp::create(at, reader->getLoc(), load.getType(), alloc,
                                               Value(), false);
        reader->replaceUsesOfWith(load.getResult(), read);
      }
      load.erase();
    }
    placeBefore(alloc, body);
  }
  grid->setAttr(kLoadsCopiedAttr, UnitAttr::get(ctx));
  return success();
}

namespace {
struct TgpuCopyStagedLoadsPass
    : tessera::gpu::impl::TgpuCopyStagedLoadsBase<TgpuCopyStagedLoadsPass> {
  using TgpuCopyStagedLoadsBase::TgpuCopyStagedLoadsBase;
  void runOnOperation() override {
    SmallVector<tile::GridOp> grids;
    getOperation().walk([&](tile::GridOp grid) { grids.push_back(grid); });
    for (tile::GridOp grid : grids)
      if (failed(copyStagedLoads(grid)))
        return signalPassFailure();
  }
};
} // namespace
