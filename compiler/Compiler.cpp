//===- Compiler.cpp - the narrow facade over the Tessera compiler ---------===//
#include "compiler/Compiler.h"

#include "codegen/GpuChecks.h"
#include "codegen/Pipelines.h"
#include "compiler/Registration.h"
#include "runtime/LaunchRecord.h"

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
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
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

  /// The function `entry` of `module`; fails naming it where there is none.
  func::FuncOp entryFunction(ModuleOp module, const std::string &entry) {
    auto func = module.lookupSymbol<func::FuncOp>(entry);
    if (!func)
      fail("no function '" + entry + "' in the module");
    return func;
  }

  /// A pass manager running `pipeline`.
  std::unique_ptr<PassManager> passManager(const std::string &pipeline) {
    // Pipelines are printed anchored on the module, as tessera-opt's --pass-pipeline
    // takes them; the pass manager below is that anchor, so it gets the inner list.
    StringRef inner = pipeline;
    if (!inner.consume_front("builtin.module(") || !inner.consume_back(")"))
      fail("pipeline '" + pipeline + "' is not anchored on builtin.module");
    auto pm = std::make_unique<PassManager>(&context, ModuleOp::getOperationName());
    std::string parseErrors;
    llvm::raw_string_ostream errorStream(parseErrors);
    if (failed(parsePassPipeline(inner, *pm, errorStream)))
      fail("bad pipeline '" + pipeline + "': " + parseErrors);
    return pm;
  }

  void runPipeline(ModuleOp module, const std::string &pipeline) {
    if (failed(passManager(pipeline)->run(module)))
      fail("pipeline '" + pipeline + "' failed");
  }
};

/// Prints the whole module right after the first run of the pass named `name` (its
/// command-line argument) and lists the passes run, in order.
struct PrintAfterPass : PassInstrumentation {
  PrintAfterPass(StringRef name, ModuleOp top, std::string &printed,
                 SmallVectorImpl<std::string> &ran)
      : name(name), top(top), printed(printed), ran(ran) {}
  void runAfterPass(Pass *pass, Operation *) override {
    StringRef argument = pass->getArgument();
    if (argument.empty()) // a nested pass manager's adaptor
      return;
    if (!llvm::is_contained(ran, argument))
      ran.push_back(argument.str());
    if (argument == name && printed.empty()) {
      llvm::raw_string_ostream os(printed);
      top->print(os);
    }
  }
  StringRef name;
  ModuleOp top;
  std::string &printed;
  SmallVectorImpl<std::string> &ran;
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
  if (name == "tgpu")
    return Stage::TgpuSm90a;
  if (name == "tgpu-sm_80")
    return Stage::TgpuSm80;
  if (name == "llvm")
    return Stage::Llvm;
  throw CompileError("unknown stage '" + name +
                     "' (expected attn, tile, tgpu, tgpu-sm_80 or llvm)");
}

/// The tiling options every pipeline takes; grad-query-tile only where set, so that the
/// text of a default config stays as it was before the knob.
static std::string tilingOptions(const tessera::TuningConfig &config) {
  return "block-m=" + std::to_string(config.blockM) +
         " block-n=" + std::to_string(config.blockN) +
         " num-warps=" + std::to_string(config.numWarps) +
         " num-stages=" + std::to_string(config.numStages) +
         " split=" + std::to_string(config.split) +
         (config.gradQueryTile ? " grad-query-tile=" + std::to_string(config.gradQueryTile)
                               : std::string());
}

/// The GPU pipelines' own options (tessera-gpu and the tgpu stages alike), boolean knobs
/// only where set: a default config's pipeline text stays as it was.
static std::string gpuKnobs(const tessera::TuningConfig &config) {
  return " min-blocks=" + std::to_string(config.minBlocks) +
         (config.tma ? " tma=true" : "") +
         (config.warpSpecialize ? " warp-specialize=true" : "") +
         (config.pingpong ? " pingpong=true" : "") +
         (config.intraWarpgroupOverlap ? " intra-warpgroup-overlap=true" : "") +
         (config.persistent ? " persistent=true" : "") +
         (config.gradDqAtomic ? " grad-dq-atomic=true" : "");
}

std::string tessera::pipelineFor(Stage stage, const TuningConfig &config) {
  std::string options = tilingOptions(config);
  switch (stage) {
  case Stage::Attn:
    return "builtin.module()";
  case Stage::Tile:
    return "builtin.module(tessera-to-tile{" + options + "})";
  case Stage::TgpuSm90a:
  case Stage::TgpuSm80:
    return "builtin.module(tessera-to-tgpu{" + options + gpuKnobs(config) +
           (stage == Stage::TgpuSm90a ? " chip=sm_90a" : " chip=sm_80") + "})";
  case Stage::Llvm:
    return "builtin.module(tessera-cpu{" + options + "})";
  }
  return "";
}

