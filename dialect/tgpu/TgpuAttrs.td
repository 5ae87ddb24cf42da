//===- TgpuAttrs.td - layout encodings and shared layouts ---*- tablegen -*-===//
//
// Register layouts are encodings of a tile's RankedTensorType (which thread holds which
// element); the shared-memory layout is a parameter of `!tgpu.smem`. Each register
// layout checks the tile shapes it can hold (VerifiableTensorEncoding).
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_TGPU_ATTRS
#define TESSERA_TGPU_ATTRS

include "dialect/tgpu/TgpuDialect.td"
include "mlir/IR/TensorEncoding.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Tgpu_MmaVersion : I32EnumAttr<"MmaVersion", "tensor-core instruction family", [
      I32EnumAttrCase<"mma_sync", 0>,
      I32EnumAttrCase<"wgmma", 1>
    ]> {
  let cppNamespace = "::tessera::tgpu";
  let genSpecializedAttr = 0;
}

def Tgpu_OperandIndex : I32EnumAttr<"OperandIndex", "which side of a product", [
      I32EnumAttrCase<"a", 0>,
      I32EnumAttrCase<"b", 1>
    ]> {
  let cppNamespace = "::tessera::tgpu";
  let genSpecializedAttr = 0;
}

def Tgpu_SwizzleKind : I32EnumAttr<"SwizzleKind", "shared-memory row layout", [
      I32EnumAttrCase<"none", 0>,
      I32EnumAttrCase<"padded_rows", 1>,
      I32EnumAttrCase<"swizzle_128b", 2>
    ]> {
  let cppNamespace = "::tessera::tgpu";
  let genSpecializedAttr = 0;
}

class Tgpu_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Tgpu_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

class Tgpu_Layout<string name, string attrMnemonic>
    : Tgpu_Attr<name, attrMnemonic,
                [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]>;

//===----------------------------------------------------------------------===//
// Register layouts
//===----------------------------------------------------------------------===//

