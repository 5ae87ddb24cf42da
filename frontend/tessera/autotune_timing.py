"""The timing half of tessera.autotune: default inputs for a candidate, its runs on the
CPU (perf_counter) and CUDA (events, L2 flushed before each run), and the comparison of
its outputs with the first timed candidate's."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from .linear import LinearAttentionSpec, alibi_decay
from .trace import SpecError


def _default_inputs(spec, shape, head_dim, value_dim, dtype, target):
    if isinstance(spec, LinearAttentionSpec):
        return _default_linear_inputs(spec, shape, head_dim, value_dim, dtype, target)
    if spec.buffers:
        raise SpecError(f"the spec reads tables {list(spec.buffers)}; pass inputs= returning "
                        f"(q, k, v, {{name: table}})")
    B, H, N = shape
    if target == "cpu":
        rng = np.random.default_rng(0)
        return tuple(rng.standard_normal((B, H, N, d), dtype=np.float32)
                     for d in (head_dim, head_dim, value_dim))
    import torch
    g = torch.Generator(device="cuda").manual_seed(0)
    return tuple(torch.randn(B, H, N, d, device="cuda", dtype=getattr(torch, dtype), generator=g)
                 for d in (head_dim, head_dim, value_dim))


def _default_linear_inputs(spec, shape, head_dim, value_dim, dtype, target):
    """Random q, k, v (rows scaled by D^-1/2) and the spec's call-time inputs: ALiBi
    decays, a zero initial state."""
    B, H, N = shape
    if target == "cpu":
        rng = np.random.default_rng(0)
        q, k, v = (rng.standard_normal((B, H, N, d), dtype=np.float32) for d in
                   (head_dim, head_dim, value_dim))
        q, k = q * head_dim ** -0.5, k * head_dim ** -0.5
        extras = {"decay": alibi_decay(H), "initial_state": np.zeros((B, H, head_dim, value_dim), np.float32)}
    else:
        import torch
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, H, N, d, device="cuda", generator=g) for d in
                   (head_dim, head_dim, value_dim))
        want = getattr(torch, dtype)
        q, k, v = (q * head_dim ** -0.5).to(want), (k * head_dim ** -0.5).to(want), v.to(want)
        extras = {"decay": torch.from_numpy(alibi_decay(H)).cuda(),
                  "initial_state": torch.zeros(B, H, head_dim, value_dim, device="cuda")}
    return q, k, v, {n: extras[n] for n in spec.extra_inputs}


def _outputs(kernel, q, empty, f32):
    """Output buffers of `kernel` for inputs like `q`, as keywords; `empty(shape, dtype)`
    allocates (numpy or torch) and `f32` is that library's float32."""
    B, H, N, D = q.shape
    out = {"out": empty((B, H, N, kernel.value_dim), q.dtype)}
    if isinstance(kernel.spec, LinearAttentionSpec):
        out["state_out"] = empty((B, H, D, kernel.value_dim), f32)
    else:
        out["lse_out"] = empty((B, H, N), f32)
    return out


class _ForwardRun:
    """The forward call timed for a candidate, on fixed inputs and output buffers."""

    def __init__(self, kernel, q, k, v, buffers, target: str) -> None:
        if target == "cpu":
            self.outs = _outputs(kernel, q, np.empty, np.float32)
        else:
            import torch
            self.outs = _outputs(kernel, q, lambda shape, dtype: torch.empty(
                shape, dtype=dtype, device=q.device), torch.float32)
        self.q, self.k, self.v, self.buffers = q, k, v, buffers

    def runner(self, kernel) -> Callable[[], None]:
        return lambda: kernel(self.q, self.k, self.v, **self.outs, **self.buffers)

    def result(self):
        out = self.outs["out"]
        return out.copy() if hasattr(out, "copy") else out.clone()


def _time_cpu(run: Callable[[], None], warmup: int, repeats: int) -> float:
    """Median milliseconds of `run()` on the host."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


_L2_FLUSH = {}


def _time_cuda(run: Callable[[], None], warmup: int, repeats: int) -> float:
    """Median milliseconds of `run()` on the current CUDA device (CUDA events), with L2
    flushed before each run."""
    import torch
    dev = torch.cuda.current_device()
    if dev not in _L2_FLUSH:  # larger than any L2: writing it evicts the kernel's data
        _L2_FLUSH[dev] = torch.empty(256 << 20, dtype=torch.uint8, device=dev)
    flush = _L2_FLUSH[dev]
    for _ in range(warmup):
        run()
    events = []
    for _ in range(repeats):
        flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        events.append((start, end))
    torch.cuda.synchronize(dev)
    return statistics.median(s.elapsed_time(e) for s, e in events)


def _max_diff(a, b) -> float:
    if hasattr(a, "detach"):
        a, b = a.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()
    a, b = np.nan_to_num(np.asarray(a, np.float64)), np.nan_to_num(np.asarray(b, np.float64))
    return float(np.max(np.abs(a - b))) if a.size else 0.0
