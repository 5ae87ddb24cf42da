"""The `warp_specialize` knob without a GPU (issue 25): with tma, every softmax variant's
sm_90a kernel runs a producer warpgroup (setmaxnreg.dec, one thread waiting on empty
barriers and issuing cp.async.bulk.tensor) beside consumer warpgroups (setmaxnreg.inc,
waits on full barriers, wgmma, arrivals on empty barriers, named barriers among
themselves), launched with 128 more threads, and ptxas assembles it without spills. Off,
the kernels are as they were; without tma or on sm_80 it is refused; the CPU ignores it."""
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
import cases  # noqa: E402
import tessera  # noqa: E402
from tessera import _core  # noqa: E402

from ptxas_report import ptxas_report  # noqa: E402
# Dense walks (one and two consumer warpgroups, one stage, a score_mod): every variant
# split (cases.NOT_SPLIT are the others).
VARIANTS = tuple(n for n in cases.WARP_SPECIALIZED if n not in cases.NOT_SPLIT)


def compile_variant(name, d, chip="sm_90a", **knobs):
    spec = cases.BLOCK_SPARSE[name][0] if name in cases.BLOCK_SPARSE else cases.SPECS[name][0]
    config = dataclasses.replace(cases.warp_specialized_config(name, d), **knobs)
    ptx, record = _core.compile_gpu(spec.to_mlir(cases.DTYPE, d, d), spec.name, chip,
                                    **config.as_kwargs())
    return ptx.decode(), json.loads(record), config


def ptxas(ptx, tmp_path):
    """(registers, spill bytes) per kernel (sm_90a), in the order ptxas reports them."""
    report = ptxas_report(ptx, "sm_90a", tmp_path).values()
    return [r.registers for r in report], [r.spill_stores for r in report]


def attention_kernel(ptx):
    """The last kernel of the module (the attention grid; a mask_mod's classification
    grids come first)."""
    return ptx[ptx.rindex(".entry"):]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_producer_and_consumers(name, d, tmp_path):
    ptx, record, config = compile_variant(name, d)
    kernel = attention_kernel(ptx)
    consumers = config.num_warps // 4
    entry, producer, consumer = {1: (128, 40, 216), 2: (168, 24, 240)}[consumers]
    assert record["launches"][-1]["block"] == 32 * config.num_warps + 128
    assert f".maxntid {32 * config.num_warps + 128}, 1, 1" in kernel
    assert f".maxnreg {entry}" in kernel
    assert kernel.count(f"setmaxnreg.dec.sync.aligned.u32 \t{producer};") == 1
    assert kernel.count(f"setmaxnreg.inc.sync.aligned.u32 \t{consumer};") == 1
    assert "cp.async.bulk.tensor" in kernel and "wgmma.mma_async" in kernel
    # Full barriers take one arrival (arrive.expect_tx), empty ones one per consumer warp.
    inits = re.findall(r"mbarrier\.init\.shared::cta\.b64 \[%r\d+\], (\d+);", kernel)
    assert set(inits) == {"1", str(config.num_warps)} and inits.count("1") == inits.count(
        str(config.num_warps))
    assert "mbarrier.try_wait.parity.shared::cta.b64" in kernel
    assert "@first mbarrier.arrive.shared::cta.b64" in kernel
    assert "bar.warp.sync" in kernel
    # One block-wide barrier (after the barriers' initialisation); the consumers' own are
    # named barrier 1 over their threads.
    assert kernel.count("bar.sync \t0;") == 1
    assert set(re.findall(r"bar\.sync \t(\d+, \d+);", kernel)) <= {f"1, {32 * config.num_warps}"}
    assert not re.search(r"cp\.async\.(cg|ca|wait_group|commit_group)", kernel)
    registers, spills = ptxas(ptx, tmp_path)
    assert max(spills) == 0, spills
    assert entry in registers  # ptxas reports the cap it was given


@pytest.mark.parametrize("name", ["causal", "document", "blocks-causal"])
def test_off_is_unchanged(name):
    # Off (the default) is the tma kernel as it was: no producer.
    off, _, _ = compile_variant(name, 64, warp_specialize=False)
    assert "setmaxnreg" not in off
    default, _, _ = compile_variant(name, 64, warp_specialize=False, tma=False)
    assert "setmaxnreg" not in default and "cp.async.bulk" not in default


@pytest.mark.parametrize("name", cases.NOT_SPLIT)
def test_kernels_it_cannot_split_keep_their_lowering(name):
    # causal-2m is mma.sync; tokens-causal walks per-token lists in a while loop (cp.async);
    # a mask_mod's classified tiles and block lists' entries are read only in branches
    # (a skipped tile's slot would go back unread): TMA alone.
    ptx, record, _ = compile_variant(name, 64)
    tma, _, _ = compile_variant(name, 64, warp_specialize=False)
    assert ptx == tma and "setmaxnreg" not in ptx


