//===- TgpuSyncOps.td - barriers, TMA, warpgroup MMA, partitions -*- tablegen -*-===//
//
// Included by TgpuOps.td: what orders asynchronous work (mbarriers, block barriers,
// proxy fences), TMA copies, warpgroup products, and warp specialisation.
//
//===----------------------------------------------------------------------===//
#ifndef TESSERA_TGPU_SYNC_OPS
#define TESSERA_TGPU_SYNC_OPS

include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// mbarriers
//===----------------------------------------------------------------------===//

def Tgpu_MbarrierAllocOp : Tgpu_Op<"mbarrier_alloc"> {
  let summary = "shared memory for one mbarrier per stage";
  let description = [{
    The barriers are not usable until `tgpu.mbarrier_init` has initialised them.

    ```mlir
    %full = tgpu.mbarrier_alloc : !tgpu.mbarrier<2>
    ```
  }];
  let results = (outs Res<Tgpu_MbarrierType, "", [MemAlloc]>:$result);
  let assemblyFormat = "attr-dict `:` qualified(type($result))";
}

def Tgpu_MbarrierInitOp : Tgpu_Op<"mbarrier_init"> {
  let summary = "initialises every stage's mbarrier to expect `count` arrivals a phase";
  let description = [{
    Each barrier then completes a phase once `count` arrivals (and every transaction
    byte announced by `tgpu.mbarrier_expect_tx`) have happened. One thread initialises;
    `tgpu.fence_mbarrier_init` and a block barrier make the barriers usable by others.

    ```mlir
    tgpu.mbarrier_init %full count = 1 : !tgpu.mbarrier<2>
    ```
  }];
  let arguments = (ins Arg<Tgpu_MbarrierType, "", [MemWrite]>:$barrier, I64Attr:$count);
  let assemblyFormat = "$barrier `count` `=` $count attr-dict `:` qualified(type($barrier))";
  let hasVerifier = 1;
}

def Tgpu_FenceMbarrierInitOp : Tgpu_Op<"fence_mbarrier_init"> {
  let summary = "releases this thread's mbarrier initialisations to the cluster";
  let description = [{
    `fence.mbarrier_init.release.cluster`: barriers this thread initialised are seen
    initialised by any thread that synchronises with it afterwards (the async proxy's
    TMA completions included).

    ```mlir
    tgpu.fence_mbarrier_init
    ```
  }];
  let assemblyFormat = "attr-dict";
}

def Tgpu_MbarrierArriveOp : Tgpu_Op<"mbarrier_arrive", [AttrSizedOperandSegments]> {
  let summary = "counts `count` arrivals on one barrier";
  let description = [{
    With `if %p`, only the threads where `%p` holds arrive (a predicated instruction,
    not a branch: one lane a warp gives the warp's arrival without splitting the block
    the register allocator sees).

    ```mlir
    tgpu.mbarrier_arrive %empty[%s] : !tgpu.mbarrier<2>
    tgpu.mbarrier_arrive %empty[%s] if %lane0 : !tgpu.mbarrier<2>
    ```
  }];
  let arguments = (ins Arg<Tgpu_MbarrierType, "", [MemRead, MemWrite]>:$barrier,
                       Optional<Index>:$stage, DefaultValuedAttr<I64Attr, "1">:$count,
                       Optional<I1>:$pred);
  let assemblyFormat = [{
    $barrier (`[` $stage^ `]`)? (`count` `=` $count^)? (`if` $pred^)? attr-dict
    `:` qualified(type($barrier))
  }];
  let hasVerifier = 1;
}

def Tgpu_MbarrierExpectTxOp : Tgpu_Op<"mbarrier_expect_tx"> {
  let summary = "arrives once and announces `bytes` of asynchronous transactions";
  let description = [{
    The barrier's current phase then also waits for that many bytes written by TMA
    copies that name it (`mbarrier.arrive.expect_tx`).

    ```mlir
    tgpu.mbarrier_expect_tx %full[%s] bytes = 16384 : !tgpu.mbarrier<2>
    ```
  }];
  let arguments = (ins Arg<Tgpu_MbarrierType, "", [MemRead, MemWrite]>:$barrier,
                       Optional<Index>:$stage, I64Attr:$bytes);
  let assemblyFormat = [{
    $barrier (`[` $stage^ `]`)? `bytes` `=` $bytes attr-dict `:` qualified(type($barrier))
  }];
  let hasVerifier = 1;
}

