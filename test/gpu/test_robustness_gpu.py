"""Issue 31 on the GPU: integer '//' and '%' by zero never trap and follow the defined
semantics (docs/MODIFIERS.md), and a short table is refused before launch. Skipped where
there is no GPU."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

import tessera  # noqa: E402
from tessera.reference import attention as exact, relative_error  # noqa: E402

DOC = tessera.Buffer("document_id")


def _floor_div(x, y):
    return np.where(y == 0, 0, x // np.where(y == 0, 1, y))


def _floor_mod(x, y):
    return np.where(y == 0, x, x % np.where(y == 0, 1, y))


@pytest.mark.parametrize("n", [1, 45, 300])
def test_integer_division_by_zero_on_the_gpu(n):
    def score_mod(s, b, h, i, j):
        return s + 0.01 * ((i - 20) // (j - 3)) + 0.1 * ((i - 20) % (j - 5))

    def reference_score(s, b, h, i, j):
        i, j = (np.broadcast_to(x, s.shape).astype(np.int64) for x in (i, j))
        return s + 0.01 * _floor_div(i - 20, j - 3) + 0.1 * _floor_mod(i - 20, j - 5)

    spec = tessera.attention(score_mod=score_mod, mask_mod=lambda b, h, i, j: j // (i - 4) >= 0)
    kern = tessera.compile(spec, head_dim=64, dtype="bfloat16", target="cuda")
    gen = torch.Generator().manual_seed(n)
    q, k, v = (torch.randn(1, 2, n, 64, generator=gen).to("cuda", torch.bfloat16) for _ in range(3))
    out = kern(q, k, v)
    torch.cuda.synchronize()
    qn, kn, vn = (x.float().cpu().numpy() for x in (q, k, v))

    def reference_mask(b, h, i, j):
        i, j = np.broadcast_arrays(i.astype(np.int64), j.astype(np.int64))
        return _floor_div(j, i - 4) >= 0

    want, _ = exact(qn, kn, vn, score_mod=reference_score, mask_mod=reference_mask)
    assert relative_error(out.float().cpu().numpy(), want) <= 4e-3  # bf16 (SEMANTICS.md)


def test_short_table_is_refused_before_launch():
    kern = tessera.compile(tessera.attention(mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
                           head_dim=64, dtype="bfloat16", target="cuda")
    q = torch.zeros(1, 2, 40, 64, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="extent is 32"):
        kern(q, q, q, document_id=torch.zeros(32, device="cuda", dtype=torch.int32))
