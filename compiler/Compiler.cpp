//===- Compiler.cpp - the narrow facade over the Tessera compiler ---------===//
#include "compiler/Compiler.h"

#include "codegen/GpuChecks.h"
#include "codegen/Pipelines.h"
#include "compiler/Registration.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <mutex>

using namespace mlir;
using tessera::CompileError;

namespace {
/// A context with every Tessera dialect loaded and a handler that collects diagnostics.
struct CompilerContext {
  MLIRContext context;
  std::string diagnostics;
  ScopedDiagnosticHandler handler;

  CompilerContext()
      : context(makeRegistry(), MLIRContext::Threading::DISABLED),
        handler(&context, [this](Diagnostic &diag) {
          llvm::raw_string_ostream os(diagnostics);
          const char *severity = diag.getSeverity() == DiagnosticSeverity::Error     ? "error"
                             : diag.getSeverity() == DiagnosticSeverity::Warning ? "warning"
                                                                                 : "note";
          os << diag.getLocation() << ": " << severity << ": " << diag << "\n";
          for (Diagnostic &note : diag.getNotes())
            os << "  " << note.getLocation() << ": note: " << note << "\n";
          return success();
        }) {
    context.loadAllAvailableDialects();
  }

  static DialectRegistry makeRegistry() {
    DialectRegistry registry;
    tessera::registerAllDialects(registry);
    return registry;
  }

  [[noreturn]] void fail(const std::string &what) {
    throw CompileError(what + (diagnostics.empty() ? "" : ":\n" + diagnostics));
  }

  OwningOpRef<ModuleOp> parse(const std::string &text) {
    // Verification is separate from parsing so each failure says which it is.
    ParserConfig config(&context, /*verifyAfterParse=*/false);
    auto module = parseSourceString<ModuleOp>(text, config, "spec");
    if (!module)
      fail("the module does not parse");
    if (failed(mlir::verify(*module)))
      fail("the module does not verify");
    return module;
  }

  void runPipeline(ModuleOp module, const std::string &pipeline) {
    // Pipelines are printed anchored on the module, as tessera-opt's --pass-pipeline
    // takes them; the pass manager below is that anchor, so it gets the inner list.
    StringRef inner = pipeline;
    if (!inner.consume_front("builtin.module(") || !inner.consume_back(")"))
      fail("pipeline '" + pipeline + "' is not anchored on builtin.module");
    PassManager pm(&context, ModuleOp::getOperationName());
    std::string parseErrors;
    llvm::raw_string_ostream errorStream(parseErrors);
    if (failed(parsePassPipeline(inner, pm, errorStream)))
      fail("bad pipeline '" + pipeline + "': " + parseErrors);
    if (failed(pm.run(module)))
      fail("pipeline '" + pipeline + "' failed");
  }
};

std::string print(ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  return text;
}

std::once_flag registerOnce;
void ensureRegistered() {
  std::call_once(registerOnce, [] { tessera::registerAllPasses(); });
}
} // namespace

tessera::Stage tessera::parseStage(const std::string &name) {
  if (name == "attn")
    return Stage::Attn;
  if (name == "tile")
    return Stage::Tile;
  if (name == "llvm")
    return Stage::Llvm;
  throw CompileError("unknown stage '" + name + "' (expected attn, tile or llvm)");
}

std::string tessera::pipelineFor(Stage stage, const TuningConfig &config) {
  std::string options = "block-m=" + std::to_string(config.blockM) +
                        " block-n=" + std::to_string(config.blockN) +
                        " num-warps=" + std::to_string(config.numWarps) +
                        " num-stages=" + std::to_string(config.numStages) +
                        " split=" + std::to_string(config.split);
  switch (stage) {
  case Stage::Attn:
    return "builtin.module()";
  case Stage::Tile:
    return "builtin.module(tessera-to-tile{" + options + "})";
  case Stage::Llvm:
    return "builtin.module(tessera-cpu{" + options + "})";
  }
  return "";
}

std::string tessera::gpuPipelineFor(const TuningConfig &config, const std::string &chip) {
  // The chip is spliced into pipeline text: reject it before it can break the text.
  if (std::string reason = unsupportedChipReason(chip); !reason.empty())
    throw CompileError(reason);
  return "builtin.module(tessera-gpu{block-m=" + std::to_string(config.blockM) +
         " block-n=" + std::to_string(config.blockN) +
         " num-warps=" + std::to_string(config.numWarps) +
         " num-stages=" + std::to_string(config.numStages) +
         " split=" + std::to_string(config.split) +
         " min-blocks=" + std::to_string(config.minBlocks) + " chip=" + chip + "})";
}

