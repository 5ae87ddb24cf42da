"""Config.grad_query_tile on the device (issue 24): the softmax backward's dK / dV grid
with 16-, 32- and 64-query tiles, the sm_90a (wgmma) and sm_80 (mma.sync: [key, query]
tiles with K / V read per product under 64 queries, 32-key dQ tiles past D = 64) PTX,
each against float64 on ragged sizes, poisoned outputs first. sm_80 PTX runs on any
later GPU. Skipped where there is no GPU."""
import dataclasses
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import grad_cases  # noqa: E402
import tessera  # noqa: E402
from tessera.gpu import default_grad_config  # noqa: E402
from test_softmax_grad_gpu import FIXED, error, keep_mask, reference  # noqa: E402


@pytest.mark.parametrize("name", ["causal", "alibi", "document", "full"])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
@pytest.mark.parametrize("tile", [16, 32, 64])
def test_grad_query_tile_matches_float64(name, d, chip, tile):
    if chip == "sm_90a" and torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("sm_90a PTX needs a Hopper GPU")
    torch.manual_seed(d + tile)
    h, hk, nq, nk = 4, 2, 301, 333  # GQA; neither a tile multiple, Nq != Nk
    q = torch.randn(1, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, hk, nk, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    grad_out = torch.randn(1, h, nq, d, device="cuda", dtype=torch.bfloat16)
    tables = grad_cases.tables_for(name, h, max(nq, nk), "cuda")
    kernel = tessera.compile(grad_cases.SPECS[name][0], head_dim=d, dtype=cases.DTYPE,
                             target="cuda", chip=chip)
    kernel.grad_config = dataclasses.replace(default_grad_config(d, d, chip),
                                             grad_query_tile=tile)
    o, lse = kernel(q, k, v, return_lse=True, **tables)
    out = tuple(torch.full_like(x, float("nan")) for x in (q, k, v))
    got = kernel.grad(q, k, v, o, lse, grad_out, out=out, **tables)
    torch.cuda.synchronize()
    _, _, *refs = reference(name, q, k, v, grad_out, keep_mask(name, nq, nk, tables, None),
                            tables)
    errs = [error(x, r) for x, r in zip(got, refs)]
    print(f"{name} d={d} {chip} grad_query_tile={tile}: dq dk dv "
          f"{' '.join(f'{e:.2e}' for e in errs)}")
    for what, e in zip(("dq", "dk", "dv"), errs):
        assert e <= FIXED, f"{what}: error {e:.3e}"
