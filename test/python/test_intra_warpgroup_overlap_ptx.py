"""`intra_warpgroup_overlap` without a GPU (issue 25): warp_specialize's consumers issue
each key loop's P·V one iteration later, right after the next Q·Kᵀ, so the softmax waits
for Q·Kᵀ alone (wgmma.wait_group 1) while P·V runs; the loop's products, loads and ring
protocol stay those of the split kernel, ptxas assembles it, and it is refused without
warp_specialize; the CPU ignores it."""
import dataclasses
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
import cases  # noqa: E402
import tessera  # noqa: E402
from tessera import _core  # noqa: E402

from ptxas_report import ptxas_report  # noqa: E402

# The dense walks warp_specialize splits, on one and two consumer warpgroups.
VARIANTS = ("full", "causal", "window", "softcap", "causal-2wg", "full-1stage", "prefix-lm")
# A mask_mod's walk issues its products inside the branches of each tile's class: no
# loop body with two products to rotate (the kernel is warp_specialize's alone).
UNROTATED = ("prefix-lm",)
# Spill bytes ptxas may report: none. D = 128 on 128 x 128 tiles (S and O take 128
# accumulator registers, the carried P 32 more beside the softmax) spilled 200 B while
# each loop of a walk had its own epilogue (its last P·V) before the next loop's
# prologue; the walk's loops now form one chain and spill nothing.
SPILL_CEILINGS = {}


def compile_variant(name, d, **knobs):
    spec = cases.SPECS[name][0]
    config = dataclasses.replace(cases.warp_specialized_config(name, d),
                                 **{"intra_warpgroup_overlap": True, **knobs})
    ptx, record = _core.compile_gpu(spec.to_mlir(cases.DTYPE, d, d), spec.name, "sm_90a",
                                    **config.as_kwargs())
    return ptx.decode()


def attention_kernel(ptx):
    return ptx[ptx.rindex(".entry"):]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_softmax_runs_under_the_last_product(name, d, tmp_path):
    ptx = compile_variant(name, d)
    kernel = attention_kernel(ptx)
    plain = attention_kernel(compile_variant(name, d, intra_warpgroup_overlap=False))
    if name in UNROTATED:  # the products sit in a classification's branches
        assert kernel == plain
        return
    consumers = kernel[kernel.index("setmaxnreg.inc"):]
    # The rotated loop waits for its first product alone; the split kernel never does.
    assert "wgmma.wait_group.sync.aligned \t1;" in consumers
    assert "wgmma.wait_group.sync.aligned \t1;" not in plain
    # Same copies and barriers; the prologue and epilogue add one copy of each product.
    for pattern in ("cp.async.bulk.tensor", "setmaxnreg", "@first mbarrier.arrive"):
        assert (pattern in kernel) == (pattern in plain), pattern
    assert kernel.count("wgmma.mma_async") > plain.count("wgmma.mma_async")
    report = ptxas_report(ptx, "sm_90a", tmp_path).values()
    spills = max(r.spill_stores for r in report)
    assert spills <= SPILL_CEILINGS.get((name, d), 0), spills
    # A register a product in flight reads, written by anything else, makes ptxas issue
    # the products one at a time (C7513): the overlap would be gone.
    assert not any(r.wgmma_serialized for r in report)


@pytest.mark.parametrize("pingpong", [False, True])
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_a_block_list_walk_rotates_both_loops(d, pingpong, tmp_path):
    """An ascending list is walked as the dense walk is (unmasked whole tiles, then the
    masked rest, a tile not to be visited masked whole): no product in a branch, so both
    loops rotate and the chain spills nothing at D = 128 on 128 x 128 tiles (the walk
    whose masked loop applied its products in a branch: one rotated loop, 144 B)."""
    spec, config = cases.BLOCK_SPARSE["blocks-causal"]
    config = dataclasses.replace(config, tma=True, warp_specialize=True,
                                 intra_warpgroup_overlap=True, pingpong=pingpong)
    ptx, _ = _core.compile_gpu(spec.to_mlir(cases.DTYPE, d, d), spec.name, "sm_90a",
                               **config.as_kwargs())
    kernel = attention_kernel(ptx.decode())
    consumers = kernel[kernel.index("setmaxnreg.inc"):]
    assert consumers.count("wgmma.wait_group.sync.aligned \t1;") == 2
    report = ptxas_report(ptx, "sm_90a", tmp_path).values()
    assert max(r.spill_stores for r in report) == 0
    assert not any(r.wgmma_serialized for r in report)


def test_its_loop_in_the_tgpu_stage():
    # kernel.ir("tgpu") shows the rotation: a guarded prologue and epilogue around the
    # rotated loop, P·V marked as issued one iteration later.
    spec = tessera.attention(causal=True)
    config = tessera.Config(block_m=128, block_n=64, num_warps=8, tma=True,
                            warp_specialize=True, intra_warpgroup_overlap=True)
    text = _core.lower(spec.to_mlir(cases.DTYPE, 128, 128), "tgpu", **config.as_kwargs())
    # Each loop of the key range: masked edge, unmasked middle, masked edge.
    assert text.count("tgpu.rotated") == 3
    # P·V in each rotated loop, in the next loop's prologue (the chain hands the last
    # one on, after that loop's first Q·Kᵀ) and once after the chain.
    assert text.count("tgpu.product_stage = 1") == 6
    chain = text[text.index("tgpu.rotated"):]
    assert chain.count("arith.ori") == 2  # some loop of the chain ran
    body = text[:text.index("tgpu.rotated")]
    body = body[body.rindex("scf.for"):]
    # Q·Kᵀ of this iteration, then V and P·V of the last one, then the softmax.
    dots = [m.start() for m in re.finditer(r"tile\.dot", body)]
    assert len(dots) == 2 and "tgpu.product_stage = 1" in body[dots[1]:]
    assert "math.exp2" in body[dots[1]:] and "math.exp2" not in body[:dots[1]]


def test_refused_without_warp_specialize():
    spec = cases.SPECS["causal"][0]
    module = spec.to_mlir(cases.DTYPE, 64, 64)
    with pytest.raises(_core.CompileError, match="intra_warpgroup_overlap needs warp_specialize"):
        _core.compile_gpu(module, spec.name, "sm_90a", **tessera.Config(
            tma=True, intra_warpgroup_overlap=True).as_kwargs())


def test_autotune_tries_it_with_warp_specialize():
    import importlib
    at = importlib.import_module("tessera.autotune")
    space = {**at.DEFAULT_SPACE["cuda"], **at.SM90A_SOFTMAX_KNOBS}
    candidates = at._candidates(space, "cuda")
    overlapped = [c for c in candidates if c.intra_warpgroup_overlap]
    assert overlapped and all(c.warp_specialize for c in overlapped)
    assert "intra_warpgroup_overlap" in at._cfg_text(overlapped[0])
