"""Softmax attention with `warp_specialize` (a TMA producer warpgroup filling a ring of
stages guarded by full / empty mbarriers, consumer warpgroups computing; issue 25) on the
GPU against a float64 reference: every softmax and block-list variant, head dims 64 / 128,
ragged sizes (N = 1, 17, 1000, 4097, Nq != Nk), and bit-identical to the tma kernel (the
copies move, the arithmetic does not). Skipped where there is no Hopper GPU."""
import dataclasses
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)
if torch.cuda.get_device_capability()[0] < 9:
    pytest.skip("warp specialisation needs sm_90a", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import tessera  # noqa: E402
from gpu_reference import case_reference, rel, run_case  # noqa: E402
from test_block_sparse_gpu import listed_error  # noqa: E402

KERNELS = cases.warp_specialized_kernels()
SOFTMAX = [name for name in cases.WARP_SPECIALIZED if name in cases.SPECS]
BLOCKS = [name for name in cases.WARP_SPECIALIZED if name in cases.BLOCK_SPARSE]


def run_softmax(name, d, q, k, v):
    return run_case(KERNELS[name, d], name, q, k, v)


def test_launches_a_producer_warpgroup():
    # The launch record's block: the consumers' warps and one producer warpgroup.
    import json
    from tessera import _core
    spec = cases.SPECS["causal"][0]
    for name, consumers in (("causal", 4), ("causal-2wg", 8)):
        config = cases.warp_specialized_config(name, 128)
        _, record = _core.compile_gpu(spec.to_mlir(cases.DTYPE, 128, 128), spec.name, "sm_90a",
                                      **config.as_kwargs())
        assert [l["block"] for l in json.loads(record)["launches"]] == [32 * consumers + 128]


@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,h,hk", [(1, 1, 2, 2), (17, 17, 4, 2), (1000, 1000, 4, 4),
                                         (4097, 4097, 2, 1), (100, 300, 2, 2)])
def test_softmax_matches_float64(name, d, nq, nk, h, hk):
    torch.manual_seed(nq * 7 + d)
    q = torch.randn(2, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(2, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    out, ref = run_softmax(name, d, q, k, v)
    err = rel(out, ref)
    print(f"warp_specialize {name} d={d} nq={nq} nk={nk}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


@pytest.mark.parametrize("name", BLOCKS)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,list_heads,ascending", [
    (1, 1, 1, False), (17, 17, 4, False), (1000, 1000, 4, True), (4097, 4097, 1, True),
    (100, 300, 4, True)])
def test_block_lists_match_float64(name, d, nq, nk, list_heads, ascending):
    err = listed_error(KERNELS[name, d], name, d, nq, nk, list_heads, ascending)
    print(f"warp_specialize {name} d={d} nq={nq} nk={nk}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


@pytest.mark.parametrize("name", ["causal", "window", "causal-2wg", "softcap"])
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_same_as_tma_alone(name, d):
    # The producer moves the copies, the consumers' arithmetic is the tma kernel's:
    # bit-identical outputs.
    torch.manual_seed(d)
    q, k, v = (torch.randn(1, 2, 1000, d, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    config = dataclasses.replace(cases.warp_specialized_config(name, d), warp_specialize=False)
    tma = tessera.compile(cases.SPECS[name][0], head_dim=d, dtype=cases.DTYPE, target="cuda",
                          config=config)
    buffers = cases.buffers_for(name, 1000, "cuda")
    a, b = torch.full_like(q, float("nan")), torch.full_like(q, float("nan"))
    tma(q, k, v, out=a, **buffers)
    KERNELS[name, d](q, k, v, out=b, **buffers)
    torch.cuda.synchronize()
    assert torch.equal(a, b)


# pingpong (two consumer warpgroups taking turns at their products, issue 25): the turns
# move when a warpgroup issues its products, not what they compute (split kernels only:
# cases.NOT_SPLIT keep TMA alone, with no turns to take).
PINGPONG = ["full", "causal", "window", "softcap"]


def pingpong_kernels(name, d):
    """(with turns, without) for one tiling: block_m 128, num_warps 8."""
    spec = cases.BLOCK_SPARSE[name][0] if name in cases.BLOCK_SPARSE else cases.SPECS[name][0]
    config = dataclasses.replace(cases.warp_specialized_config(name, d), block_m=128,
                                 num_warps=8, pingpong=True)
    return tuple(tessera.compile(spec, head_dim=d, dtype=cases.DTYPE, target="cuda",
                                 config=dataclasses.replace(config, pingpong=on))
                 for on in (True, False))


@pytest.mark.parametrize("name", PINGPONG)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk", [(1, 1), (17, 17), (1000, 1000), (4097, 4097), (100, 300)])
def test_pingpong_matches_float64_and_its_absence(name, d, nq, nk):
    turns, alone = pingpong_kernels(name, d)
    if name in cases.BLOCK_SPARSE:
        err = listed_error(turns, name, d, nq, nk, 4, True)
        assert err <= 4e-3, f"relative error {err:.3e}"
        return
    assert_same_and_exact(turns, alone, name, d, nq, nk, seed=nq * 7 + d,
                          label=f"pingpong {name} d={d}")


def assert_same_and_exact(kernel, baseline, name, d, nq, nk, seed, label):
    """`kernel` within the float64 reference's tolerance on case `name` and bit-identical
    to `baseline` (the same arithmetic, scheduled otherwise)."""
    torch.manual_seed(seed)
    q, k, v = (torch.randn(2, 4, n, d, device="cuda", dtype=torch.bfloat16)
               for n in (nq, nk, nk))
    buffers = cases.buffers_for(name, max(nq, nk), "cuda")
    a, b = torch.full_like(q, float("nan")), torch.full_like(q, float("nan"))
    kernel(q, k, v, out=a, **buffers)
    baseline(q, k, v, out=b, **buffers)
    torch.cuda.synchronize()
    err = rel(a, case_reference(name, q, k, v, buffers))
    print(f"{label} nq={nq} nk={nk}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"
    assert torch.equal(a, b)


# intra_warpgroup_overlap (issue 25): each key loop's P·V issued one iteration later,
# under the next softmax. The same ops in another order: bit-identical to the split
# kernel without it, on one and two consumer warpgroups, with and without pingpong.
OVERLAP = ["full", "causal", "window", "softcap", "full-1stage"]
OVERLAP_TILINGS = {"1wg": {}, "2wg": {"block_m": 128, "block_n": 128, "num_warps": 8},
                   "2wg-pingpong": {"block_m": 128, "block_n": 128, "num_warps": 8,
                                    "pingpong": True}}


def overlap_kernels(name, d, tiling):
    """(with the overlap, without) for one tiling."""
    spec = cases.SPECS[name][0]
    config = dataclasses.replace(cases.warp_specialized_config(name, d),
                                 **OVERLAP_TILINGS[tiling])
    return tuple(tessera.compile(spec, head_dim=d, dtype=cases.DTYPE, target="cuda",
                                 config=dataclasses.replace(config, intra_warpgroup_overlap=on))
                 for on in (True, False))


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("tiling", list(OVERLAP_TILINGS))
@pytest.mark.parametrize("nq,nk", [(1, 1), (17, 17), (1000, 1000), (4097, 4097), (100, 300),
                                   (300, 100)])
def test_overlap_matches_float64_and_its_absence(name, d, tiling, nq, nk):
    overlapped, plain = overlap_kernels(name, d, tiling)
    assert_same_and_exact(overlapped, plain, name, d, nq, nk, seed=nq * 11 + nk + d,
                          label=f"overlap {name} d={d} {tiling}")
