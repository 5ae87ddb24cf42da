//===- WarpSpecialize.h - warp-specialised kernels (issue 25) ---*- C++ -*-===//
//
// Shared by tessera-tgpu-warp-specialize (WarpSpecializePass.cpp), which splits a TMA
// grid into a producer partition and its consumers, and the distributor's lowering of
// the result (WarpSpecialize.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_CODEGEN_GPU_WARPSPECIALIZE_H
#define TESSERA_CODEGEN_GPU_WARPSPECIALIZE_H

#include "dialect/tile/TileDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <string>

namespace tessera::gpu {
/// The producer is one warpgroup, launched after the consumers' warps (so the consumers
/// keep thread ids 0 .. 32 x num_warps - 1 and every layout computation as it was).
constexpr int64_t kProducerWarps = 4;

/// On a tgpu.warp_specialize of two consumer warpgroups (the pingpong knob): they take
/// turns at their products, warpgroup g waiting on named barrier kFirstTurnBarrier + g
/// (block barriers among the consumers are named barrier 1).
constexpr llvm::StringLiteral kPingpongAttr = "tgpu.pingpong";
constexpr int32_t kFirstTurnBarrier = 2;

/// Registers a thread: at the kernel's entry (ptxas .maxnreg), then the producer's
/// (setmaxnreg.dec) and the consumers' (setmaxnreg.inc). The blocks an SM holds share its
/// 64 K registers (two for one consumer warpgroup, else one), and what the producer gives
/// back must cover what the consumers take (entry x (1 + C) >= producer + C x consumer,
/// C consumer warpgroups): C = 1: 128 / 40 / 216; C = 2: 168 / 24 / 240, as
/// FlashAttention-3 has them.
struct RegisterBudgets {
  int32_t entry, producer, consumer;
  int64_t blocksPerSM; // the blocks an SM holds at these budgets
};
RegisterBudgets warpSpecializedRegisters(int64_t consumerWarpgroups);

/// Why `op`'s tile cannot be copied by TMA, "" where it can (the `tma` knob's rule,
/// TensorMemory.cpp): its source an argument of `func` of rank 2-5, bf16 / f16, whole
/// 64-column blocks of 8 to 256 rows in eights, whole 16-byte chunks for `numThreads`.
std::string tensorCopyRefusal(tile::LoadOp op, mlir::func::FuncOp func, int64_t numThreads);

/// The ops reading `tile` directly or through tile.trans (the transposes themselves not
/// included): a ring tile's readers.
llvm::SmallVector<mlir::Operation *> readersThroughTransposes(mlir::Value tile);

/// A copy of `branch` at `b` without results, on `condition`, with its else region where
/// `branch` has one; `fill` writes each region's body from the original's block, the
/// builder at the copy's terminator (a producer partition's branches, in the pass and in
/// the lowering).
mlir::LogicalResult copyBranchShell(mlir::OpBuilder &b, mlir::scf::IfOp branch,
                                    mlir::Value condition,
                                    llvm::function_ref<mlir::LogicalResult(mlir::Block &)> fill);
} // namespace tessera::gpu

#endif
