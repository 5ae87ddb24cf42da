//===- TgpuTypes.td - shared buffers, barriers, tokens ------*- tablegen -*-===//
#ifndef TESSERA_TGPU_TYPES
#define TESSERA_TGPU_TYPES

include "dialect/tgpu/TgpuAttrs.td"

class Tgpu_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Tgpu_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def Tgpu_SharedBufferType : Tgpu_Type<"SharedBuffer", "smem"> {
  let summary = "a tile-shaped buffer in shared memory, possibly one per pipeline stage";
  let description = [{
    `stages` copies of a `shape` tile of `element` in the given shared layout (a software
    pipeline fills stage `i + 1` while stage `i` is read; ops pick a stage with an index
    operand when there are several). A buffer made from a value by `tgpu.local_alloc` is
    immutable; one that copies, stores or TMA write into is `mutable`. Where it lives in
    the block's shared-memory arena is decided later, by an allocation pass.

    ```mlir
    !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape, "::mlir::Type":$elementType,
                        "SharedLayoutAttr":$layout,
                        DefaultValuedParameter<"int64_t", "1">:$stages,
                        DefaultValuedParameter<"bool", "false">:$isMutable);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Bytes of one stage, padding included.
    int64_t getStageBytes() const;
    /// The same buffer without its stages and mutability: the type of one stage's view.
    ::mlir::RankedTensorType getTileType() const {
      return ::mlir::RankedTensorType::get(getShape(), getElementType());
    }
  }];
}

def Tgpu_MbarrierType : Tgpu_Type<"Mbarrier", "mbarrier"> {
  let summary = "one shared-memory mbarrier per pipeline stage";
  let description = [{
    An array of `stages` mbarriers (one when omitted), each counting arrivals and
    asynchronous transaction bytes; a wait names the phase (parity) it waits to complete.

    ```mlir
    !tgpu.mbarrier
    !tgpu.mbarrier<2>
    ```
  }];
  let parameters = (ins DefaultValuedParameter<"int64_t", "1">:$stages);
  let assemblyFormat = "(`<` $stages^ `>`)?";
  let genVerifyDecl = 1;
}

def Tgpu_TmaDescriptorType : Tgpu_Type<"TmaDescriptor", "tma_desc"> {
  let summary = "a TMA tensor map: the box one copy moves and its shared layout";
  let description = [{
    A descriptor (CUtensorMap, made on the host or by `tensormap.replace`) for copies of
    a `shape` box of `element` between global memory and shared memory laid out as
    `layout` (`none` or `swizzle_128b`; TMA does not pad rows).

    ```mlir
    !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape, "::mlir::Type":$elementType,
                        "SharedLayoutAttr":$layout);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def Tgpu_AsyncTokenType : Tgpu_Type<"AsyncToken", "async_token"> {
  let summary = "completion of asynchronous work: a copy, a commit group, a wgmma";
  let description = [{
    ```mlir
    %t = tgpu.async_copy %k[%b, %h, %n0, %c0] into %kbuf[%s]
        : memref<?x?x?x64xbf16>
        -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    ```
  }];
}

#endif // TESSERA_TGPU_TYPES
