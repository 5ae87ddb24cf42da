"""tessera.autotune(..., backward=True) on the GPU: the softmax backward's config tuned by
timing the gradient kernels, stored under its own key, and used by kernel.grad and by torch
autograd through the kernel (gradients against float64). Skipped where there is no GPU."""
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

import tessera  # noqa: E402

SPEC = tessera.attention(causal=True)
D = 128
SPACE = {"block_m": [64, 128], "block_n": [64, 128], "num_warps": [4, 8],
         "num_stages": [1, 2]}


def _float64_grads(q, k, v, g):
    q, k, v = (x.double().requires_grad_() for x in (q, k, v))
    s = (q @ k.transpose(-1, -2)) * D ** -0.5
    n = s.shape[-1]
    keep = torch.ones(n, n, dtype=torch.bool, device="cuda").tril()
    o = torch.softmax(s.masked_fill(~keep, float("-inf")), -1) @ v
    o.backward(g.double())
    return q.grad, k.grad, v.grad


def test_backward_tuned_on_the_gpu_and_used(tmp_path):
    store = tmp_path / "tuning.json"
    r = tessera.autotune(SPEC, head_dim=D, dtype="bfloat16", target="cuda", key=(2, 4, 1000),
                         space=SPACE, store=store, progress=False, workers=0, backward=True)
    timed = [t for t in r.table if t.status == "ok"]
    assert timed and r.ms == min(t.ms for t in timed) and r.ms > 0
    # Candidates invalid for the backward are refused before compiling, with the reason.
    assert any("multiples of 16 x num_warps" in t.reason for t in r.table)
    assert r.kernel.grad_config == r.config

    q, k, v = (torch.randn(2, 4, 1000, D, device="cuda", dtype=torch.bfloat16)
               for _ in range(3))
    g = torch.randn(2, 4, 1000, D, device="cuda", dtype=torch.bfloat16)
    o, lse = r.kernel(q, k, v, return_lse=True)
    want = _float64_grads(q, k, v, g)
    got = r.kernel.grad(q, k, v, o, lse, g)
    for a, b in zip(got, want):
        err = (a.double() - b).abs().max() / b.abs().max()
        assert err < 2e-2, err
    # Torch autograd through the kernel runs the tuned gradient kernels.
    qa, ka, va = (x.clone().requires_grad_() for x in (q, k, v))
    r.kernel(qa, ka, va).backward(g)
    for a, b in zip((qa.grad, ka.grad, va.grad), got):
        torch.testing.assert_close(a, b, atol=0, rtol=0)

    again = tessera.autotune(SPEC, head_dim=D, dtype="bfloat16", target="cuda",
                             key=(2, 4, 1000), space=SPACE, store=store, progress=False,
                             backward=True)
    assert again.from_store and again.config == r.config
