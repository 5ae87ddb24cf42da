"""One small run of each warp-specialised kernel (cases.warp_specialized_kernels), for
compute-sanitizer's racecheck (shared-memory hazards between the producer's TMA fills and
the consumers' reads) and synccheck (named barriers, setmaxnreg):

    compute-sanitizer --tool racecheck python3 test/gpu/sanitize_warp_specialize.py
    compute-sanitizer --tool synccheck python3 test/gpu/sanitize_warp_specialize.py
Sizes are ragged and long enough for every stage of the ring to turn over more than once."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402


def randn(*shape):
    return torch.randn(*shape, device="cuda", dtype=torch.bfloat16)


for (name, d), kernel in cases.warp_specialized_kernels().items():
    n = 333
    q, k, v = (randn(1, 2, n, d) for _ in range(3))
    if name in cases.BLOCK_SPARSE:
        blocks_q = -(-n // cases.BLOCK_SPARSE[name][0].block_sparse[0])
        lists = torch.tensor([2, -1, 0, 1], device="cuda", dtype=torch.int32).repeat(1, 1, blocks_q, 1)
        out = kernel(q, k, v, block_indices=lists)
    else:
        out = kernel(q, k, v, **cases.buffers_for(name, n, "cuda"))
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), name
print("sanitize warp_specialize cases done")
