//===- TileAttrs.td - tile attributes -----------------------*- tablegen -*-===//
#ifndef TESSERA_TILE_ATTRS
#define TESSERA_TILE_ATTRS

include "dialect/tile/TileDialect.td"

def Tile_Combiner : I32EnumAttr<"Combiner", "reduction combiner", [
      I32EnumAttrCase<"sum", 0>,
      I32EnumAttrCase<"max", 1>,
      I32EnumAttrCase<"min", 2>
    ]> {
  let cppNamespace = "::tessera::tile";
  let genSpecializedAttr = 0;
}
def Tile_CombinerAttr : EnumAttr<Tile_Dialect, Tile_Combiner, "combiner"> {
  let assemblyFormat = "`<` $value `>`";
}

def Tile_ConfigAttr : AttrDef<Tile_Dialect, "Config"> {
  let mnemonic = "config";
  let summary = "tuning knobs of one kernel";
  let description = [{
    Tile sizes, warps per program, software-pipeline stages and the split factor (how many
    programs share one output tile's reduction or value dimension). Every kernel carries
    one, so a tuned kernel is reproducible from its IR.

    ```mlir
    #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1>
    ```
  }];
  let parameters = (ins "int64_t":$block_m, "int64_t":$block_n, "int64_t":$num_warps,
                        "int64_t":$num_stages, "int64_t":$split);
  let assemblyFormat = [{
    `<` `block_m` `=` $block_m `,` `block_n` `=` $block_n `,` `num_warps` `=` $num_warps
    `,` `num_stages` `=` $num_stages `,` `split` `=` $split `>`
  }];
  let genVerifyDecl = 1;
}

#endif // TESSERA_TILE_ATTRS
