"""The `pingpong` knob without a GPU (issue 25): warp_specialize's two consumer
warpgroups take turns at their products, FlashAttention-3's scheduler barriers. In
the sm_90a PTX: warpgroup 1 arrives on named barrier 2 at entry (warpgroup 0 goes
first), each turn waits on the warpgroup's own barrier (2 + g, 256 threads) right before
its Q·Kᵀ is issued and arrives on the other's right after its P·V is issued (before
that is waited for), warpgroup 0 waits on barrier 2 once more at exit (every barrier
balanced); block barriers stay named barrier 1; ptxas assembles it without spills.
Without warp_specialize or with one consumer warpgroup it is refused; off, nothing
changes."""
import dataclasses
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cases  # noqa: E402
import tessera  # noqa: E402
from tessera import _core  # noqa: E402
from test_warp_specialize_ptx import attention_kernel, consumer_events, ptxas  # noqa: E402

# Dense walks (the split variants with 128-row query tiles; cases.NOT_SPLIT keep no
# producer, so no turns).
VARIANTS = ("full", "causal", "window", "softcap")


def pingpong_config(name, d, **knobs):
    return dataclasses.replace(cases.warp_specialized_config(name, d),
                               **{"block_m": 128, "num_warps": 8, "pingpong": True, **knobs})


def compile_pingpong(name, d, **knobs):
    spec = cases.BLOCK_SPARSE[name][0] if name in cases.BLOCK_SPARSE else cases.SPECS[name][0]
    ptx, _ = _core.compile_gpu(spec.to_mlir(cases.DTYPE, d, d), spec.name, "sm_90a",
                               **pingpong_config(name, d, **knobs).as_kwargs())
    return ptx.decode()


def turn_events(kernel):
    code = kernel[kernel.index("setmaxnreg.inc"):]
    return [re.sub(r"\s+", " ", m) for m in re.findall(
        r"bar\.(?:sync|arrive)\s+\S+, \d+|wgmma\.commit_group|wgmma\.wait_group\.sync\.aligned"
        r"\s+\d+", code)]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_turns(name, d, tmp_path):
    ptx = compile_pingpong(name, d)
    kernel = attention_kernel(ptx)
    events = turn_events(kernel)
    # Entry and exit: warpgroup 1's arrival for warpgroup 0's first turn, warpgroup 0's
    # last wait; named barriers 1 (block barriers), 2 and 3 (turns) only, 256 threads.
    assert events[0] == "bar.arrive 2, 256" and events[-1] == "bar.sync 2, 256", events
    assert events.count("bar.arrive 2, 256") == 1 and events.count("bar.sync 2, 256") == 1
    assert {e.split()[1] for e in events if e.startswith("bar.") and "%r" not in e} <= {
        "1,", "2,"}
    assert all(e.endswith(", 256") for e in events if e.startswith("bar."))
    text = " ; ".join(events)
    # A turn's wait right before its first product is issued; its arrival right after
    # its last is issued, before that is waited for. (Branch kernels: LLVM merges both
    # branches' arrivals into one.)
    waits = len(re.findall(r"bar\.sync %r\d+, 256 ; wgmma\.commit_group", text))
    arrivals = len(re.findall(r"wgmma\.commit_group ; bar\.arrive %r\d+, 256 ; "
                              r"wgmma\.wait_group", text))
    assert waits >= 2 and arrivals >= 1, text
    assert len(re.findall(r"bar\.sync %r", text)) == waits
    assert len(re.findall(r"bar\.arrive %r", text)) == arrivals
    # Early release is kept: K's slot goes back after Q·Kᵀ's wait, before V's.
    assert ("wgmma.wait_group.sync.aligned 0 ; bar.warp.sync ; @first mbarrier.arrive ; "
            "mbarrier.try_wait") in " ; ".join(consumer_events(kernel)) or name not in (
        "full", "causal", "window")
    registers, spills = ptxas(ptx, tmp_path)
    assert max(spills) == 0, spills
    assert 168 in registers


def test_off_is_warp_specialize_alone():
    # Off (the default): the two-warpgroup kernel without turns.
    off = compile_pingpong("causal", 64, pingpong=False)
    assert "bar.arrive" not in off and not re.search(r"bar\.sync\s+(%r|2,)", off)
    assert "pingpong" not in tessera.Config(tma=True, warp_specialize=True).as_kwargs()
    on = pingpong_config("causal", 64)
    assert "pingpong=true" in _core.gpu_pipeline("sm_90a", **on.as_kwargs())


def test_refused_without_two_consumer_warpgroups():
    spec = cases.SPECS["causal"][0]
    module = spec.to_mlir(cases.DTYPE, 64, 64)
    with pytest.raises(_core.CompileError, match=r"pingpong needs warp_specialize"):
        _core.compile_gpu(module, spec.name, "sm_90a", **tessera.Config(
            block_m=128, num_warps=8, tma=True, pingpong=True).as_kwargs())
    with pytest.raises(_core.CompileError,
                       match=r"pingpong takes turns between two consumer warpgroups "
                             r"\(block_m 128, num_warps 8\); this grid has 1"):
        _core.compile_gpu(module, spec.name, "sm_90a", **tessera.Config(
            tma=True, warp_specialize=True, pingpong=True).as_kwargs())


def test_autotune_space_tries_it_where_valid():
    import importlib
    at = importlib.import_module("tessera.autotune")  # `tessera.autotune` is the function
    space = {**at.DEFAULT_SPACE["cuda"], **at.SM90A_SOFTMAX_KNOBS}
    candidates = at._candidates(space, "cuda")
    turns = [c for c in candidates if c.pingpong]
    assert turns and all(c.tma and c.warp_specialize and c.num_warps == 8 for c in turns)
    assert len(turns) == len([c for c in candidates if c.warp_specialize and c.num_warps == 8
                              and not c.pingpong])
    assert "pingpong" in at._cfg_text(turns[0])
