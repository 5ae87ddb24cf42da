"""Softmax attention with the `persistent` knob (min(blocks per SM x #SMs, items) CTAs, each
walking (batch, head, query tile) items) on the GPU against a float64 reference: every
variant of test_softmax_gpu.py and test_block_sparse_gpu.py, ragged sizes (N = 1, N not a
tile multiple), grids of fewer work items than SMs and of many per program, and
bit-identical to the kernel without the knob (the items' arithmetic is the same). Each
alone and with TMA copies, and (sm_90a) with a producer warpgroup filling the next item's
Q and K / V under this item's last key tiles (warp_specialize, with intra-warpgroup
overlap and pingpong where the config has two consumer warpgroups). Skipped without a
CUDA GPU."""
import dataclasses
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import tessera  # noqa: E402
from gpu_reference import rel, run_case  # noqa: E402
from test_block_sparse_gpu import listed_error  # noqa: E402

CHIP = "sm_90a" if torch.cuda.get_device_capability()[0] >= 9 else "sm_80"
SMS = torch.cuda.get_device_properties(0).multi_processor_count
BLOCKS = dict(cases.BLOCK_SPARSE)
_kernels = {}


# Knobs beside persistent: TMA copies on sm_90a, then a producer warpgroup (the kernels
# that cannot be split keep TMA alone), then its consumers' overlap (two warpgroups also
# take turns).
KNOBS = {"plain": {}}
if CHIP == "sm_90a":
    KNOBS.update({"tma": {"tma": True}, "ws": {"tma": True, "warp_specialize": True},
                  "ws-overlap": {"tma": True, "warp_specialize": True,
                                 "intra_warpgroup_overlap": True}})


def knobs_for(knobs, config):
    extra = dict(KNOBS[knobs])
    if extra.get("intra_warpgroup_overlap") and config.num_warps == 8:
        extra["pingpong"] = True
    return extra


def kernel(name, d, persistent=True, knobs="plain"):
    key = (name, d, persistent, knobs)
    if key not in _kernels:
        spec, config = ((cases.SPECS[name][0], cases.config_for(d, name))
                        if name in cases.SPECS else BLOCKS[name])
        _kernels[key] = tessera.compile(
            spec, head_dim=d, dtype=cases.DTYPE, target="cuda", chip=CHIP,
            config=dataclasses.replace(config, persistent=persistent,
                                       **knobs_for(knobs, config)))
    return _kernels[key]


def run_softmax(name, q, k, v, persistent=True, knobs="plain"):
    return run_case(kernel(name, q.shape[3], persistent, knobs), name, q, k, v)


# (B, H, Hk, Nq, Nk): B·H·tiles from 1 item (fewer than the SMs) to thousands (many per
# program); ragged N and Nq != Nk.
SHAPES = [(1, 1, 1, 1, 1), (2, 4, 2, 17, 17), (2, 4, 4, 1000, 1000), (1, 2, 1, 4097, 4097),
          (2, 2, 2, 100, 300), (8, 16, 16, 1000, 1000)]


@pytest.mark.parametrize("knobs", list(KNOBS))
@pytest.mark.parametrize("name", list(cases.SPECS))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("b,h,hk,nq,nk", SHAPES)
def test_softmax_matches_float64(name, d, b, h, hk, nq, nk, knobs):
    torch.manual_seed(nq * 7 + d + b)
    q = torch.randn(b, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(b, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(b, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    out, ref = run_softmax(name, q, k, v, knobs=knobs)
    err = rel(out, ref)
    items = b * h * -(-nq // kernel(name, d).config.block_m)
    print(f"persistent {knobs} {name} d={d} items={items} sms={SMS}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


@pytest.mark.parametrize("knobs", list(KNOBS))
@pytest.mark.parametrize("name", ["full", "causal", "window", "document", "causal-2wg"])
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("b,h,n", [(1, 1, 17), (4, 8, 1000), (16, 16, 2048)])
def test_same_as_without_persistent(name, d, b, h, n, knobs):
    # The items' arithmetic is the programs': bit-identical to the kernel without the
    # knob (the same other knobs), for fewer items than SMs and for many per program.
    torch.manual_seed(d + n)
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    walked, _ = run_softmax(name, q, k, v, knobs=knobs)
    launched, _ = run_softmax(name, q, k, v, persistent=False, knobs=knobs)
    assert torch.equal(walked, launched)


def test_grid_is_min_of_items_and_sms():
    # The launch the image plans on this device: min(items, k x #SMs) programs.
    image = kernel("causal", 64)._image
    grid = image.record.plan([(2, 3, 1000, 64)] * 4 + [(2, 3, 1000)], sm_count=SMS)[1][-1]
    blocks = image.record.plan([(64, 64, 8192, 64)] * 4 + [(64, 64, 8192)], sm_count=SMS)[1][-1]
    assert grid == (2 * 3 * 16, 1, 1)
    assert blocks[0] % SMS == 0 and SMS <= blocks[0] <= 4 * SMS


@pytest.mark.parametrize("knobs", list(KNOBS))
@pytest.mark.parametrize("name", list(BLOCKS))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,list_heads,ascending", [
    (1, 1, 1, False), (17, 17, 4, False), (1000, 1000, 4, True), (4097, 4097, 1, True),
    (100, 300, 4, True)])
def test_block_lists_match_float64(name, d, nq, nk, list_heads, ascending, knobs):
    err = listed_error(kernel(name, d, knobs=knobs), name, d, nq, nk, list_heads, ascending)
    print(f"persistent {knobs} {name} d={d} nq={nq} nk={nk}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"
