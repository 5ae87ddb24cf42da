"""Grouped-query attention: 8 query heads share 2 key/value heads (groups of 4).

Nothing in the spec: the head counts come from the tensors at call time."""
from _example import random_qkv, run, tessera


def main():
    spec = tessera.attention(causal=True)
    kernel = tessera.compile(spec, head_dim=128)

    q, k, v = random_qkv(B=1, H=8, Hk=2, N=256, D=128)
    return run("gqa", kernel, q, k, v, dict(causal=True))


if __name__ == "__main__":
    main()
