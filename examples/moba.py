"""MoBA (SEMANTICS §4): per token, the current block plus the top-(k-1) past blocks by
q · mean(K[block]), attended with the causal mask. Three attn ops, no MoBA op."""
import time

from _example import random_qkv, tessera
from tessera import reference, reference_sparse


def moba_spec(block=64, topk=3):
    attend = tessera.attention(causal=True, block_sparse=(1, block))

    def moba(q, k, v):
        block_keys = tessera.compress(k, block=block)
        chosen = tessera.block_topk(q, block_keys, block_q=1, block_k=block, k=topk,
                                    causal=True, include_current=True)
        o, _ = attend(q, k, v, block_indices=chosen)
        return o

    return tessera.program(moba, q="B H N D", k="B G N D", v="B G N Dv")


def main():
    kernel = tessera.compile(moba_spec(block=64, topk=3), head_dim=64)
    q, k, v = random_qkv(B=1, H=4, Hk=2, N=1000, D=64)
    start = time.perf_counter()
    out = kernel(q, k, v)
    ms = (time.perf_counter() - start) * 1e3
    err = reference.relative_error(out, reference_sparse.moba(q, k, v, block=64, topk=3))
    print(f"{'moba':<15} B=1 H=4  Hk=2  N=1000  D=64   relative error {err:.2e}  {ms:7.1f} ms")
    return err


if __name__ == "__main__":
    main()
