"""The mbarrier protocol of TMA-fed kernels (Config.tma, sm_90a) without a GPU: one CTA
of the PTX run by mbarrier_sim (control flow and synchronisation only) with an issuing
thread that runs ahead of slower warps, and with copies slower than any warp, ends
without a deadlock — persistent grids walking several items a program included, and
warp-specialised kernels (producer rings, consumers' named barriers, pingpong). (Every
thread waiting for a barrier's previous fill before the elected one armed the next hung
an H100 at persistent + tma, D = 64 causal: a fill that landed before a slower warp's
wait left it waiting on the phase after; the simulation finds that hang, a dropped
consumer arrive and a named barrier's wrong count.) Persistent grids also walk every
item once, in mirrored pairs, read off the simulated copies of Q."""
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
import cases  # noqa: E402
from tessera import _core  # noqa: E402

from mbarrier_sim import simulate  # noqa: E402

B, H, N = 1, 2, 200  # ragged: 4 query tiles of 64 a head, the last of 8 rows


def descriptor(sizes, base):
    """A memref descriptor's parameters: pointers, offset, sizes, row-major strides."""
    strides = [1]
    for size in reversed(sizes[1:]):
        strides.insert(0, strides[0] * size)
    return [base, base, 0, *sizes, *strides]


def compile_ptx(spec, d, config):
    """`spec`'s sm_90a PTX (text) and launch record (dict)."""
    ptx, record = _core.compile_gpu(spec.to_mlir(cases.DTYPE, d, d), spec.name, "sm_90a",
                                    **config.as_kwargs())
    return ptx.decode(), json.loads(record)


def params_of(shapes):
    """Kernel parameters for buffers of `shapes`, in order: buffer i at (i + 1) << 40."""
    return dict(enumerate(sum((descriptor(s, (i + 1) << 40) for i, s in enumerate(shapes)),
                              [])))


# q, k, v, out [B, H, N, D], the row statistics [B, H, N]: a softmax forward's buffers.
def softmax_shapes(heads, n, d):
    return [[B, heads, n, d]] * 4 + [[B, heads, n]]


def attention_entry(ptx):
    """The entry that waits on mbarriers (a mask_mod kernel's classification grid is
    another entry)."""
    entries = [chunk.split("(")[0].strip() for chunk in ptx.split(".entry ")[1:]]
    return next(e for e in entries
                if "mbarrier" in ptx[ptx.index(f".entry {e}"):].split(".entry ")[1])


def simulated_threads(ptx, warp_specialized):
    """One thread a warp for warp-specialised kernels (barriers count warps there), else
    an issuer, a thread of its warp and two of others."""
    body = ptx.split(".entry " + attention_entry(ptx))[1]
    threads = int(re.search(r"\.maxntid (\d+)", body).group(1))
    return list(range(0, threads, 32)) if warp_specialized else [0, 1, 33, 100]


def assert_no_deadlock(ptx, params, grid, tids, box_bytes, load=None):
    """The first and the last CTA of `grid`, copies fast and slow, threads in the given
    order and reversed, each end."""
    for ctaid in ((0,), tuple(g - 1 for g in grid)):
        for lazy in (False, True):
            for order in (tids, tids[::-1]):
                outcome = simulate(ptx, attention_entry(ptx), params, ctaid, grid, order,
                                   lazy_copies=lazy, box_bytes=box_bytes, load=load)
                assert outcome == "ok", (ctaid, lazy, order[0], outcome)


@pytest.mark.parametrize("name,d,persistent", [
    ("causal", 64, True), ("window", 64, True), ("full", 64, True), ("causal", 128, True),
    ("causal", 64, False), ("full-1stage", 64, True)])
