"""Float64 references of the block-structure ops and the systems built from them
(SEMANTICS §3-§6): compression, block top-k, LSH sorting, row gathers, merges, gates,
MoBA, NSA and HyperAttention. Written straight from the definitions, loops over (b, h)."""
from __future__ import annotations

import math

import numpy as np

from .reference import attention


def compress(x, block, stride):
    """Mean of rows [i * stride, i * stride + block) for i < (N - block) // stride + 1."""
    x = np.asarray(x, np.float64)
    n = x.shape[2]
    nb = (n - block) // stride + 1 if n >= block else 0
    out = np.zeros(x.shape[:2] + (nb,) + x.shape[3:])
    for i in range(nb):
        out[:, :, i] = x[:, :, i * stride:i * stride + block].mean(axis=2)
    return out


def block_topk(q, kb, *, block_q, block_k, k, causal=False, include_current=False,
               group_heads=False, score="dot", scale=None):
    """attn.block_topk: int32 [B, H, ceil(Nq / block_q), k], increasing, -1 padded."""
    q, kb = np.asarray(q, np.float64), np.asarray(kb, np.float64)
    B, H, nq, D = q.shape
    hk, nb = kb.shape[1], kb.shape[2]
    group = H // hk
    tau = D ** -0.5 if scale is None else scale
    nqb = -(-nq // block_q)
    first = np.arange(nqb) * block_q
    j = np.arange(nb)
    cand = np.ones((nqb, nb), bool)
    if causal:
        cand = (j[None, :] + 1) * block_k - 1 <= first[:, None]
    scores = np.zeros((B, H, nqb, nb))
    for b in range(B):
        for h in range(H):
            s = q[b, h] @ kb[b, h // group].T  # [nq, nb]
            rows_cand = cand[np.arange(nq) // block_q]
            if score == "softmax":
                x = np.where(rows_cand, tau * s, -np.inf)
                m = x.max(axis=1, keepdims=True) if nb else np.zeros((nq, 1))
                e = np.where(rows_cand, np.exp(x - np.where(np.isfinite(m), m, 0)), 0)
                tot = e.sum(axis=1, keepdims=True)
                s = np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)
            for qb in range(nqb):
                scores[b, h, qb] = s[qb * block_q:(qb + 1) * block_q].sum(axis=0)
    if group_heads:
        for g in range(hk):
            scores[:, g * group:(g + 1) * group] = scores[:, g * group:(g + 1) * group].sum(
                axis=1, keepdims=True)
    out = np.full((B, H, nqb, k), -1, np.int32)
    for b, h, qb in np.ndindex(B, H, nqb):
        c = first[qb] // block_k
        pool = [x for x in range(nb) if cand[qb, x] and not (include_current and x == c)]
        pool.sort(key=lambda x: (-scores[b, h, qb, x], x))
        chosen = ([c] if include_current else []) + pool[:k - int(include_current)]
        chosen.sort()
        out[b, h, qb, :len(chosen)] = chosen
    return out


def gray_rank(code):
    """The position of `code` in the reflected Gray sequence g(n) = n ^ (n >> 1)."""
    n = np.asarray(code, np.int64).copy()
    shift = 1
    while shift < 32:
        n ^= n >> shift
        shift <<= 1
    return n


def lsh_hash(x, projection):
    """Gray rank of sum_i 2^i [(x R)_i > 0]; x R in float32, as the compiler does."""
    p = np.asarray(x, np.float32) @ np.asarray(projection, np.float32)
    code = (p > 0).astype(np.int64) @ (1 << np.arange(p.shape[-1]))
    return gray_rank(code)


def lsh_sort(x, projection):
    """perm[b, h, i] = the original row at sorted position i (stable)."""
    return np.argsort(lsh_hash(x, projection), axis=-1, kind="stable").astype(np.int32)


def _index_rows(idx, b, h):
    idx = np.asarray(idx)
    if idx.ndim == 1:
        return idx
    return idx[b if idx.shape[0] > 1 else 0, h if idx.shape[1] > 1 else 0]


def gather_rows(x, idx):
    """out[b, h, i] = x[b, h, idx[(b, h,) i]]; zeros outside [0, N)."""
    x = np.asarray(x)
    B, H, n = x.shape[:3]
    m = np.asarray(idx).shape[-1]
    out = np.zeros((B, H, m) + x.shape[3:], x.dtype)
    for b, h in np.ndindex(B, H):
        rows = _index_rows(idx, b, h)
        ok = (rows >= 0) & (rows < n)
        out[b, h, ok] = x[b, h, rows[ok]]
    return out


def scatter_rows(y, idx, n):
    """out[b, h, idx[(b, h,) i]] = y[b, h, i]; other rows zero, out-of-range dropped."""
    y = np.asarray(y)
    B, H = y.shape[:2]
    out = np.zeros((B, H, n) + y.shape[3:], y.dtype)
    for b, h in np.ndindex(B, H):
        rows = _index_rows(idx, b, h)
        ok = (rows >= 0) & (rows < n)
        out[b, h, rows[ok]] = y[b, h, ok]
    return out


def merge(oa, la, ob, lb):
    """SEMANTICS §6; rows empty on both sides give O = 0, L = -inf."""
    la, lb = np.asarray(la, np.float64), np.asarray(lb, np.float64)
    m = np.maximum(la, lb)
    base = np.where(np.isfinite(m), m, 0)
    ea, eb = np.exp(la - base), np.exp(lb - base)
    tot = ea + eb
    safe = np.where(tot > 0, tot, 1)
    lse = np.where(tot > 0, base + np.log(safe), -np.inf)
    o = (ea / safe)[..., None] * np.asarray(oa, np.float64) + (eb / safe)[..., None] * np.asarray(ob, np.float64)
    return o, lse


def gate(g, *partials):
    g = np.asarray(g, np.float64)
    return sum(g[..., i:i + 1] * np.asarray(p, np.float64) for i, p in enumerate(partials))


def _keyed_attention(q, k, v, keep, tau):
    """Softmax of tau q kᵀ over the kept keys of each row ([Nq, Nk] bool); 0 where none."""
    if k.shape[0] == 0:
        return np.zeros((q.shape[0], v.shape[1]))
    s = np.where(keep, tau * q @ k.T, -np.inf)
    m = s.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    p = np.where(keep, np.exp(s - m), 0)
    tot = p.sum(axis=1, keepdims=True)
    return np.divide(p @ v, tot, out=np.zeros((q.shape[0], v.shape[1])), where=tot > 0)


def moba(q, k, v, *, block, topk, scale=None):
    """SEMANTICS §4: {current block} ∪ top-(topk - 1) fully past blocks by q_t · mean(K)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, H, n, D = q.shape
    group = H // k.shape[1]
    tau = D ** -0.5 if scale is None else scale
    out = np.zeros((B, H, n, v.shape[3]))
    j = np.arange(n)
    for b, h in np.ndindex(B, H):
        kk, vv = k[b, h // group], v[b, h // group]
        keep = np.zeros((n, n), bool)
        for t in range(n):
            c = t // block
            gate_ = [(-(q[b, h, t] @ kk[i * block:(i + 1) * block].mean(0)), i) for i in range(c)]
            chosen = [c] + [i for _, i in sorted(gate_)[:topk - 1]]
            keep[t] = np.isin(j // block, chosen) & (j <= t)
        out[b, h] = _keyed_attention(q[b, h], kk, vv, keep, tau)
    return out


def nsa(q, k, v, g, *, block, topn, window, scale=None):
    """SEMANTICS §5 with mean pooling l = d = block; selection by the compression
    branch's probabilities summed over each GQA group, current block always in."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, H, n, D = q.shape
    hk = k.shape[1]
    group = H // hk
    tau = D ** -0.5 if scale is None else scale
    kc, vc = compress(k, block, block), compress(v, block, block)
    nb = kc.shape[2]
    t = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    visible = (np.arange(nb)[None, :] * block + block - 1) <= t  # [n, nb]
    o_cmp = np.zeros((B, H, n, v.shape[3]))
    probs = np.zeros((B, H, n, nb))
    for b, h in np.ndindex(B, H):
        s = np.where(visible, tau * q[b, h] @ kc[b, h // group].T, -np.inf)
        m = s.max(axis=1, keepdims=True) if nb else np.zeros((n, 1))
        p = np.where(visible, np.exp(s - np.where(np.isfinite(m), m, 0)), 0)
        tot = p.sum(axis=1, keepdims=True)
        probs[b, h] = np.divide(p, tot, out=np.zeros_like(p), where=tot > 0)
        o_cmp[b, h] = _keyed_attention(q[b, h], kc[b, h // group], vc[b, h // group], visible, tau)
    o_slc = np.zeros_like(o_cmp)
    o_win = np.zeros_like(o_cmp)
    for b, hg in np.ndindex(B, hk):
        shared = probs[b, hg * group:(hg + 1) * group].sum(axis=0)  # [n, nb]
        keep = np.zeros((n, n), bool)
        for tt in range(n):
            c = tt // block
            pool = [i for i in range(nb) if visible[tt, i] and i != c]
            pool.sort(key=lambda i: (-shared[tt, i], i))
            chosen = [c] + pool[:topn - 1]
            keep[tt] = np.isin(j[0] // block, chosen) & (j[0] <= tt)
        for h in range(hg * group, (hg + 1) * group):
            o_slc[b, h] = _keyed_attention(q[b, h], k[b, hg], v[b, hg], keep, tau)
            o_win[b, h] = _keyed_attention(q[b, h], k[b, hg], v[b, hg],
                                           (j <= t) & (j > t - window), tau)
    g = np.asarray(g, np.float64)
    return g[..., 0:1] * o_cmp + g[..., 1:2] * o_slc + g[..., 2:3] * o_win


def hyper_attention(q, k, v, projection, samples, *, block, scale=None):
    """Non-causal HyperAttention (SEMANTICS §3). Sorted keys in blocks of `block`, the
    sorted queries in as many blocks (ceil(Nq / blocks) rows each); `samples` are m
    positions in each head's sorted key order, weighted Nk / m, skipped inside the
    query's own block. Returns (O, L)."""
    nq, nk = q.shape[2], k.shape[2]
    q_block = -(-nq // -(-nk // block))
    pq, pk = lsh_sort(q, projection), lsh_sort(k, projection)
    qs, ks, vs = gather_rows(q, pq), gather_rows(k, pk), gather_rows(v, pk)
    samples = np.asarray(samples)
    ob, lb = attention(qs, ks, vs, scale=scale,
                       mask_mod=lambda b, h, i, j: i // q_block == j // block)
    weight = math.log(nk / len(samples))
    os_, ls = attention(qs, gather_rows(ks, samples), gather_rows(vs, samples), scale=scale,
                        score_mod=lambda s, b, h, i, j: s + weight,
                        mask_mod=lambda b, h, i, j: samples[j] // block != i // q_block)
    o, lse = merge(ob, lb, os_, ls)
    return scatter_rows(o, pq, nq), scatter_rows(lse, pq, nq)


def hyper_attention_causal(q, k, v, projection, samples_per_depth, *, block, min_seq_len,
                           scale=None, depth=0):
    """Causal HyperAttention: exact causal below min_seq_len, else the halves recursed
    (depth + 1) and the off-diagonal quadrant (second-half queries, first-half keys)
    computed non-causally with samples_per_depth[depth], merged into the second half."""
    n = q.shape[2]
    if n <= min_seq_len:
        return attention(q, k, v, causal=True, scale=scale)
    h = n // 2
    rec = dict(block=block, min_seq_len=min_seq_len, scale=scale, depth=depth + 1)
    top = hyper_attention_causal(q[:, :, :h], k[:, :, :h], v[:, :, :h], projection,
                                 samples_per_depth, **rec)
    bottom = hyper_attention_causal(q[:, :, h:], k[:, :, h:], v[:, :, h:], projection,
                                    samples_per_depth, **rec)
    cross = hyper_attention(q[:, :, h:], k[:, :, :h], v[:, :, :h], projection,
                            samples_per_depth[depth], block=block, scale=scale)
    o, lse = merge(*bottom, *cross)
    return np.concatenate([top[0], o], axis=2), np.concatenate([top[1], lse], axis=2)
