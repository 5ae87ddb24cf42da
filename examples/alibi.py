"""ALiBi: a per-head linear bias on the distance, slope 2^(-8(h+1)/H).

The same Python function is traced into the kernel and run by the numpy reference."""
from _example import random_qkv, run, tessera

H = 8


def alibi(score, b, h, q_idx, kv_idx):
    return score - 2 ** (-8 * (h + 1) / H) * (q_idx - kv_idx)


def main():
    spec = tessera.attention(causal=True, score_mod=alibi)
    kernel = tessera.compile(spec, head_dim=64)

    q, k, v = random_qkv(B=1, H=H, N=512, D=64)
    return run("alibi", kernel, q, k, v, dict(causal=True, score_mod=alibi))


if __name__ == "__main__":
    main()