def test_refused_without_tma_or_on_sm80():
    spec = cases.SPECS["causal"][0]
    module = spec.to_mlir(cases.DTYPE, 64, 64)
    for chip, knobs, got in (("sm_90a", dict(warp_specialize=True), "tma=False and chip sm_90a"),
                             ("sm_80", dict(tma=True, warp_specialize=True),
                              "tma=True and chip sm_80")):
        with pytest.raises(_core.CompileError,
                           match=rf"warp_specialize needs tma and sm_90a .*; got {got}"):
            _core.compile_gpu(module, spec.name, chip, **tessera.Config(**knobs).as_kwargs())
    with pytest.raises(_core.CompileError, match="min_blocks must be 0 or 1, got 2"):
        _core.compile_gpu(module, spec.name, "sm_90a", **tessera.Config(
            tma=True, warp_specialize=True, min_blocks=2).as_kwargs())


@pytest.mark.parametrize("knob,flag", [("warp_specialize", "warp-specialize=true"),
                                       ("intra_warpgroup_overlap",
                                        "intra-warpgroup-overlap=true")])
def test_pipeline_text_and_cpu(knob, flag):
    # Each knob is in the pipeline text only where set; the CPU ignores it.
    import numpy as np
    assert knob not in tessera.Config().as_kwargs()
    on = tessera.Config(**{"tma": True, "warp_specialize": True, knob: True})
    assert flag in _core.gpu_pipeline("sm_90a", **on.as_kwargs())
    spec = tessera.attention(causal=True)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 37, 32)).astype(np.float32) for _ in range(3))
    plain = tessera.compile(spec, head_dim=32, dtype="float32", config=tessera.Config())
    split = tessera.compile(spec, head_dim=32, dtype="float32", config=on)
    assert np.array_equal(plain(q, k, v), split(q, k, v))


def test_autotune_space_tries_it_with_tma():
    import importlib
    at = importlib.import_module("tessera.autotune")  # `tessera.autotune` is the function
    space = {**at.DEFAULT_SPACE["cuda"], **at.SM90A_SOFTMAX_KNOBS}
    candidates = at._candidates(space, "cuda")
    assert {(c.tma, c.warp_specialize) for c in candidates} == {
        (False, False), (True, False), (True, True)}
    assert all(c.tma for c in candidates if c.warp_specialize)
    # Asked for alone, it is kept (and the compiler says why it refuses it).
    alone = at._candidates({"warp_specialize": [True]}, "cuda")
    assert [(c.tma, c.warp_specialize) for c in alone] == [(False, True)]
    assert "warp_specialize" in at._cfg_text(candidates[-1])


@pytest.mark.parametrize("stages", [3, 4])
def test_ring_takes_num_stages(stages, tmp_path):
    # K and V each get a ring of num_stages slots (a full and an empty barrier a slot), Q
    # one: slots n % stages, parities (n / stages) & 1 for a count that is no power of two.
    spec = cases.SPECS["causal"][0]
    config = tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=stages, tma=True,
                            warp_specialize=True)
    ptx, _ = _core.compile_gpu(spec.to_mlir(cases.DTYPE, 64, 64), spec.name, "sm_90a",
                               **config.as_kwargs())
    inits = re.findall(r"mbarrier\.init\.shared::cta\.b64 \[%r\d+\], (\d+);", ptx.decode())
    assert inits.count("1") == inits.count("4") == 1 + 2 * stages
    _, spills = ptxas(ptx.decode(), tmp_path)
    assert max(spills) == 0, spills


def consumer_events(kernel):
    """The consumers' ring and product events, in PTX order (labels and loops dropped)."""
    code = kernel[kernel.index("setmaxnreg.inc"):]
    return [re.sub(r"\s+", " ", m) for m in re.findall(
        r"mbarrier\.try_wait|wgmma\.commit_group|wgmma\.wait_group\.sync\.aligned\s+\d+"
        r"|@first mbarrier\.arrive|bar\.warp\.sync", code)]


@pytest.mark.parametrize("name", ["full", "causal", "window", "causal-2wg"])
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_slots_go_back_after_their_products(name, d):
    # K's slot goes back right after Q·Kᵀ is waited for, before V's fill is waited for
    # (the producer refills K under the softmax), V's after P·V: never two arrivals in a
    # row at an iteration's end. (In block-list and mask_mod kernels the products sit in
    # the branches of a classification: their slots go back after the branch.)
    ptx, _, _ = compile_variant(name, d)
    events = " ; ".join(consumer_events(attention_kernel(ptx)))
    early = ("wgmma.commit_group ; wgmma.wait_group.sync.aligned 0 ; bar.warp.sync ; "
             "@first mbarrier.arrive ; mbarrier.try_wait")
    # In every copy of the key loop LLVM lays out (three or more).
    assert events.count(early) >= 3, events
    assert "@first mbarrier.arrive ; @first mbarrier.arrive" not in events, events
