//===- TileDialect.td - the block-program dialect ----------*- tablegen -*-===//
#ifndef TESSERA_TILE_DIALECT
#define TESSERA_TILE_DIALECT

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Tile_Dialect : Dialect {
  let name = "tile";
  let summary = "What one program instance does with its tiles.";
  let description = [{
    A `tile.grid` launches one program instance per grid point; inside, values are
    statically shaped tensors (tiles) that live in registers or shared memory once a target
    lowering has chosen. Tiles come from and go to global memory with bounded
    `tile.load` / `tile.store` (out-of-bounds elements are padded on load, dropped on
    store), meet in `tile.dot`, and are combined with `tile.reduce`, `tile.broadcast`,
    upstream `arith` / `math` element-wise ops on tensors, and `scf.for` loops carrying
    state. Tuning knobs are the typed `#tile.config` attribute on the grid, so a tuned
    kernel replays from its IR.
  }];
  let cppNamespace = "::tessera::tile";
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::tensor::TensorDialect"];
}

class Tile_Op<string mnemonic, list<Trait> traits = []>
    : Op<Tile_Dialect, mnemonic, traits>;

#endif // TESSERA_TILE_DIALECT
