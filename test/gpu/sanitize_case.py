"""One small GPU run of each test variant (softmax with masks, block-sparse, linear,
programs), for compute-sanitizer (memcheck, racecheck):

    TESSERA_NO_PARAM_CHECK=1 compute-sanitizer --tool memcheck python3 test/gpu/sanitize_case.py
(the runtime's parameter-count probe is an intended driver API error; the variable skips it)
Also prints how long the driver takes to load (JIT) a kernel's PTX."""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402

from tessera import _runtime  # noqa: E402

def randn(*shape):
    return torch.randn(*shape, device="cuda", dtype=torch.bfloat16)


for (name, d), kernel in cases.kernels().items():
    q, k, v = (randn(1, 2, 77, d) for _ in range(3))
    out = kernel(q, k, v, **cases.buffers_for(name, 77, "cuda"))
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), name
for (name, d), kernel in cases.block_sparse_kernels().items():
    q, k, v = (randn(1, 2, 300, d) for _ in range(3))
    blocks_q = -(-300 // cases.BLOCK_SPARSE[name][0].block_sparse[0])
    lists = torch.tensor([2, -1, 0, 0], device="cuda", dtype=torch.int32).repeat(1, 1, blocks_q, 1)
    out = kernel(q, k, v, block_indices=lists)
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), name
for (name, d), kernel in cases.program_kernels().items():
    n = 1 if name == "nsa-compressed" else 77  # no pooled key at all
    if name == "split-merge":
        out = kernel(randn(1, 2, n, d), *(randn(1, 2, 40, d) for _ in range(4)))
    elif name == "permuted":
        out = kernel(randn(1, 2, n, d), randn(1, 2, 40, d), randn(1, 2, 40, d),
                     torch.randperm(n, device="cuda").int())
    elif name == "pooled":
        out = kernel(randn(1, 2, 130, d))
    elif name in ("gated", "nsa"):
        out = kernel(*(randn(1, 2, n, d) for _ in range(3)),
                     torch.rand(1, 2, n, 3, device="cuda", dtype=torch.float32))
    else:
        out = kernel(*(randn(1, 2, n, d) for _ in range(3)))
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), name
for (name, d), kernel in cases.linear_kernels().items():
    q, k, v = (randn(1, 2, 77, d) for _ in range(3))
    spec = cases.LINEAR_SPECS[name]
    inputs = {}
    if spec.decay:
        inputs["decay"] = torch.full((2,), 0.9, device="cuda")
    if spec.initial_state:
        inputs["initial_state"] = torch.randn(1, 2, d, d, device="cuda")
    out, state = kernel(q, k, v, **inputs)
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all() and torch.isfinite(state).all(), name
start = time.perf_counter()
_runtime.Module(kernel.ptx, 0)
print(f"PTX load (driver JIT) of one kernel: {(time.perf_counter() - start) * 1e3:.1f} ms")
print("sanitize cases done")