def test_no_deadlock(name, d, persistent):
    config = dataclasses.replace(cases.config_for(d, name), tma=True, persistent=persistent)
    ptx, _ = compile_ptx(cases.SPECS[name][0], d, config)
    params = params_of(softmax_shapes(H, N, d))
    grid = (3,) if persistent else (-(-N // config.block_m), H, B)  # persistent: 2-3 items
    assert config.block_m == config.block_n  # every copy is one box size
    assert_no_deadlock(ptx, params, grid, simulated_threads(ptx, False), config.block_n * 128)


@pytest.mark.parametrize("name,d", [("causal", 64), ("window", 128), ("full", 64)])
@pytest.mark.parametrize("heads,n,programs", [(2, 200, 3), (3, 448, 5), (1, 64, 1)])
def test_persistent_items_each_once_in_mirrored_pairs(name, d, heads, n, programs):
    """Across every program of a persistent grid, each (query tile, head) is walked once
    (the item order is a permutation), and a program's steps 2m, 2m + 1 within whole
    pairs of steps take mirrored query tiles j and T - 1 - j (Q's copies tell)."""
    config = dataclasses.replace(cases.config_for(d, name), tma=True, persistent=True)
    ptx, _ = compile_ptx(cases.SPECS[name][0], d, config)
    params = params_of(softmax_shapes(heads, n, d))
    q_descriptor = 4 * 11 + 9  # the first descriptor, after the five buffers
    tiles = -(-n // config.block_m)
    walked, checked = [], 0
    for program in range(programs):
        copies = []
        outcome = simulate(ptx, attention_entry(ptx), params, program, programs, tids=[0],
                           box_bytes=config.block_n * 128, copies=copies)
        assert outcome == "ok", outcome
        # Q's copies: one box (D = 64) or two (D = 128) an item, the first at column 0.
        items = [(row // config.block_m, head) for desc, (col, row, head, batch) in copies
                 if desc == q_descriptor and col == 0]
        walked += items
        whole_steps = 2 * (2 * (tiles // 2) * heads // (2 * programs))  # in whole pairs
        for m in range(0, whole_steps, 2):
            (first, h1), (second, h2) = items[m], items[m + 1]
            assert h1 == h2 and first + second == tiles - 1, items
        checked += whole_steps
    assert sorted(walked) == [(t, h) for t in range(tiles) for h in range(heads)]
    assert checked > 0 or programs * 2 > tiles * heads


@pytest.mark.parametrize("name,d,knobs", [
    ("causal", 64, {"persistent": True}),
    ("window", 64, {}),
    ("full", 128, {"intra_warpgroup_overlap": True}),
    ("causal-2wg", 128, {"pingpong": True, "intra_warpgroup_overlap": True}),
    ("causal-2wg", 128, {"pingpong": True, "intra_warpgroup_overlap": True,
                         "persistent": True})])
def test_warp_specialized_no_deadlock(name, d, knobs):
    """Warp-specialised kernels (a producer warpgroup filling rings that the consumer
    warpgroups empty; named barriers between consumers, pingpong's turns) run with one
    simulated thread a warp, in launch order and reversed, copies fast and slow."""
    config = dataclasses.replace(cases.config_for(d, name), tma=True, warp_specialize=True,
                                 **knobs)
    ptx, _ = compile_ptx(cases.SPECS[name][0], d, config)
    params = params_of(softmax_shapes(H, N, d))
    grid = (3,) if knobs.get("persistent") else (-(-N // config.block_m), H, B)
    assert_no_deadlock(ptx, params, grid, simulated_threads(ptx, True), config.block_n * 128)


@pytest.mark.parametrize("name,knobs", [
    ("blocks-causal", {"warp_specialize": True}),
    ("blocks-causal", {"warp_specialize": True, "persistent": True}),
    ("blocks-1stage", {}), ("blocks-1stage", {"warp_specialize": True})])
def test_block_lists_no_deadlock(name, knobs):
    """Block-list walks read their lists from global memory: entries repeated, skipped
    (-1) and past the diagonal (causal), so taken, skipped and masked tiles mix."""
    spec, config = cases.BLOCK_SPARSE[name]
    config = dataclasses.replace(config, tma=True, **knobs)
    d, n, entries = 128, 333, 4
    ptx, _ = compile_ptx(spec, d, config)
    block_q = spec.block_sparse[0]
    blocks_q = -(-n // block_q)
    lists_base = 4 << 40

    def load(address):  # block_indices [B, H, blocks_q, entries]: the only global read
        index = (address - lists_base) // 4
        assert 0 <= index < B * H * blocks_q * entries, hex(address)
        qt, e = divmod(index % (blocks_q * entries), entries)
        return [qt, -1, qt, max(qt - 1, 0)][e] if e else min(qt + 1, blocks_q - 1)

    # q, k, v, block_indices (buffer 3: at lists_base), out, the row statistics.
    params = params_of([[B, H, n, d]] * 3 + [[B, H, blocks_q, entries]] +
                       softmax_shapes(H, n, d)[3:])
    grid = (3,) if knobs.get("persistent") else (blocks_q, H, B)
    assert_no_deadlock(ptx, params, grid, simulated_threads(ptx, knobs.get("warp_specialize")),
                       config.block_n * 128, load)


@pytest.mark.parametrize("knobs", [{}, {"warp_specialize": True},
                                   {"warp_specialize": True, "persistent": True}])
def test_classified_lists_no_deadlock(knobs):
    """A mask_mod's attention grid walks the lists its classification grid wrote (read
    here through the load callback): per query tile a count, then entries 2 t + 1 (whole
    tile t) or 2 t (partial) — the causal document mask's shape, ending at the diagonal."""
    name, d, n = "document", 64, 333
    spec = cases.SPECS[name][0]
    config = dataclasses.replace(cases.config_for(d, name), tma=True, **knobs)
    ptx, record = compile_ptx(spec, d, config)
    tiles_q, tiles_k = -(-n // config.block_m), -(-n // config.block_n)
    chunks = -(-tiles_k // 32)
    # Arguments (q, k, v, document_id, out, row statistics), then the workspaces: the
    # lists [1, 1, Tq, Tk], the counts [1, 1, Tq], the chunks' counts [1, 1, Tq, chunks].
    shapes = [[B, H, n, d]] * 3 + [[n], [B, H, n, d], [B, H, n], [1, 1, tiles_q, tiles_k],
                                   [1, 1, tiles_q], [1, 1, tiles_q, chunks]]
    assert [len(s) for s in shapes[:6]] == record["arguments"]
    params = params_of(shapes)

    def load(address):
        buffer, offset = divmod(address, 1 << 40)
        qt, place = divmod(offset // 4, tiles_k) if buffer == 7 else (offset // 4, 0)
        if buffer == 4:  # document ids, the partial tiles' mask: data, not control
            return 0
        if buffer == 8:  # counts: every key tile up to the diagonal
            return min(qt, tiles_k - 1) + 1
        assert buffer == 7, hex(address)
        return 2 * place + (place < qt)  # whole below the diagonal, partial on it

    grid = (3,) if knobs.get("persistent") else (tiles_q, H, B)
    assert_no_deadlock(ptx, params, grid, simulated_threads(ptx, knobs.get("warp_specialize")),
                       config.block_n * 128, load)