std::string tessera::gpuPipelineFor(const TuningConfig &config, const std::string &chip) {
  // The chip is spliced into pipeline text: reject it before it can break the text.
  if (std::string reason = unsupportedChipReason(chip); !reason.empty())
    throw CompileError(reason);
  return "builtin.module(tessera-gpu{" + tilingOptions(config) + gpuKnobs(config) +
         " chip=" + chip + "})";
}

/// Writes a grid-size formula in codegen's integer encoding (codegen/gpu/LaunchRecord.cpp,
/// gridFormula)
/// as a launch-record extent (docs/LAUNCH_RECORD.md); false for one it does not know.
static bool writeExtent(ArrayRef<int64_t> f, llvm::raw_ostream &os) {
  if (f.size() < 2)
    return false;
  if (f[0] == -5) { // [-5, k]: k blocks per SM (a persistent grid)
    if (f.size() != 2 || f[1] < 1)
      return false;
    os << "{\"sm_count\": " << f[1] << "}";
    return true;
  }
  // [-4 | -6, n, f1 (n entries)..., f2...]: the product or the minimum of two formulas
  if (f[0] == -4 || f[0] == -6) {
    if (f[1] < 2 || size_t(f[1]) + 4 > f.size())
      return false;
    os << (f[0] == -4 ? "{\"product\": [" : "{\"min\": [");
    if (!writeExtent(f.slice(2, f[1]), os))
      return false;
    os << ", ";
    if (!writeExtent(f.drop_front(2 + f[1]), os))
      return false;
    os << "]}";
    return true;
  }
  if (f[0] == -2 || f[0] == -3) { // [-2 | -3, a, d, a2, d2]
    if (f.size() != 5)
      return false;
    os << "{\"dim\": [" << f[1] << ", " << f[2] << "], \""
       << (f[0] == -2 ? "zero_if_equal" : "zero_unless_equal") << "\": [" << f[3] << ", "
       << f[4] << "]}";
    return true;
  }
  if (f[0] == -1) // [-1, c, q...]
    os << "{\"constant\": " << f[1];
  else if (f[0] >= 0) // [a, d, q...]
    os << "{\"dim\": [" << f[0] << ", " << f[1] << "]";
  else
    return false;
  SmallVector<int64_t> divisors;
  for (int64_t q : f.drop_front(2))
    if (q != 1) // a division by 1 rounds nothing
      divisors.push_back(q);
  if (!divisors.empty()) {
    os << ", \"divide\": [";
    llvm::interleaveComma(divisors, os);
    os << "]";
  }
  os << "}";
  return true;
}

/// The launch record of `func` (version tessera::runtime::kLaunchRecordVersion): the
/// caller's arguments' ranks, the workspaces and the launches, from the attributes the GPU
/// pipeline left on it. False where an attribute is not of the shape codegen writes.
static bool writeLaunchRecord(func::FuncOp func, ArrayAttr launches, ArrayAttr workspaces,
                              ArrayAttr tensorMaps, std::string &out) {
  llvm::raw_string_ostream json(out);
  auto extents = [&](Attribute list) {
    auto array = dyn_cast_or_null<ArrayAttr>(list);
    if (!array)
      return false;
    json << "[";
    for (auto [i, dim] : llvm::enumerate(array)) {
      auto formula = dyn_cast<DenseI64ArrayAttr>(dim);
      json << (i ? ", " : "");
      if (!formula || !writeExtent(formula.asArrayRef(), json))
        return false;
    }
    json << "]";
    return true;
  };
  if (func.getNumArguments() < workspaces.size())
    return false;
  json << "{\"version\": " << tessera::runtime::kLaunchRecordVersion << ", \"arguments\": [";
  for (unsigned i = 0, e = func.getNumArguments() - workspaces.size(); i < e; ++i) {
    auto type = dyn_cast<MemRefType>(func.getArgument(i).getType());
    if (!type)
      return false;
    json << (i ? ", " : "") << type.getRank();
  }
  json << "], \"workspaces\": [";
  for (auto [i, attr] : llvm::enumerate(workspaces)) {
    auto w = dyn_cast<DictionaryAttr>(attr);
    auto dtype = w ? w.getAs<StringAttr>("dtype") : StringAttr();
    if (!dtype)
      return false;
    json << (i ? ", " : "") << "{\"dtype\": \"" << dtype.getValue() << "\", \"shape\": ";
    if (!extents(w.get("shape")))
      return false;
    json << "}";
  }
  // TMA descriptors (docs/LAUNCH_RECORD.md, "The facade's attributes"); none where codegen
  // set no `tessera.tensor_maps`.
  json << "], \"tensor_maps\": [";
  if (!tensorMaps)
    tensorMaps = ArrayAttr::get(func.getContext(), {});
  for (auto [i, attr] : llvm::enumerate(tensorMaps)) {
    auto map = dyn_cast<DictionaryAttr>(attr);
    auto argument = map ? map.getAs<IntegerAttr>("argument") : IntegerAttr();
    auto dtype = map ? map.getAs<StringAttr>("dtype") : StringAttr();
    auto box = map ? map.getAs<DenseI64ArrayAttr>("box") : DenseI64ArrayAttr();
    auto swizzle = map ? map.getAs<IntegerAttr>("swizzle") : IntegerAttr();
    if (!argument || !dtype || !box || !swizzle || map.size() != 4)
      return false;
    json << (i ? ", " : "") << "{\"argument\": " << argument.getInt() << ", \"dtype\": \""
         << dtype.getValue() << "\", \"box\": [";
    llvm::interleaveComma(box.asArrayRef(), json);
    json << "], \"swizzle\": " << swizzle.getInt() << "}";
  }
  json << "], \"launches\": [";
  for (auto [i, attr] : llvm::enumerate(launches)) {
    auto launch = dyn_cast<DictionaryAttr>(attr);
    auto kernel = launch ? launch.getAs<StringAttr>("kernel") : StringAttr();
    auto block = launch ? launch.getAs<IntegerAttr>("block") : IntegerAttr();
    auto smem = launch ? launch.getAs<IntegerAttr>("smem") : IntegerAttr();
    if (!kernel || !block || !smem)
      return false;
    json << (i ? ", " : "") << "{\"kernel\": \"" << kernel.getValue()
         << "\", \"block\": " << block.getInt() << ", \"smem\": " << smem.getInt()
         << ", \"grid\": ";
    if (!extents(launch.get("grid")))
      return false;
    json << "}";
  }
  json << "]}";
  return true;
}

