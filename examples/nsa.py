"""NSA (SEMANTICS §5) in fla's configuration: mean-pooled compression (l = d = block),
top-n selection shared by each GQA group with the current block in, a sliding window,
and per-token gates; three attention branches from the same ops."""
import time

import numpy as np

from _example import random_qkv, tessera
from tessera import reference, reference_sparse


def nsa_spec(block=64, topn=4, window=128):
    # A compressed block is visible once all its keys are: block * j + block - 1 <= i.
    compressed = tessera.attention(mask_mod=lambda b, h, i, j: j * block + block - 1 <= i)
    selected = tessera.attention(causal=True, block_sparse=(1, block))
    windowed = tessera.attention(causal=True, window=window)

    def nsa(q, k, v, gates):
        k_cmp, v_cmp = tessera.compress(k, block=block), tessera.compress(v, block=block)
        o_cmp, _ = compressed(q, k_cmp, v_cmp)
        chosen = tessera.block_topk(q, k_cmp, block_q=1, block_k=block, k=topn, causal=True,
                                    include_current=True, group_heads=True, score="softmax")
        o_slc, _ = selected(q, k, v, block_indices=chosen)
        o_win, _ = windowed(q, k, v)
        return tessera.gate(gates, o_cmp, o_slc, o_win)

    return tessera.program(nsa, q="B H N D", k="B G N D", v="B G N Dv",
                           gates=("B H N 3", "float32"))


def main():
    kernel = tessera.compile(nsa_spec(block=64, topn=4, window=128), head_dim=64)
    q, k, v = random_qkv(B=1, H=4, Hk=1, N=1000, D=64)
    gates = np.random.default_rng(1).random((1, 4, 1000, 3), dtype=np.float32)
    start = time.perf_counter()
    out = kernel(q, k, v, gates)
    ms = (time.perf_counter() - start) * 1e3
    ref = reference_sparse.nsa(q, k, v, gates, block=64, topn=4, window=128)
    err = reference.relative_error(out, ref)
    print(f"{'nsa':<15} B=1 H=4  Hk=1  N=1000  D=64   relative error {err:.2e}  {ms:7.1f} ms")
    return err


if __name__ == "__main__":
    main()
