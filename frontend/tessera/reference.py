"""Float64 references of SEMANTICS.md, for tests and examples (one (b, h) at a time)."""
from __future__ import annotations

import numpy as np


def attention(q, k, v, *, causal=False, window=None, scale=None, score_mod=None,
              mask_mod=None, tables=None, block_sparse=None, block_indices=None):
    """Exact softmax attention in float64. score_mod / mask_mod are the same Python
    functions given to the spec, here called with numpy index grids. Returns (O, L);
    rows with no visible key give O = 0 and L = -inf."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, H, Nq, D = q.shape
    Hk, Nk = k.shape[1], k.shape[2]
    tau = D ** -0.5 if scale is None else scale
    out = np.zeros((B, H, Nq, v.shape[3]))
    lse = np.full((B, H, Nq), -np.inf)
    i = np.arange(Nq)[:, None]
    j = np.arange(Nk)[None, :]
    for b in range(B):
        for h in range(H):
            hk = h // (H // Hk)
            s = tau * q[b, h] @ k[b, hk].T
            if score_mod is not None:
                s = np.asarray(score_mod(s, b, h, i, j), np.float64) * np.ones_like(s)
            keep = kept_pairs(b, h, Nq, Nk, causal=causal, window=window, mask_mod=mask_mod,
                              block_sparse=block_sparse, block_indices=block_indices)
            s = np.where(keep, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            rows = np.isfinite(m[:, 0])
            p = np.where(keep, np.exp(s - np.where(np.isfinite(m), m, 0)), 0)
            l = p.sum(axis=1, keepdims=True)
            out[b, h, rows] = (p @ v[b, hk])[rows] / l[rows]
            lse[b, h, rows] = m[rows, 0] + np.log(l[rows, 0])
    return out, lse


def kept_pairs(b, h, Nq, Nk, *, causal=False, window=None, mask_mod=None, block_sparse=None,
               block_indices=None):
    """The [Nq, Nk] bool grid of (query, key) pairs the masks keep for batch b, head h."""
    i = np.arange(Nq)[:, None]
    j = np.arange(Nk)[None, :]
    keep = np.ones((Nq, Nk), bool)
    if causal:
        keep &= j <= i + Nk - Nq
    if window is not None:
        keep &= j > i + Nk - Nq - window
        if not causal:  # a window without causality: |j - (i + Nk - Nq)| < window
            keep &= j < i + Nk - Nq + window
    if mask_mod is not None:
        keep &= np.asarray(mask_mod(b, h, i, j), bool)
    if block_sparse is not None:  # key blocks listed for each query block
        bq, bk = block_sparse
        lists = block_indices[b, h if block_indices.shape[1] > 1 else 0]
        listed = np.zeros((lists.shape[0], -(-Nk // bk)), bool)
        for qb, row in enumerate(lists):
            listed[qb, row[row >= 0]] = True
        keep &= listed[i // bq, j // bk]
    return keep


def relative_error(x, ref) -> float:
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    if not np.all(np.isfinite(x)):
        return float("inf")
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(x - ref) / (denom if denom > 0 else 1.0))
