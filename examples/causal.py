"""Causal softmax attention."""
from _example import random_qkv, run, tessera


def main():
    spec = tessera.attention(causal=True)
    kernel = tessera.compile(spec, head_dim=64)

    q, k, v = random_qkv(B=1, H=4, N=512, D=64)
    return run("causal", kernel, q, k, v, dict(causal=True))


if __name__ == "__main__":
    main()
