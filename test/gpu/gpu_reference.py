"""float64 references for the GPU tests, computed on the GPU."""
import torch


def reference(q, k, v, causal=False, window=None, score_mod=None, keep=None, mask_mod=None):
    """float64 attention on the GPU (same math as tessera.reference); `keep`, a bool
    [B, H or 1, Nq, Nk], and `mask_mod(i, j)` on index tensors mask further."""
    q, k, v = (x.double() for x in (q, k, v))
    B, H, Nq, D = q.shape
    Hk, Nk = k.shape[1], k.shape[2]
    k = k.repeat_interleave(H // Hk, dim=1)
    v = v.repeat_interleave(H // Hk, dim=1)
    s = (q @ k.transpose(-1, -2)) * D ** -0.5
    if score_mod is not None:
        import numpy as np
        s = torch.from_numpy(np.asarray(score_mod(s.cpu().numpy(), 0, 0, 0, 0))).to(s.device)
    i = torch.arange(Nq, device=q.device)[:, None]
    j = torch.arange(Nk, device=q.device)[None, :]
    keep = torch.ones(Nq, Nk, dtype=torch.bool, device=q.device) if keep is None else keep
    if causal:
        keep = keep & (j <= i + Nk - Nq)
    if window is not None:
        keep = keep & (j > i + Nk - Nq - window)
    if mask_mod is not None:
        keep = keep & mask_mod(i, j)
    s = s.masked_fill(~keep, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return p @ v


def rel(x, ref):
    x = x.double()
    if not torch.isfinite(x).all():
        return float("inf")
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def case_reference(name, q, k, v, buffers):
    """float64 reference of softmax case `name` (cases.SPECS), its mask_mod reading the
    tables in `buffers`."""
    import cases
    expected = dict(cases.SPECS[name][1])
    if "mask_mod" in expected:
        mask_mod = expected.pop("mask_mod")
        expected["mask_mod"] = lambda i, j: mask_mod(i, j, **buffers)
    return reference(q, k, v, **expected)


def run_case(kernel, name, q, k, v):
    """`kernel` (softmax case `name`) on q, k, v with the case's tables, its output
    poisoned first: (output, float64 reference)."""
    import cases
    out = torch.full(q.shape, float("nan"), device="cuda", dtype=torch.bfloat16)
    buffers = cases.buffers_for(name, max(q.shape[2], k.shape[2]), "cuda")
    kernel(q, k, v, out=out, **buffers)
    torch.cuda.synchronize()
    return out, case_reference(name, q, k, v, buffers)
