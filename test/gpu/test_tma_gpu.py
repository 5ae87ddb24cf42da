"""Softmax attention with the `tma` knob (Q, K and V copied by cp.async.bulk.tensor from
tensor maps, mbarrier completion) on the GPU against a float64 reference: every variant
of test_softmax_gpu.py and test_block_sparse_gpu.py, ragged sizes (N = 1, N not a tile
multiple), head-transposed inputs, and a stride TMA cannot take, refused by the runtime.
Skipped where there is no Hopper GPU."""
import dataclasses
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)
if torch.cuda.get_device_capability()[0] < 9:
    pytest.skip("TMA needs sm_90", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import tessera  # noqa: E402
from gpu_reference import rel, run_case  # noqa: E402
from test_block_sparse_gpu import listed_error  # noqa: E402

# Every softmax variant (dense walks, mask_mod, block lists) with its usual config plus tma.
BLOCKS = dict(cases.BLOCK_SPARSE)


def _compile(spec, d, config):
    return tessera.compile(spec, head_dim=d, dtype=cases.DTYPE, target="cuda",
                           config=dataclasses.replace(config, tma=True))


_kernels = {}


def kernel(name, d):
    if (name, d) not in _kernels:
        if name in cases.SPECS:
            spec = cases.SPECS[name][0]
            _kernels[name, d] = _compile(spec, d, cases.config_for(d, name))
        else:
            spec, config = BLOCKS[name]
            _kernels[name, d] = _compile(spec, d, config)
    return _kernels[name, d]


def run_softmax(name, q, k, v):
    return run_case(kernel(name, q.shape[3]), name, q, k, v)


@pytest.mark.parametrize("name", list(cases.SPECS))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,h,hk", [(1, 1, 2, 2), (17, 17, 4, 2), (1000, 1000, 4, 4),
                                         (4097, 4097, 2, 1), (100, 300, 2, 2)])
def test_softmax_matches_float64(name, d, nq, nk, h, hk):
    torch.manual_seed(nq * 7 + d)
    q = torch.randn(2, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(2, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    out, ref = run_softmax(name, q, k, v)
    err = rel(out, ref)
    print(f"tma {name} d={d} nq={nq} nk={nk}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


@pytest.mark.parametrize("name", ["full", "causal", "window", "prefix-lm"])
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_head_transposed_inputs(name, d):
    # [B, N, H, D] tensors seen as [B, H, N, D]: strides the descriptors take as they are.
    torch.manual_seed(d + 3)
    n = 777
    q, k, v = (torch.randn(2, n, 4, d, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
               for _ in range(3))
    out, ref = run_softmax(name, q, k, v)
    err = rel(out, ref)
    print(f"tma head-transposed {name} d={d}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
def test_same_as_without_tma(d):
    # The copies change, not the arithmetic: bit-identical to the cp.async kernel.
    torch.manual_seed(d)
    q, k, v = (torch.randn(1, 2, 1000, d, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    spec = cases.SPECS["causal"][0]
    plain = tessera.compile(spec, head_dim=d, dtype=cases.DTYPE, target="cuda",
                            config=cases.config_for(d, "causal"))
    a, b = torch.full_like(q, float("nan")), torch.full_like(q, float("nan"))
    plain(q, k, v, out=a)
    kernel("causal", d)(q, k, v, out=b)
    torch.cuda.synchronize()
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(cases.BLOCK_SPARSE))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,list_heads,ascending", [
    (1, 1, 1, False), (17, 17, 4, False), (1000, 1000, 4, True), (4097, 4097, 1, True),
    (100, 300, 4, True)])
def test_block_lists_match_float64(name, d, nq, nk, list_heads, ascending):
    err = listed_error(kernel(name, d), name, d, nq, nk, list_heads, ascending)
    print(f"tma {name} d={d} nq={nq} nk={nk}: {err:.2e}")
    assert err <= 4e-3, f"relative error {err:.3e}"


def test_unsupported_stride_is_refused():
    # Rows 65 elements apart (130 bytes): TMA takes strides in multiples of 16 bytes. The
    # kernel call refuses q before any descriptor is made; the kernel's own launch record
    # refuses it too, with the runtime's rule named.
    from tessera import _core, _runtime
    base = torch.randn(1, 2, 300, 65, device="cuda", dtype=torch.bfloat16)
    q = base[..., :64]
    k = torch.randn(1, 2, 300, 64, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    with pytest.raises(ValueError, match="q rows must start at 16-byte boundaries"):
        kernel("full", 64)(q, k, v)
    spec = cases.SPECS["full"][0]
    config = dataclasses.replace(cases.config_for(64, "full"), tma=True)
    _, record = _core.compile_gpu(spec.to_mlir(cases.DTYPE, 64, 64), spec.name, "sm_90a",
                                  **config.as_kwargs())
    out = torch.empty_like(k)
    lse = torch.empty(1, 2, 300, device="cuda")
    with pytest.raises(_runtime.LaunchRecordError,
                       match=r"argument 0 \(tensor_maps\[0\]\): tensor map: unsupported stride "
                             r"\d+ bytes of dim \d \(strides \[\d+, \d+, 130, 2\]\)"):
        _runtime.LaunchRecord.parse(record).encode_tensor_maps([q, k, v, out, lse])