/// The launch record of `func` from its `tessera.*` attributes; fails through `cc` where
/// they are missing or not of the shape docs/LAUNCH_RECORD.md gives.
static std::string recordFromAttributes(CompilerContext &cc, func::FuncOp func,
                                        const std::string &entry) {
  auto launches = func->getAttrOfType<ArrayAttr>("tessera.launches");
  auto workspaces = func->getAttrOfType<ArrayAttr>("tessera.workspaces");
  auto tensorMaps = func->getAttrOfType<ArrayAttr>("tessera.tensor_maps");
  std::string json;
  if (!launches || !workspaces || !writeLaunchRecord(func, launches, workspaces, tensorMaps, json))
    cc.fail("the GPU pipeline wrote a launch record for '" + entry +
            "' that the facade cannot translate (codegen/gpu and compiler/Compiler.cpp disagree)");
  return json;
}

tessera::GpuKernelImage tessera::compileForGpu(const std::string &attnModule,
                                               const std::string &entry,
                                               const TuningConfig &config,
                                               const std::string &chip) {
  ensureRegistered();
  CompilerContext cc;
  auto module = cc.parse(attnModule);
  cc.entryFunction(*module, entry);
  cc.runPipeline(*module, gpuPipelineFor(config, chip));
  auto func = module->lookupSymbol<func::FuncOp>(entry);
  auto binary = module->lookupSymbol<mlir::gpu::BinaryOp>(entry + "_kernels");
  if (!binary || !func || !func->hasAttr("tessera.launches") ||
      binary.getObjects().size() != 1)
    cc.fail("the GPU pipeline produced no kernel for '" + entry + "'");
  GpuKernelImage image;
  image.ptx = cast<mlir::gpu::ObjectAttr>(binary.getObjects()[0]).getObject().str();
  image.launchesJson = recordFromAttributes(cc, func, entry);
  return image;
}

std::string tessera::launchRecordOf(const std::string &gpuModule, const std::string &entry) {
  ensureRegistered();
  CompilerContext cc;
  auto module = cc.parse(gpuModule);
  return recordFromAttributes(cc, cc.entryFunction(*module, entry), entry);
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

std::string tessera::irAfterPass(const std::string &attnModule, const std::string &pipeline,
                                 const std::string &passName) {
  ensureRegistered();
  CompilerContext cc;
  auto module = cc.parse(attnModule);
  std::unique_ptr<PassManager> pm = cc.passManager(pipeline);
  std::string printed;
  SmallVector<std::string> ran;
  pm->addInstrumentation(std::make_unique<PrintAfterPass>(passName, *module, printed, ran));
  // The IR after the pass, even where a later pass fails (what a user debugging that
  // failure wants to see).
  if (failed(pm->run(*module)) && printed.empty())
    cc.fail("pipeline '" + pipeline + "' failed before '" + passName + "' ran");
  if (printed.empty())
    throw CompileError("no pass '" + passName + "' runs in the pipeline; its passes, in order: " +
                       llvm::join(ran, ", "));
  return printed;
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
  auto func = impl->cc.entryFunction(*module, entry);
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
