//===- TgpuOps.td - layouts, shared memory, cp.async --------*- tablegen -*-===//
//
// The root of the op definitions: the ops on register layouts and shared buffers, and
// the cp.async copies, here; synchronisation, TMA, warpgroup products and warp
// specialisation in TgpuSyncOps.td.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_TGPU_OPS
#define TESSERA_TGPU_OPS

include "dialect/tgpu/TgpuDialect.td"
include "dialect/tgpu/TgpuAttrs.td"
include "dialect/tgpu/TgpuTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

/// A tile in registers: a statically shaped tensor.
defvar Tgpu_Tile = AnyStaticShapeTensor;

//===----------------------------------------------------------------------===//
// Registers
//===----------------------------------------------------------------------===//

def Tgpu_ConvertLayoutOp : Tgpu_Op<"convert_layout", [Pure]> {
  let summary = "moves a tile from one register layout to another";
  let description = [{
    Same shape and elements, another owner for each element. Lowered in registers where
    the two layouts allow it (an accumulator read as the next product's left operand:
    FlashAttention-2's P), else through a shared-memory scratch buffer and a barrier.
    A conversion to the same type folds away.

    ```mlir
    %p_a = tgpu.convert_layout %p : tensor<64x64xbf16, #acc> -> tensor<64x64xbf16, #opa>
    ```
  }];
  let arguments = (ins Tgpu_Tile:$source);
  let results = (outs Tgpu_Tile:$result);
  let assemblyFormat = "$source attr-dict `:` type($source) `->` qualified(type($result))";
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Shared memory
//===----------------------------------------------------------------------===//

def Tgpu_LocalAllocOp : Tgpu_Op<"local_alloc"> {
  let summary = "a shared-memory buffer, empty or holding a tile";
  let description = [{
    Without an operand: a `mutable` buffer for copies and stores to fill. With one: an
    immutable single-stage buffer holding that tile (a computed tile staged as a product
    operand: the linear-attention state); with `trans`, holding its transpose (a `[K, N]`
    operand narrower than a swizzle row stored `[N][K]`, read back by `local_load
    {trans}`). Staging a tile is collective and ordered on both sides: every earlier
    shared-memory access of the block comes before the writes (a block barrier first), and
    the tile is visible to every thread when the op ends (a barrier, after a proxy fence
    for a swizzled buffer, which wgmma reads through the async proxy), so barrier
    insertion puts nothing around it. Offsets in the block's arena are assigned later, by
    an allocation analysis with liveness.

    ```mlir
    %kbuf = tgpu.local_alloc
        : () -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    %sbuf = tgpu.local_alloc %s
        : (tensor<64x64xbf16, #acc>) -> !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>>
    ```
  }];
  let arguments = (ins Optional<Tgpu_Tile>:$init, UnitAttr:$trans);
  let results = (outs Res<Tgpu_SharedBufferType, "", [MemAlloc]>:$result);
  let assemblyFormat = [{
    ($init^)? attr-dict `:` functional-type($init, $result)
  }];
  let hasVerifier = 1;
}

def Tgpu_LocalLoadOp : Tgpu_Op<"local_load"> {
  let summary = "reads a tile from a shared buffer into a register layout";
  let description = [{
    Reads stage `stage` (given only when the buffer has several; left out on a mutable
    multi-stage buffer, the stage the enclosing loop's schedule gives it) into the result's
    layout (`ldmatrix` for product operands, vector loads otherwise). With `trans`, the
    result is the transpose of the stored `[N, K]` tile: a K tile read as the `b`
    operand of Q·Kᵀ (`ldmatrix.trans`), so no transposition is ever copied. A
    `#tgpu.shared_operand` result is a view of the buffer: each op using it (directly or
    through `tile.trans`) reads the buffer where it runs — a wgmma product by descriptor,
    through the async proxy — not this op (what barrier insertion counts).

    ```mlir
    %kt = tgpu.local_load %kbuf[%s] {trans}
        : !tgpu.smem<64x64xbf16, #tgpu.shared<padded_rows, pad = 16>, stages = 2, mutable>
        -> tensor<64x64xbf16, #opb>
    ```
  }];
  let arguments = (ins Arg<Tgpu_SharedBufferType, "", [MemRead]>:$buffer,
                       Optional<Index>:$stage, UnitAttr:$trans);
  let results = (outs Tgpu_Tile:$result);
  let assemblyFormat = [{
    $buffer (`[` $stage^ `]`)? attr-dict `:` qualified(type($buffer)) `->` qualified(type($result))
  }];
  let hasVerifier = 1;
}

def Tgpu_LocalStoreOp : Tgpu_Op<"local_store"> {
  let summary = "writes a tile from registers into a mutable shared buffer";
  let description = [{
    ```mlir
    tgpu.local_store %o, %obuf
        : tensor<64x64xbf16, #acc>, !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>
    ```
  }];
  let arguments = (ins Tgpu_Tile:$value,
                       Arg<Tgpu_SharedBufferType, "", [MemWrite]>:$buffer,
                       Optional<Index>:$stage);
  let assemblyFormat = [{
    $value `,` $buffer (`[` $stage^ `]`)? attr-dict `:` type($value) `,` qualified(type($buffer))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// cp.async
//===----------------------------------------------------------------------===//

def Tgpu_AsyncCopyOp : Tgpu_Op<"async_copy", [AttrSizedOperandSegments]> {
  let summary = "starts a bounded copy of a tile from global into shared memory";
  let description = [{
    `tile.load`'s addressing (one index per buffer dimension; the tile spans the last
    dimensions) in 16-byte chunks (`cp.async` into swizzled rows; into padded rows the
    lowering copies through registers, which lands at once) into stage `stage` of a
    mutable buffer
    (left out on a multi-stage buffer: the stage the enclosing loop's schedule gives it);
    rows past the end of the source copy zero bytes (zero fill). The copy belongs to the
    next `tgpu.async_commit_group` that takes its token; its data may be read once a
    `tgpu.async_wait` has covered that group.

    ```mlir
    %t = tgpu.async_copy %k[%b, %h, %n0, %c0] into %kbuf[%s]
        : memref<?x?x?x64xbf16>
        -> !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>
    ```
  }];
  let arguments = (ins Arg<AnyMemRef, "", [MemRead]>:$source, Variadic<Index>:$indices,
                       Arg<Tgpu_SharedBufferType, "", [MemWrite]>:$buffer,
                       Optional<Index>:$stage);
  let results = (outs Tgpu_AsyncTokenType:$token);
  let assemblyFormat = [{
    $source `[` $indices `]` `into` $buffer (`[` $stage^ `]`)? attr-dict
    `:` type($source) `->` qualified(type($buffer))
  }];
  let hasVerifier = 1;
}

def Tgpu_AsyncCommitGroupOp : Tgpu_Op<"async_commit_group"> {
  let summary = "closes a group of the copies issued since the last commit";
  let description = [{
    The copies whose tokens it takes form one group (`cp.async.commit_group`); an empty
    group is legal and keeps group counts uniform across loop iterations.

    ```mlir
    %g = tgpu.async_commit_group tokens %tk, %tv
    ```
  }];
  let arguments = (ins Variadic<Tgpu_AsyncTokenType>:$tokens);
  let results = (outs Tgpu_AsyncTokenType:$group);
  let assemblyFormat = "(`tokens` $tokens^)? attr-dict";
}

def Tgpu_AsyncWaitOp : Tgpu_Op<"async_wait"> {
  let summary = "waits until at most `pending` committed groups are still in flight";
  let description = [{
    `cp.async.wait_group pending`: the groups named (and every older one) have landed
    when at most `pending` newer groups remain. It orders this thread's copies only; a
    `tgpu.barrier` after it makes them visible to the block.

    ```mlir
    %w = tgpu.async_wait %gk pending = 1
    ```
  }];
  let arguments = (ins Variadic<Tgpu_AsyncTokenType>:$groups, I64Attr:$pending);
  let results = (outs Tgpu_AsyncTokenType:$token);
  let assemblyFormat = "$groups `pending` `=` $pending attr-dict";
  let hasVerifier = 1;
}

include "dialect/tgpu/TgpuSyncOps.td"

#endif // TESSERA_TGPU_OPS
