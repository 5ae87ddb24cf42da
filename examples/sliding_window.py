"""Sliding-window attention: each query sees itself and the 127 keys before it."""
from _example import random_qkv, run, tessera


def main():
    spec = tessera.attention(causal=True, window=128)
    kernel = tessera.compile(spec, head_dim=64)

    q, k, v = random_qkv(B=1, H=4, N=1024, D=64)
    return run("sliding_window", kernel, q, k, v, dict(causal=True, window=128))


if __name__ == "__main__":
    main()
