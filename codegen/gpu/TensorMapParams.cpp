//===- TensorMapParams.cpp - TMA descriptors as byval grid constants --------===//
//
// tessera-tgpu-outline-kernels appends a kernel's CUtensorMaps (a function with a TMA
// grid) as trailing `!llvm.ptr` parameters and counts them in `tessera.tensor_map_params`;
// the GPU-to-NVVM lowering drops argument attributes such as `llvm.byval`, and
// `nvvm.grid_constant` is only valid on an LLVM kernel, so they are attached here, once
// the kernels are LLVM functions.
//
//===----------------------------------------------------------------------===//
#include "codegen/gpu/Passes.h"
#include "codegen/gpu/TensorMemory.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace tessera::gpu {
#define GEN_PASS_DEF_TENSORMAPPARAMS
#include "codegen/gpu/Passes.h.inc"
} // namespace tessera::gpu

using namespace mlir;

namespace {
struct TensorMapParamsPass
    : tessera::gpu::impl::TensorMapParamsBase<TensorMapParamsPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    auto descriptor = LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), 128);
    for (auto func : getOperation().getOps<LLVM::LLVMFuncOp>()) {
      auto count = func->getAttrOfType<IntegerAttr>(tessera::gpu::kTensorMapParamsAttr);
      if (!count)
        continue;
      unsigned n = func.getNumArguments();
      if (count.getInt() < 0 || uint64_t(count.getInt()) > n) {
        func.emitError("tessera.tensor_map_params: ")
            << count.getInt() << " descriptors, but the kernel has " << n << " parameters";
        return signalPassFailure();
      }
      for (unsigned i = n - count.getInt(); i < n; ++i) {
        if (!isa<LLVM::LLVMPointerType>(func.getArgument(i).getType())) {
          func.emitError("tessera.tensor_map_params: parameter ") << i << " is not a pointer";
          return signalPassFailure();
        }
        func.setArgAttr(i, LLVM::LLVMDialect::getByValAttrName(), TypeAttr::get(descriptor));
        func.setArgAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                        IntegerAttr::get(IntegerType::get(ctx, 64), 64));
        func.setArgAttr(i, NVVM::NVVMDialect::getGridConstantAttrName(), UnitAttr::get(ctx));
      }
      func->removeAttr(tessera::gpu::kTensorMapParamsAttr);
    }
  }
};
} // namespace
