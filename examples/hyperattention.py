"""HyperAttention (SEMANTICS §3): rows sorted by a Gray-ordered angular LSH, exact
attention inside diagonal blocks of the sorted order, m sampled key columns weighted
N / m (samples in the query's own block skipped), merged by log-sum-exp, un-sorted.
R and the samples are inputs, so runs are deterministic. The samples index each head's
sorted keys (uniform either way). The causal form recurses on halves on the host:
each off-diagonal quadrant is one non-causal program, merged into its rows."""
import math
import time
from functools import lru_cache

import numpy as np

from _example import random_qkv, tessera
from tessera import reference, reference_sparse


def hyper_spec(n_q, n_k, *, block, samples, bits, head_dim=64):
    """The non-causal routine for n_q queries against n_k keys (sizes fix the block
    geometry and the sample weight)."""
    key_blocks = -(-n_k // block)
    q_block = -(-n_q // key_blocks)  # as many query blocks as key blocks
    log_w = math.log(n_k / samples)
    at = tessera.Buffer("samples")
    diagonal = tessera.attention(mask_mod=lambda b, h, i, j: i // q_block == j // block)
    sampled = tessera.attention(score_mod=lambda s, b, h, i, j: s + log_w,
                                mask_mod=lambda b, h, i, j: at[j] // block != i // q_block)

    def hyper(q, k, v, projection, samples):
        pq, pk = tessera.lsh_sort(q, projection), tessera.lsh_sort(k, projection)
        qs = tessera.gather_rows(q, pq)
        ks, vs = tessera.gather_rows(k, pk), tessera.gather_rows(v, pk)
        o_blk, l_blk = diagonal(qs, ks, vs)
        o_smp, l_smp = sampled(qs, tessera.gather_rows(ks, samples),
                               tessera.gather_rows(vs, samples))
        o, lse = tessera.merge(o_blk, l_blk, o_smp, l_smp)
        return tessera.scatter_rows(o, pq), tessera.scatter_rows(lse, pq)

    return tessera.program(hyper, q="B H N D", k="B H M D", v="B H M Dv",
                           projection=(f"D {bits}", "float32"), samples=("S", "int32"))


@lru_cache(maxsize=None)
def _kernel(n_q, n_k, block, samples, bits, head_dim):
    spec = hyper_spec(n_q, n_k, block=block, samples=samples, bits=bits)
    return tessera.compile(spec, head_dim=head_dim)


@lru_cache(maxsize=None)
def _exact_causal(head_dim):
    return tessera.compile(tessera.attention(causal=True), head_dim=head_dim)


def merge_spec():
    """Two (O, L) pairs merged by log-sum-exp: the causal form's combiner."""
    def merged(oa, la, ob, lb):
        return tessera.merge(oa, la, ob, lb)
    return tessera.program(merged, oa="B H N Dv", la=("B H N", "float32"),
                           ob="B H N Dv", lb=("B H N", "float32"))


@lru_cache(maxsize=None)
def _merge(head_dim):
    return tessera.compile(merge_spec(), head_dim=head_dim)


def hyper_attention(q, k, v, projection, samples, *, block):
    """Non-causal HyperAttention: (O, L)."""
    return _kernel(q.shape[2], k.shape[2], block, len(samples), projection.shape[1],
                   q.shape[3])(q, k, v, projection, samples)


def causal_recursion(q, k, v, samples_per_depth, *, min_seq_len, exact, cross, merge,
                     concat, depth=0):
    """(O, L) of causal HyperAttention for any kernels: `exact(q, k, v)` below
    min_seq_len, else the halves recursed and the off-diagonal quadrant, `cross(q2, k1,
    v1, samples)`, merged into the second half; (O, L) are joined along N by `concat`.
    When every halving is even the quadrants of one depth are equal in size and run as
    one batch (_causal_by_depth); otherwise the halves recurse one by one."""
    n = q.shape[2]
    depths = _halvings(n, min_seq_len) if depth == 0 else 0
    if depths:
        return _causal_by_depth(q, k, v, samples_per_depth, depths, exact=exact, cross=cross,
                                merge=merge)
    if n <= min_seq_len:
        return exact(q, k, v)
    h = n // 2
    kernels = dict(min_seq_len=min_seq_len, exact=exact, cross=cross, merge=merge,
                   concat=concat, depth=depth + 1)
    top = causal_recursion(q[:, :, :h], k[:, :, :h], v[:, :, :h], samples_per_depth, **kernels)
    bottom = causal_recursion(q[:, :, h:], k[:, :, h:], v[:, :, h:], samples_per_depth,
                              **kernels)
    o, lse = merge(*bottom, *cross(q[:, :, h:], k[:, :, :h], v[:, :, :h],
                                   samples_per_depth[depth]))
    return concat(top[0], o), concat(top[1], lse)


def _halvings(n, min_seq_len):
    """How many times the recursion halves n, when every halving is even (else 0)."""
    depth = 0
    while n > min_seq_len:
        if n % 2:
            return 0
        n, depth = n // 2, depth + 1
    return depth


def _causal_by_depth(q, k, v, samples_per_depth, depths, *, exact, cross, merge):
    """The recursion with N = leaf * 2^depths, a few launches per depth: segments of one
    size are extra heads of a view ([B, H, N, D] read as [B, H * N / s, s, D], no copy),
    so the leaves are one exact call and each depth's quadrants (odd segments' queries
    against the even segments before them) one cross call, merged into the odd rows.
    Every row gets the same terms in the same order as in the recursion."""
    b, h, n, _ = q.shape
    dv = v.shape[3]

    def segments(x, size, pick=None):  # [B, H * N / size, size, ...] (every or odd/even)
        tail = x.shape[3:]
        if pick is None:
            return x.reshape(b, h * (n // size), size, *tail)
        pairs = x.reshape(b, h, n // (2 * size), 2, size, *tail)[:, :, :, pick]
        return pairs.reshape(b, h * (n // (2 * size)), size, *tail)

    leaf = n >> depths
    o, lse = exact(segments(q, leaf), segments(k, leaf), segments(v, leaf))
    o, lse = o.reshape(b, h, n, dv), lse.reshape(b, h, n)
    for depth in reversed(range(depths)):
        size = n >> (depth + 1)
        cross_o, cross_l = cross(segments(q, size, 1), segments(k, size, 0),
                                 segments(v, size, 0), samples_per_depth[depth])
        merged_o, merged_l = merge(segments(o, size, 1), segments(lse, size, 1),
                                   cross_o, cross_l)
        o.reshape(b, h, n // (2 * size), 2, size, dv)[:, :, :, 1] = \
            merged_o.reshape(b, h, n // (2 * size), size, dv)
        lse.reshape(b, h, n // (2 * size), 2, size)[:, :, :, 1] = \
            merged_l.reshape(b, h, n // (2 * size), size)
    return o, lse


def hyper_attention_causal(q, k, v, projection, samples_per_depth, *, block, min_seq_len):
    """Causal HyperAttention on the CPU: exact below min_seq_len, else halves recursed and
    the off-diagonal quadrant (second-half queries, first-half keys) merged in."""
    d = q.shape[3]
    return causal_recursion(
        q, k, v, samples_per_depth, min_seq_len=min_seq_len,
        exact=lambda q, k, v: _exact_causal(d)(q, k, v, return_lse=True),
        cross=lambda q, k, v, samples: hyper_attention(q, k, v, projection, samples,
                                                       block=block),
        merge=_merge(d), concat=lambda a, b: np.concatenate([a, b], axis=2))


def main():
    rng = np.random.default_rng(3)
    q, k, v = random_qkv(B=1, H=2, N=1000, D=64)
    projection = rng.standard_normal((64, 7), dtype=np.float32)
    samples = rng.integers(0, 1000, 64).astype(np.int32)
    start = time.perf_counter()
    out, _ = hyper_attention(q, k, v, projection, samples, block=128)
    ms = (time.perf_counter() - start) * 1e3
    ref, _ = reference_sparse.hyper_attention(q, k, v, projection, samples, block=128)
    err = reference.relative_error(out, ref)
    print(f"{'hyperattention':<15} B=1 H=2  Hk=2  N=1000  D=64   relative error {err:.2e}  {ms:7.1f} ms")
    return err


if __name__ == "__main__":
    main()
