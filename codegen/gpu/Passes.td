//===- Passes.td - GPU code generation passes --------------*- tablegen -*-===//
#ifndef TESSERA_GPU_PASSES
#define TESSERA_GPU_PASSES

include "mlir/Pass/PassBase.td"

def TileToGpu : Pass<"tessera-tile-to-gpu", "mlir::ModuleOp"> {
  let summary = "distribute tile programs over GPU threads (mma.sync or wgmma tensor cores)";
  let description = [{
    Outlines every `tile.grid` into a `gpu.func` (one CUDA block per program,
    32 x num_warps threads) and distributes its tiles over the threads: each tile value
    gets a layout (mma accumulator, row/column slices, mma operands), element-wise ops
    run per thread, row reductions end with quad shuffles, `tile.dot` becomes
    `nvvm.mma.sync` m16n8k16. The host function keeps a `tessera.launches` record (kernel
    name, grid as formulas of argument sizes, block size) for runtimes without MLIR.
  }];
  let options = [
    Option<"wgmma", "wgmma", "bool", /*default=*/"false",
           "use Hopper warpgroup MMA (sm_90a) for programs that fit it: warpgroups of 4 "
           "warps each owning 64 rows, operands staged by cp.async in swizzled shared "
           "memory; other programs keep mma.sync">,
    Option<"minBlocks", "min-blocks", "int64_t", /*default=*/"0",
           "blocks per SM each kernel's registers must leave room for (ptxas "
           ".minnctapersm); 0: only what a stage plan made room for in shared memory">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"
  ];
}

#endif // TESSERA_GPU_PASSES
