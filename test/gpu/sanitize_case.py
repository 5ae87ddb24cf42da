"""One small GPU run of each test variant (softmax and linear), for compute-sanitizer (memcheck, racecheck):

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

for (name, d), kernel in cases.kernels().items():
    q, k, v = (torch.randn(1, 2, 77, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = kernel(q, k, v)
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), name
for (name, d), kernel in cases.linear_kernels().items():
    q, k, v = (torch.randn(1, 2, 77, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
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
