//===- tessera-opt.cpp - the Tessera optimizer driver ---------------------===//
//
// Every Tessera dialect, pass and named pipeline, plus the upstream dialects and passes
// the pipelines use, so that any stage a user saw from Python replays here.
//
//===----------------------------------------------------------------------===//
#include "compiler/Registration.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  tessera::registerAllDialects(registry);
  tessera::registerAllPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Tessera optimizer driver\n", registry));
}
