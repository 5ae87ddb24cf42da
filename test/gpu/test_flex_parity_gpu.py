"""Issue 31's Flex parity list on the GPU against float64 (CPU references): float and 2-D
tables, T5 buckets, Morton masks, exp2 / log2, a window without causality, and head dims
that are no multiple of 64. Skipped where there is no GPU."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import flex_cases  # noqa: E402
import tessera  # noqa: E402
from tessera import reference  # noqa: E402

KERNELS = flex_cases.kernels()
BOUND = 4e-3  # bf16 inputs and output (SEMANTICS.md: the peers reach 2.0-2.3e-3)


def qkv(d, dv, nq, nk, h, hk, seed):
    torch.manual_seed(seed)
    q = torch.randn(1, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, hk, nk, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(1, hk, nk, dv, device="cuda", dtype=torch.bfloat16)
    return q, k, v


def host(x):
    return x.float().cpu().numpy()


@pytest.mark.parametrize("name", list(flex_cases.SPECS))
@pytest.mark.parametrize("nq,nk", [(1, 1), (300, 300), (1000, 1000), (200, 700)])
def test_modifiers_match_float64(name, nq, nk):
    _, numpy_kwargs, tables = flex_cases.SPECS[name]
    host_tables = {n: t.astype(np.float32) for n, t in tables().items()}
    q, k, v = qkv(64, 64, nq, nk, flex_cases.H, 2, nq + nk)
    out = torch.full((1, flex_cases.H, nq, 64), float("nan"), device="cuda", dtype=torch.bfloat16)
    KERNELS[name](q, k, v, out=out,
                  **{n: torch.from_numpy(t).cuda() for n, t in host_tables.items()})
    torch.cuda.synchronize()
    ref, _ = reference.attention(host(q), host(k), host(v), **numpy_kwargs(host_tables))
    err = reference.relative_error(host(out), ref)
    print(f"{name} nq={nq} nk={nk}: {err:.2e}")
    assert err <= BOUND


@pytest.mark.parametrize("d,dv", flex_cases.HEAD_DIMS)
@pytest.mark.parametrize("n", [1, 333, 1000])
def test_head_dims_match_float64(d, dv, n):
    q, k, v = qkv(d, dv, n, n, 4, 2, d + n)
    out = torch.full((1, 4, n, dv), float("nan"), device="cuda", dtype=torch.bfloat16)
    KERNELS["causal", d, dv](q, k, v, out=out)
    torch.cuda.synchronize()
    ref, _ = reference.attention(host(q), host(k), host(v), causal=True)
    assert reference.relative_error(host(out), ref) <= BOUND


@pytest.mark.parametrize("d,dv", flex_cases.LINEAR_HEAD_DIMS)
def test_linear_head_dims_match_float64(d, dv):
    from tessera.linear import reference as linear_reference
    q, k, v = (x * 0.3 for x in qkv(d, dv, 777, 777, 2, 2, d))
    decay = torch.tensor([0.9, 0.99], device="cuda")
    out, _ = KERNELS["linear", d, dv](q, k, v, decay=decay)
    torch.cuda.synchronize()
    ref, _ = linear_reference(host(q), host(k), host(v), decay=host(decay))
    assert reference.relative_error(host(out), ref) <= 5e-3