def Tgpu_MbarrierWaitOp : Tgpu_Op<"mbarrier_wait"> {
  let summary = "waits until the barrier's phase of parity `phase` has completed";
  let description = [{
    The phase is a value: a pipelined loop flips it each time it comes back to a stage
    (`(iteration / stages) % 2`).

    ```mlir
    tgpu.mbarrier_wait %full[%s], %phase : !tgpu.mbarrier<2>
    ```
  }];
  // A write too: the wait is what orders its thread's later reads of what the phase's
  // copies wrote, so it must neither be dropped (no results) nor moved.
  let arguments = (ins Arg<Tgpu_MbarrierType, "", [MemRead, MemWrite]>:$barrier,
                       Optional<Index>:$stage, I1:$phase);
  let assemblyFormat = [{
    $barrier (`[` $stage^ `]`)? `,` $phase attr-dict `:` qualified(type($barrier))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// TMA
//===----------------------------------------------------------------------===//

def Tgpu_TmaLoadOp : Tgpu_Op<"tma_load", [AttrSizedOperandSegments]> {
  let summary = "copies a box from global into shared memory, completing on an mbarrier";
  let description = [{
    One thread issues `cp.async.bulk.tensor` for the box at `coordinates` (one i32 per
    global dimension of the descriptor, innermost last, as the tile ops index) into
    stage `stage` of the buffer; the bytes count as transactions on the barrier, whose
    phase completes when they have landed. Out-of-bounds elements are zero. A
    `swizzle_128b` box wider than 64 16-bit columns (one swizzle row) is copied as its
    64-column blocks, one after another in the buffer, one instruction each.

    ```mlir
    tgpu.tma_load %kdesc[%n0, %c0] into %kbuf[%s], %full[%s]
        : !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>,
          !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>,
          !tgpu.mbarrier<2>
    ```
  }];
  let arguments = (ins Tgpu_TmaDescriptorType:$descriptor, Variadic<I32>:$coordinates,
                       Arg<Tgpu_SharedBufferType, "", [MemWrite]>:$buffer,
                       Optional<Index>:$stage,
                       Arg<Tgpu_MbarrierType, "", [MemRead, MemWrite]>:$barrier,
                       Optional<Index>:$barrierStage);
  let assemblyFormat = [{
    $descriptor `[` $coordinates `]` `into` $buffer (`[` $stage^ `]`)? `,`
    $barrier (`[` $barrierStage^ `]`)? attr-dict
    `:` qualified(type($descriptor)) `,` qualified(type($buffer)) `,` qualified(type($barrier))
  }];
  let hasVerifier = 1;
}

def Tgpu_TmaStoreOp : Tgpu_Op<"tma_store"> {
  let summary = "copies a shared buffer's tile to global memory at a box";
  let description = [{
    Starts `cp.async.bulk.tensor` from shared to global and commits it to the bulk
    group; `tgpu.tma_store_wait` says when the buffer may be written again. Writes
    after a `tgpu.fence_async_shared` are what it reads.

    ```mlir
    tgpu.tma_store %obuf to %odesc[%m0, %c0]
        : !tgpu.smem<64x64xbf16, #tgpu.shared<swizzle_128b>, mutable>,
          !tgpu.tma_desc<64x64xbf16, #tgpu.shared<swizzle_128b>>
    ```
  }];
  let arguments = (ins Arg<Tgpu_SharedBufferType, "", [MemRead]>:$buffer,
                       Tgpu_TmaDescriptorType:$descriptor, Variadic<I32>:$coordinates);
  let assemblyFormat = [{
    $buffer `to` $descriptor `[` $coordinates `]` attr-dict
    `:` qualified(type($buffer)) `,` qualified(type($descriptor))
  }];
  let hasVerifier = 1;
}

def Tgpu_TmaStoreWaitOp : Tgpu_Op<"tma_store_wait"> {
  let summary = "waits until at most `pending` bulk store groups still read shared memory";
  let description = [{
    ```mlir
    tgpu.tma_store_wait pending = 0
    ```
  }];
  let arguments = (ins I64Attr:$pending);
  let assemblyFormat = "`pending` `=` $pending attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Warpgroup MMA
//===----------------------------------------------------------------------===//

def Tgpu_WarpgroupDotOp : Tgpu_Op<"warpgroup_dot", [
    AttrSizedOperandSegments, AllTypesMatch<["acc", "result"]>]> {
  let summary = "starts result = a * b + acc on the warpgroups' tensor cores";
  let description = [{
    `wgmma.mma_async`: `b` (`[K, N]`) is read from shared memory through a descriptor;
    `a` (`[M, K]`) from shared memory as well, or from registers in the `a` operand
    layout of the accumulator (FlashAttention-3's P). The accumulator has a
    `#tgpu.mma<wgmma, ...>` layout. The product runs asynchronously: its result and its
    operands' registers may be touched only after a `tgpu.warpgroup_wait` covering the
    token.

    ```mlir
    %s, %t = tgpu.warpgroup_dot %qbuf, %kbuf[%st], %zero {trans_b}
        : !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>>,
          !tgpu.smem<64x128xbf16, #tgpu.shared<swizzle_128b>, stages = 2, mutable>,
          tensor<64x64xf32, #wgacc>
    ```
  }];
  // The accumulator comes first: ODS infers the result's type from a fixed operand index.
  let arguments = (ins Tgpu_Tile:$acc,
                       AnyTypeOf<[Tgpu_SharedBufferType, Tgpu_Tile]>:$a,
                       Optional<Index>:$aStage,
                       Tgpu_SharedBufferType:$b, Optional<Index>:$bStage,
                       UnitAttr:$trans_b);
  let results = (outs Tgpu_Tile:$result, Tgpu_AsyncTokenType:$token);
  let assemblyFormat = [{
    $a (`[` $aStage^ `]`)? `,` $b (`[` $bStage^ `]`)? `,` $acc attr-dict
    `:` type($a) `,` qualified(type($b)) `,` type($acc)
  }];
  let hasVerifier = 1;
}

def Tgpu_WarpgroupWaitOp : Tgpu_Op<"warpgroup_wait", [
    AttrSizedOperandSegments, DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "waits until at most `pending` warpgroup products are in flight";
  let description = [{
    `wgmma.wait_group pending`; the values it passes through (the accumulators the
    products write) are its results, so no use of them can move above the wait. The
    token of a `tgpu.warpgroup_dot` (`after`) orders it after that product; without one
    it counts the products issued before it (the distributed kernel, whose values are
    the accumulators' per-thread registers).

    ```mlir
    %s2 = tgpu.warpgroup_wait %s pending = 0 after %t : tensor<64x64xf32, #wgacc>
    %r:2 = tgpu.warpgroup_wait %a, %b pending = 1 : f32, f32
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values, Optional<Tgpu_AsyncTokenType>:$token,
                       I64Attr:$pending);
  let results = (outs Variadic<AnyType>:$results);
  let assemblyFormat = [{
    ($values^)? `pending` `=` $pending (`after` $token^)? attr-dict (`:` type($values)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Block-level ordering
//===----------------------------------------------------------------------===//

def Tgpu_BarrierOp : Tgpu_Op<"barrier"> {
  let summary = "every thread of the block waits here (bar.sync 0)";
  let description = [{
    Orders shared-memory accesses across warps: writes before it are visible to reads
    after it. Placed by a barrier-insertion analysis, not by the op that needs it.

    ```mlir
    tgpu.barrier
    ```
  }];
  let assemblyFormat = "attr-dict";
}

def Tgpu_NamedBarrierOp : Tgpu_Op<"named_barrier"> {
  let summary = "waits until `threads` threads have reached named barrier `id` (bar.sync)";
  let description = [{
    A barrier over some of the block's warps (a warpgroup's turn, the consumers of a
    warp-specialised kernel): each warp that reaches it counts its 32 threads and waits
    until `threads` have arrived at barrier `id` (0 to 15; 0 is `tgpu.barrier`'s, so
    named groups take 1 to 15), with `tgpu.named_barrier_arrive` counting without
    waiting. Not a block barrier: tessera-tgpu-insert-barriers does not count it.

    ```mlir
    tgpu.named_barrier %id threads = 256
    ```
  }];
  let arguments = (ins I32:$id, I64Attr:$threads);
  let assemblyFormat = "$id `threads` `=` $threads attr-dict";
  let hasVerifier = 1;
}

def Tgpu_NamedBarrierArriveOp : Tgpu_Op<"named_barrier_arrive"> {
  let summary = "counts this warp's threads at named barrier `id` without waiting (bar.arrive)";
  let description = [{
    The producer side of a named barrier: the barrier completes once `threads` threads
    have arrived or waited at it.

    ```mlir
    tgpu.named_barrier_arrive %id threads = 256
    ```
  }];
  let arguments = (ins I32:$id, I64Attr:$threads);
  let assemblyFormat = "$id `threads` `=` $threads attr-dict";
  let hasVerifier = 1;
}

def Tgpu_FenceAsyncSharedOp : Tgpu_Op<"fence_async_shared"> {
  let summary = "orders generic-proxy shared-memory accesses before async-proxy ones";
  let description = [{
    `fence.proxy.async.shared::cta`: what threads wrote with ordinary stores (or
    cp.async) becomes visible to `wgmma` and TMA, which read shared memory through the
    async proxy.

    ```mlir
    tgpu.fence_async_shared
    ```
  }];
  let assemblyFormat = "attr-dict";
}

//===----------------------------------------------------------------------===//
// Warp specialisation
//===----------------------------------------------------------------------===//

def Tgpu_WarpSpecializeOp : Tgpu_Op<"warp_specialize", [RecursiveMemoryEffects]> {
  let summary = "runs producer partitions on warps of their own beside the default warps";
  let description = [{
    The `default` region runs on the block's own warps (the consumers: products and
    softmax) and yields the op's results; each `partition` region runs on
    `num_warps[i]` extra warps (producers: TMA loads, one warp). `registers` sets each
    partition's register budget (`setmaxnreg`; multiples of 8 in [24, 256]) and
    `default_registers` the default warps' — producers give registers to consumers.
    Partitions communicate through shared buffers and mbarriers only.

    ```mlir
    %o = tgpu.warp_specialize num_warps = [1] registers = [24] default_registers = 240
        -> tensor<128x128xf32, #wgacc> default {
      ...
      tgpu.warp_yield %acc : tensor<128x128xf32, #wgacc>
    } partitions {
      ...
      tgpu.warp_return
    }
    ```
  }];
  let arguments = (ins DenseI32ArrayAttr:$num_warps,
                       OptionalAttr<DenseI32ArrayAttr>:$registers,
                       OptionalAttr<I32Attr>:$default_registers);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$defaultRegion,
                        VariadicRegion<SizedRegion<1>>:$partitionRegions);
  let assemblyFormat = [{
    `num_warps` `=` $num_warps (`registers` `=` $registers^)?
    (`default_registers` `=` $default_registers^)? (`->` type($results)^)?
    attr-dict-with-keyword custom<WarpRegions>($defaultRegion, $partitionRegions)
  }];
  let hasVerifier = 1;
}

def Tgpu_WarpYieldOp : Tgpu_Op<"warp_yield", [
    Pure, Terminator, ReturnLike, HasParent<"WarpSpecializeOp">]> {
  let summary = "ends the default region of a warp_specialize with its results";
  let description = [{
    ```mlir
    tgpu.warp_yield %acc : tensor<128x128xf32, #wgacc>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

def Tgpu_WarpReturnOp : Tgpu_Op<"warp_return", [
    Pure, Terminator, ReturnLike, HasParent<"WarpSpecializeOp">]> {
  let summary = "ends a partition of a warp_specialize";
  let description = [{
    ```mlir
    tgpu.warp_return
    ```
  }];
  let assemblyFormat = "attr-dict";
}

#endif // TESSERA_TGPU_SYNC_OPS
