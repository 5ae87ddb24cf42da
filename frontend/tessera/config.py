"""The tuning knobs every kernel is compiled with."""
from __future__ import annotations

import dataclasses
from typing import Dict


@dataclasses.dataclass(frozen=True)
class Config:
    """Tuning knobs; they become the kernel's #tile.config attribute (min_blocks, a
    register hint, goes to the GPU code generator only)."""

    block_m: int = 64
    block_n: int = 64
    num_warps: int = 4
    num_stages: int = 2
    # Pieces a program's work is split into, for more programs (linear attention: the
    # value columns; 1 = none).
    split: int = 1
    # GPU: blocks per SM the register allocation must leave room for (ptxas
    # .minnctapersm; 0 = the compiler's own choice). One-warpgroup D = 128 kernels take
    # 168 registers (3 blocks); 4 caps them at 128, spilling a little.
    min_blocks: int = 0
    # Softmax backward: queries per tile the dK / dV grid walks beside its block_n keys
    # (0 = the compiler's rule: 32 past head dim 64 on sm_90a and the CPU with block_m
    # 64, else block_m). Fewer queries, fewer registers beside the dK / dV accumulators;
    # on sm_80 the queries are product rows (a multiple of 16 x num_warps).
    grad_query_tile: int = 0
    # sm_90a: Q, K and V tiles copied by TMA (cp.async.bulk.tensor from tensor maps the
    # runtime encodes per call, mbarrier completion) instead of cp.async by every thread.
    # Off by default until a GPU run shows it correct and faster; sm_80 and the CPU
    # ignore it.
    tma: bool = False
    # sm_90a (issue 25): a producer warpgroup issues the TMA copies into a ring of
    # num_stages buffers guarded by full / empty mbarriers, consumer warpgroups compute
    # (needs tma). Off by default until a GPU run shows it faster.
    warp_specialize: bool = False
    # sm_90a / sm_80 (issue 25): as many CTAs as the SMs hold, each walking the grid's
    # tiles in launch order by mirrored pairs (query tiles j and T - 1 - j back to back:
    # causal steps cost alike, a head's tiles stay together in L2). With
    # warp_specialize the producer runs into the next tile: its Q and first K / V land
    # under this tile's last key tiles.
    persistent: bool = False
    # Softmax backward on the GPU: dQ summed in f32 by the dK / dV grid with atomics (one
    # grid of products fewer; not bit-deterministic) instead of a dQ grid of its own.
    grad_dq_atomic: bool = False
    # sm_90a (issue 25): warp_specialize's two consumer warpgroups (block_m 128, num_warps
    # 8) take turns at their products, one's softmax under the other's wgmma
    # (FlashAttention-3's ping-pong). Off by default until a GPU run shows it faster.
    pingpong: bool = False
    # sm_90a (issue 25): warp_specialize's consumers issue each key loop's P·V one
    # iteration later, right after the next Q·Kᵀ, so the softmax runs under it
    # (FlashAttention-3's intra-warpgroup overlap; same results). Off by default until a
    # GPU run shows it faster.
    intra_warpgroup_overlap: bool = False

    def as_kwargs(self) -> Dict[str, int]:
        # Boolean knobs only where set: default configs keep their cache keys and
        # pipeline text.
        kwargs = dataclasses.asdict(self)
        for knob in BOOLEAN_KNOBS:
            if not kwargs[knob]:
                del kwargs[knob]
        return kwargs


# Knobs a config carries only where they are on (as_kwargs, the tuning store).
BOOLEAN_KNOBS = ("tma", "warp_specialize", "persistent", "grad_dq_atomic", "pingpong",
                 "intra_warpgroup_overlap")
