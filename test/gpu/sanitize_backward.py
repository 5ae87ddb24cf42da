"""One small GPU run of each softmax-backward case (issue 24), for compute-sanitizer:

    TESSERA_NO_PARAM_CHECK=1 compute-sanitizer --tool memcheck python3 test/gpu/sanitize_backward.py
    TESSERA_NO_PARAM_CHECK=1 compute-sanitizer --tool racecheck python3 test/gpu/sanitize_backward.py

Ragged sizes (77 queries, 45 keys: no tile multiple), GQA 4 / 2, both head dims; the
forward (for o and lse) and the three gradient kernels (Δ, dK / dV, dQ) each launch."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import grad_cases  # noqa: E402
from test_block_sparse_gpu import random_lists  # noqa: E402

names = sys.argv[1:] or list(grad_cases.SPECS)
for name in names:
    for d in cases.HEAD_DIMS:
        nq, nk, h, hk = (77, 77, 4, 2) if name in ("blocks", "document") else (77, 45, 4, 2)
        q = torch.randn(1, h, nq, d, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(1, hk, nk, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        grad_out = torch.randn_like(q)
        tables = grad_cases.tables_for(name, h, max(nq, nk), "cuda")
        if name == "blocks":
            tables = {"block_indices": random_lists(torch.Generator().manual_seed(d), 1, h, nq,
                                                    nk, grad_cases.BLOCKS, 4, ascending=False)}
        kernel = grad_cases.kernel(name, d)
        o, lse = kernel(q, k, v, return_lse=True, **tables)
        grads = kernel.grad(q, k, v, o, lse, grad_out, **tables)
        torch.cuda.synchronize()
        assert all(torch.isfinite(g.float()).all() for g in grads), (name, d)
        print(f"{name} d={d}: ok", flush=True)