def Tgpu_MmaEncodingAttr : Tgpu_Layout<"MmaEncoding", "mma"> {
  let summary = "the accumulator of a tensor-core product";
  let description = [{
    An `[M, N]` tile held the way an `mma.sync` (`m16n8k16`) or `wgmma` (`m64nNk16`)
    instruction leaves its accumulator: `warps = [wm, wn]` warps split the rows and the
    columns (today always `[num_warps, 1]`: each warp owns `M / wm` consecutive rows, in
    16-row m-tiles); `instr = [m, n, k]` is the instruction's shape. Inside a warp, lane
    `4g + t` holds rows `g` and `g + 8` of each m-tile at columns `2t, 2t + 1` of each
    8-column block (the PTX ISA's fragment), so element-wise code moves no data.

    ```mlir
    tensor<64x64xf32, #tgpu.mma<mma_sync, warps = [4, 1], instr = [16, 8, 16]>>
    tensor<128x128xf32, #tgpu.mma<wgmma, warps = [8, 1], instr = [64, 128, 16]>>
    ```
  }];
  let parameters = (ins EnumParameter<Tgpu_MmaVersion>:$version,
                        ArrayRefParameter<"int64_t">:$warps,
                        ArrayRefParameter<"int64_t">:$instr);
  let assemblyFormat = [{
    `<` $version `,` `warps` `=` `[` $warps `]` `,` `instr` `=` `[` $instr `]` `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Rows one tile of this layout must be a multiple of (16 per warp along rows).
    int64_t rowQuantum() const;
    /// Columns one tile of this layout must be a multiple of.
    int64_t colQuantum() const;
  }];
}

def Tgpu_DotOperandEncodingAttr : Tgpu_Layout<"DotOperandEncoding", "dot_operand"> {
  let summary = "a product's left (a) or right (b) operand held in registers";
  let description = [{
    The fragment an `mma.sync` (or a register-sourced `wgmma`) reads for its `a`
    (`[M, K]`) or `b` (`[K, N]`) operand, defined by the accumulator layout `parent` it
    feeds. `k_width` is how many consecutive elements along K a thread holds together
    (2 for 16-bit elements: one 32-bit register). An `a` operand is split
    over warps like its parent's rows; a `b` operand is held whole by every warp.

    ```mlir
    tensor<64x64xbf16, #tgpu.dot_operand<a, parent = #tgpu.mma<mma_sync, warps = [4, 1],
                                         instr = [16, 8, 16]>, k_width = 2>>
    ```
  }];
  let parameters = (ins EnumParameter<Tgpu_OperandIndex>:$operand,
                        "MmaEncodingAttr":$parent,
                        "int64_t":$kWidth);
  let assemblyFormat = [{
    `<` $operand `,` `parent` `=` qualified($parent) `,` `k_width` `=` $kWidth `>`
  }];
  let genVerifyDecl = 1;
}

def Tgpu_SharedOperandEncodingAttr : Tgpu_Layout<"SharedOperandEncoding", "shared_operand"> {
  let summary = "a product's right operand every warp reads whole, through shared memory";
  let description = [{
    A `[K, N]` right operand that every warp of the block reads in full: the tile is
    staged once in shared memory and each warp reads its fragments there just before
    each product (`ldmatrix` for `mma_sync`, a descriptor for `wgmma`). `transposed`:
    the tile is the operand's transpose (`[N, K]`, a key tile read as Kᵀ). `parent` is
    the accumulator layout of the products it feeds.

    ```mlir
    tensor<64x128xbf16, #tgpu.shared_operand<parent = #tgpu.mma<mma_sync, warps = [4, 1],
                                                                instr = [16, 8, 16]>,
                                             transposed = true>>
    ```
  }];
  let parameters = (ins "MmaEncodingAttr":$parent,
                        DefaultValuedParameter<"bool", "false">:$transposed);
  let assemblyFormat = [{
    `<` `parent` `=` qualified($parent) (`,` `transposed` `=` $transposed^)? `>`
  }];
}

def Tgpu_SliceEncodingAttr : Tgpu_Layout<"SliceEncoding", "slice"> {
  let summary = "a 1-D tile: one value per row or per column of a 2-D parent layout";
  let description = [{
    The parent layout with dimension `dim` removed: `dim = 1` is one value per row (the
    result of a row reduction; held by the four lanes of the quad that holds the row),
    `dim = 0` one value per column. The parent is a `#tgpu.mma` accumulator, or a
    `#tgpu.row_span` for `dim = 1`.

    ```mlir
    tensor<64xf32, #tgpu.slice<dim = 1, parent = #tgpu.mma<mma_sync, warps = [4, 1],
                                                        instr = [16, 8, 16]>>>
    ```
  }];
  let parameters = (ins "int64_t":$dim, "::mlir::Attribute":$parent);
  let assemblyFormat = "`<` `dim` `=` $dim `,` `parent` `=` $parent `>`";
  let genVerifyDecl = 1;
}

def Tgpu_RowSpanEncodingAttr : Tgpu_Layout<"RowSpanEncoding", "row_span"> {
  let summary = "a narrow [M, C] tile: each thread holds whole rows";
  let description = [{
    For tiles too narrow for the accumulator's 8-column blocks (a gate column, a
    per-token list column): `warps` warps split the rows as an accumulator would, and each
    thread holds, whole, the rows it would hold there, so a reduction along a row needs no
    shuffle and gives the row slice directly.

    ```mlir
    tensor<64x3xf32, #tgpu.row_span<warps = 4>>
    ```
  }];
  let parameters = (ins "int64_t":$warps);
  let assemblyFormat = "`<` `warps` `=` $warps `>`";
  let genVerifyDecl = 1;
}

def Tgpu_WholeEncodingAttr : Tgpu_Layout<"WholeEncoding", "whole"> {
  let summary = "every thread holds every element";
  let description = [{
    A short tile replicated in every thread (a `tile.range` of a few slots broadcast
    over the columns of a `row_span` tile, a scalar-sized state).

    ```mlir
    tensor<3xi32, #tgpu.whole>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Shared-memory layout
//===----------------------------------------------------------------------===//

def Tgpu_SharedLayoutAttr : Tgpu_Attr<"SharedLayout", "shared"> {
  let summary = "how a tile's rows are laid out in shared memory";
  let description = [{
    `none`: row-major, dense. `padded_rows`: each row followed by `pad` bytes, so the 8
    rows one `ldmatrix` reads fall in different banks (the mma.sync path's staging).
    `swizzle_128b`: 64-column blocks of 128-byte rows whose 16-byte chunks are XOR'd with
    `row % 8` — the layout `wgmma` descriptors and TMA's 128-byte swizzle mode read and
    write (1024-byte aligned atoms of 8 rows).

    ```mlir
    #tgpu.shared<none>
    #tgpu.shared<padded_rows, pad = 16>
    #tgpu.shared<swizzle_128b>
    ```
  }];
  let parameters = (ins EnumParameter<Tgpu_SwizzleKind>:$kind,
                        DefaultValuedParameter<"int64_t", "0">:$pad);
  let assemblyFormat = "`<` $kind (`,` `pad` `=` $pad^)? `>`";
  let genVerifyDecl = 1;
}

#endif // TESSERA_TGPU_ATTRS