tessera::GpuKernelImage tessera::compileForGpu(const std::string &attnModule,
                                               const std::string &entry,
                                               const TuningConfig &config,
                                               const std::string &chip) {
  ensureRegistered();
  CompilerContext cc;
  auto module = cc.parse(attnModule);
  auto func = module->lookupSymbol<func::FuncOp>(entry);
  if (!func)
    cc.fail("no function '" + entry + "' in the module");
  cc.runPipeline(*module, gpuPipelineFor(config, chip));
  func = module->lookupSymbol<func::FuncOp>(entry);
  auto binary = module->lookupSymbol<mlir::gpu::BinaryOp>(entry + "_kernels");
  auto launches = func ? func->getAttrOfType<ArrayAttr>("tessera.launches") : ArrayAttr();
  auto workspaces = func ? func->getAttrOfType<ArrayAttr>("tessera.workspaces") : ArrayAttr();
  if (!binary || !launches || !workspaces || binary.getObjects().size() != 1)
    cc.fail("the GPU pipeline produced no kernel for '" + entry + "'");
  GpuKernelImage image;
  image.ptx = cast<mlir::gpu::ObjectAttr>(binary.getObjects()[0]).getObject().str();
  llvm::raw_string_ostream json(image.launchesJson);
  auto formula = [&](Attribute a) {
    json << "[";
    llvm::interleaveComma(cast<DenseI64ArrayAttr>(a).asArrayRef(), json);
    json << "]";
  };
  json << "{\"workspaces\": [";
  for (auto [i, w] : llvm::enumerate(workspaces.getAsRange<DictionaryAttr>())) {
    json << (i ? ", " : "") << "{\"dtype\": \""
         << cast<StringAttr>(w.get("dtype")).getValue() << "\", \"shape\": [";
    for (auto [j, dim] : llvm::enumerate(cast<ArrayAttr>(w.get("shape")))) {
      json << (j ? ", " : "");
      formula(dim);
    }
    json << "]}";
  }
  json << "], \"launches\": [";
  for (auto [i, launch] : llvm::enumerate(launches.getAsRange<DictionaryAttr>())) {
    json << (i ? ", " : "") << "{\"kernel\": \""
         << cast<StringAttr>(launch.get("kernel")).getValue() << "\", \"block\": "
         << cast<IntegerAttr>(launch.get("block")).getInt() << ", \"smem\": "
         << cast<IntegerAttr>(launch.get("smem")).getInt() << ", \"grid\": [";
    for (auto [j, dim] : llvm::enumerate(cast<ArrayAttr>(launch.get("grid")))) {
      json << (j ? ", " : "");
      formula(dim);
    }
    json << "]}";
  }
  json << "]}";
  return image;
}

std::string tessera::verifyModule(const std::string &attnModule) {
  CompilerContext cc;
  return print(*cc.parse(attnModule));
}

std::string tessera::lowerModule(const std::string &attnModule, Stage stage,
                                 const TuningConfig &config) {
  ensureRegistered();
  CompilerContext cc;
  auto module = cc.parse(attnModule);
  cc.runPipeline(*module, pipelineFor(stage, config));
  return print(*module);
}

struct tessera::CpuKernel::Impl {
  CompilerContext cc;
  std::unique_ptr<ExecutionEngine> engine;
  std::string entry;
  size_t numArgs = 0;
};

tessera::CpuKernel::CpuKernel(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}
tessera::CpuKernel::~CpuKernel() = default;

std::unique_ptr<tessera::CpuKernel>
tessera::CpuKernel::compile(const std::string &attnModule, const std::string &entry,
                            const TuningConfig &config) {
  ensureRegistered();
  static std::once_flag nativeTarget;
  std::call_once(nativeTarget, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  auto impl = std::make_unique<Impl>();
  auto module = impl->cc.parse(attnModule);
  auto func = module->lookupSymbol<func::FuncOp>(entry);
  if (!func)
    impl->cc.fail("no function '" + entry + "' in the module");
  impl->numArgs = func.getNumArguments() + func.getNumResults();
  impl->entry = entry;
  impl->cc.runPipeline(*module, pipelineFor(Stage::Llvm, config));

  ExecutionEngineOptions options;
  options.transformer = makeOptimizingTransformer(/*optLevel=*/2, /*sizeLevel=*/0,
                                                  /*targetMachine=*/nullptr);
  auto engine = ExecutionEngine::create(*module, options);
  if (!engine)
    impl->cc.fail("JIT compilation failed: " + llvm::toString(engine.takeError()));
  impl->engine = std::move(*engine);
  return std::unique_ptr<CpuKernel>(new CpuKernel(std::move(impl)));
}

void tessera::CpuKernel::run(const std::vector<BufferArg> &args) {
  if (args.size() != impl->numArgs)
    throw CompileError("kernel '" + impl->entry + "' takes " +
                       std::to_string(impl->numArgs) + " buffers, got " +
                       std::to_string(args.size()));
  // Each buffer becomes a ranked memref descriptor {allocated, aligned, offset,
  // sizes[rank], strides[rank]}; the C interface takes a pointer to each.
  std::vector<std::vector<int64_t>> descriptors;
  descriptors.reserve(args.size());
  for (const BufferArg &a : args) {
    std::vector<int64_t> d;
    d.push_back(reinterpret_cast<int64_t>(a.data));
    d.push_back(reinterpret_cast<int64_t>(a.data));
    d.push_back(0);
    d.insert(d.end(), a.sizes.begin(), a.sizes.end());
    d.insert(d.end(), a.strides.begin(), a.strides.end());
    descriptors.push_back(std::move(d));
  }
  std::vector<void *> descriptorPtrs, packed;
  for (auto &d : descriptors)
    descriptorPtrs.push_back(d.data());
  for (auto &p : descriptorPtrs)
    packed.push_back(&p);
  if (llvm::Error err = impl->engine->invokePacked("_mlir_ciface_" + impl->entry, packed))
    throw CompileError("kernel launch failed: " + llvm::toString(std::move(err)));
}
