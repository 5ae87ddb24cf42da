//===- Registration.h - every dialect and pass Tessera uses -----*- C++ -*-===//
#ifndef TESSERA_COMPILER_REGISTRATION_H
#define TESSERA_COMPILER_REGISTRATION_H

namespace mlir {
class DialectRegistry;
}

namespace tessera {
/// Tessera's dialects, the upstream dialects its pipelines produce, and the external
/// interface models (bufferization, deallocation, LLVM translation) they need.
void registerAllDialects(mlir::DialectRegistry &registry);
/// Tessera's passes and named pipelines, and the upstream passes those pipelines use,
/// so that every printed pipeline replays in tessera-opt.
void registerAllPasses();
} // namespace tessera

#endif
