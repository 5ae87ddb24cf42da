"""Float64 backward of softmax attention (SEMANTICS.md §1, backward), from the math, for
tests and examples. Checked against finite differences of reference.attention in
test/python/test_softmax_grad_cpu.py."""
from __future__ import annotations

import numpy as np

from .reference import kept_pairs


def attention_grad(q, k, v, grad_out, *, causal=False, window=None, scale=None,
                   score_mod=None, score_mod_grad=None, mask_mod=None, block_sparse=None,
                   block_indices=None, on_score_grad=None, o=None):
    """(dq, dk, dv) of O = attention(q, k, v) for the upstream gradient grad_out, in
    float64. `score_mod_grad(score, b, h, i, j)` is ∂score_mod/∂score written by hand
    (numpy), required with a score_mod. Rows with no kept key contribute nothing.
    `on_score_grad(b, h, ds_modified)` receives dS' (the gradient of the modified scores,
    0 where masked) of each (b, h), from which a test sums a table's gradient. `o`: the
    output Δ = rowsum(dO ∘ O) is taken from (a kernel's, rounded to its dtype, as a
    FlashAttention-style backward takes it) instead of the exact one; a table gradient
    summed over many pairs cancels enough to show that rounding (ALiBi slopes with bf16 O:
    5-19 % at N = 100-1000)."""
    if (score_mod is None) != (score_mod_grad is None):
        raise ValueError("score_mod and score_mod_grad come together")
    q, k, v, g = (np.asarray(x, np.float64) for x in (q, k, v, grad_out))
    B, H, Nq, D = q.shape
    Hk, Nk = k.shape[1], k.shape[2]
    group = H // Hk
    tau = D ** -0.5 if scale is None else scale
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    i = np.arange(Nq)[:, None]
    j = np.arange(Nk)[None, :]
    for b in range(B):
        for h in range(H):
            hk = h // group
            s = tau * q[b, h] @ k[b, hk].T
            slope = np.ones_like(s)
            if score_mod is not None:
                slope = np.asarray(score_mod_grad(s, b, h, i, j), np.float64) * np.ones_like(s)
                s = np.asarray(score_mod(s, b, h, i, j), np.float64) * np.ones_like(s)
            keep = kept_pairs(b, h, Nq, Nk, causal=causal, window=window, mask_mod=mask_mod,
                              block_sparse=block_sparse, block_indices=block_indices)
            s = np.where(keep, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            e = np.where(keep, np.exp(s - m), 0.0)
            l = e.sum(axis=1, keepdims=True)
            p = e / np.where(l > 0, l, 1.0)           # softmax, 0 on empty rows
            out = p @ v[b, hk]
            dv[b, hk] += p.T @ g[b, h]
            dp = g[b, h] @ v[b, hk].T
            o_bh = out if o is None else np.asarray(o[b, h], np.float64)
            delta = (g[b, h] * o_bh).sum(axis=1, keepdims=True)
            ds_modified = np.where(keep, p * (dp - delta), 0.0)
            if on_score_grad is not None:
                on_score_grad(b, h, ds_modified)
            ds = np.where(keep, ds_modified * slope, 0.0)
            dq[b, h] = tau * ds @ k[b, hk]
            dk[b, hk] += tau * ds.T @ q[b, h]
    return dq, dk, dv
