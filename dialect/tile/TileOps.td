//===- TileOps.td - tile operations ------------------------*- tablegen -*-===//
#ifndef TESSERA_TILE_OPS
#define TESSERA_TILE_OPS

include "dialect/tile/TileDialect.td"
include "dialect/tile/TileAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

def Tile_GridOp : Tile_Op<"grid", [SingleBlock, NoTerminator, RecursiveMemoryEffects]> {
  let summary = "runs its body once per point of a grid of program instances";
  let description = [{
    The body is one program instance; `tile.program_id` inside names its coordinates. The
    grid sizes are run-time values; the `config` attribute holds the tuning knobs the
    body was built for. Instances are independent: they may run in any order or at once.

    ```mlir
    tile.grid [%batch, %heads, %qtiles]
        config = #tile.config<block_m = 64, block_n = 64, num_warps = 4, num_stages = 2, split = 1> {
      %b = tile.program_id 0 : index
      ...
    }
    ```
  }];
  let arguments = (ins Variadic<Index>:$sizes, Tile_ConfigAttr:$config);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "`[` $sizes `]` `config` `=` $config attr-dict-with-keyword custom<Body>($body)";
  let hasVerifier = 1;
}

def Tile_ProgramIdOp : Tile_Op<"program_id", [Pure]> {
  let summary = "coordinate of this program instance along one grid dimension";
  let description = [{
    ```mlir
    %m = tile.program_id 2 : index
    ```
  }];
  let arguments = (ins I64Attr:$dim);
  let results = (outs Index:$result);
  let assemblyFormat = "$dim attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Tile_LoadOp : Tile_Op<"load"> {
  let summary = "bounded load of a tile from a global buffer";
  let description = [{
    Reads a tile whose rank `r` may be lower than the buffer's rank `R`: one index per
    buffer dimension gives the tile's origin; the tile spans the last `r` dimensions.
    Elements outside the buffer read `padding` (zero unless given), so ragged edges need
    no special case in the program.

    ```mlir
    %t = tile.load %q[%b, %h, %m0, %c0] : memref<?x?x?x64xf32> -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "buffer", [MemRead]>:$source,
                       Variadic<Index>:$indices,
                       OptionalAttr<TypedAttrInterface>:$padding);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $source `[` $indices `]` attr-dict `:` type($source) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_StoreOp : Tile_Op<"store"> {
  let summary = "bounded store of a tile to a global buffer";
  let description = [{
    The inverse of `tile.load`: elements that fall outside the buffer are dropped.

    ```mlir
    tile.store %o, %out[%b, %h, %m0, %c0] : tensor<64x64xf32>, memref<?x?x?x64xf32>
    ```
  }];
  let arguments = (ins AnyStaticShapeTensor:$value,
                       Arg<AnyMemRef, "buffer", [MemWrite]>:$dest,
                       Variadic<Index>:$indices);
  let assemblyFormat = [{
    $value `,` $dest `[` $indices `]` attr-dict `:` type($value) `,` type($dest)
  }];
  let hasVerifier = 1;
}

def Tile_GatherOp : Tile_Op<"gather"> {
  let summary = "reads a buffer at tiles of indices, one per buffer dimension";
  let description = [{
    `result[p] = source[indices_0[p], ..., indices_r-1[p]]` for every position `p` of
    the index tiles (all of one shape, as many as the buffer has dimensions); a position
    whose index is outside its dimension reads `padding` (zero unless given). Used for
    captured tables: document ids, per-head ALiBi slopes, a bias[h, i - j + N - 1].

    ```mlir
    %d = tile.gather %doc[%qidx] : memref<?xi32>, tensor<64x64xi32> -> tensor<64x64xi32>
    %s = tile.gather %bias[%h, %rel] : memref<?x?xf32>, tensor<64x64xi32>, tensor<64x64xi32>
         -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "table", [MemRead]>:$source,
                       Variadic<AnyStaticShapeTensor>:$indices,
                       OptionalAttr<TypedAttrInterface>:$padding);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $source `[` $indices `]` attr-dict `:` type($source) `,` type($indices) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_ScatterAddOp : Tile_Op<"scatter_add", [AttrSizedOperandSegments]> {
  let summary = "adds a tile of f32 values into a table at tiles of indices";
  let description = [{
    `table[indices_0[p], ..., indices_r-1[p]] += values[p]` for every position `p` of the
    value tile where `mask[p]` holds (every position without a mask); a position whose
    index is outside its dimension adds nothing. Positions may name the same entry (a
    relative-position bias read once per diagonal): the CPU adds them one after another
    in row-major order (the same bits every run), the GPU with one atomic reduction
    (`red.global.add.f32`) per element, in no fixed order. Used for the gradients of
    captured float tables.

    ```mlir
    tile.scatter_add %share, %dbias[%h, %rel] mask(%keep : tensor<64x64xi1>)
        : tensor<64x64xf32>, memref<?x?xf32>, tensor<64x64xi32>, tensor<64x64xi32>
    ```
  }];
  let arguments = (ins AnyStaticShapeTensor:$values,
                       Arg<AnyMemRef, "table", [MemRead, MemWrite]>:$table,
                       Variadic<AnyStaticShapeTensor>:$indices,
                       Optional<AnyStaticShapeTensor>:$mask);
  let assemblyFormat = [{
    $values `,` $table `[` $indices `]` (`mask` `(` $mask^ `:` type($mask) `)`)? attr-dict
    `:` type($values) `,` type($table) `,` type($indices)
  }];
  let hasVerifier = 1;
}

def Tile_DotOp : Tile_Op<"dot", [Pure, AllTypesMatch<["acc", "result"]>]> {
  let summary = "tile matrix product with accumulation: result = lhs * rhs + acc";
  let description = [{
    `lhs` is `M x K`, `rhs` is `K x N`, `acc` and the result `M x N`. Operands may be
    f16/bf16/f32; the accumulator is f32 (tensor cores accumulate in f32).

    ```mlir
    %s = tile.dot %q, %kt, %zero : tensor<64x64xf32>, tensor<64x32xf32> -> tensor<64x32xf32>
    ```
  }];
  let arguments = (ins AnyStaticShapeTensor:$lhs, AnyStaticShapeTensor:$rhs,
                       AnyStaticShapeTensor:$acc);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $acc attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_TransOp : Tile_Op<"trans", [Pure]> {
  let summary = "transposes a 2-D tile";
  let description = [{
    ```mlir
    %kt = tile.trans %k : tensor<32x64xf32> -> tensor<64x32xf32>
    ```
  }];
  let arguments = (ins AnyStaticShapeTensor:$input);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Tile_ReduceOp : Tile_Op<"reduce", [Pure]> {
  let summary = "reduces a tile along one axis";
  let description = [{
    ```mlir
    %m = tile.reduce <max> %s axis 1 : tensor<64x32xf32> -> tensor<64xf32>
    ```
  }];
  let arguments = (ins Tile_CombinerAttr:$combiner, AnyStaticShapeTensor:$input,
                       I64Attr:$axis);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $combiner $input `axis` $axis attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_BroadcastOp : Tile_Op<"broadcast", [Pure]> {
  let summary = "inserts a dimension at `axis` and repeats the tile along it";
  let description = [{
    ```mlir
    %mb = tile.broadcast %m axis 1 : tensor<64xf32> -> tensor<64x32xf32>
    ```
  }];
  let arguments = (ins AnyStaticShapeTensor:$input, I64Attr:$axis);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = [{
    $input `axis` $axis attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_RangeOp : Tile_Op<"range", [Pure]> {
  let summary = "the 1-D tile start, start + 1, ..., start + n - 1";
  let description = [{
    ```mlir
    %rows = tile.range %m0 : tensor<64xi32>
    ```
  }];
  let arguments = (ins Index:$start);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$start attr-dict `:` type($result)";
  let hasVerifier = 1;
}

#endif // TESSERA_TILE_OPS
