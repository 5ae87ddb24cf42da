"""GPU cases of issue 31's Flex parity list, shared by test_flex_parity_gpu.py and
scripts/gpu_precompile.py: float and 2-D tables, casts, bit operations, exp2, a window
without causality, and head dims that are no multiple of 64 (and MLA's 192 / 128)."""
import functools
import math

import numpy as np

import tessera

H = 4
SLOPES = tessera.Buffer("slopes", "float32")
BIAS = tessera.Buffer("bias", "float32", rank=2)
REL = 1023  # bias[h, i - j + REL] covers |i - j| <= REL


def t5_bucket(n, to_int, log, where, minimum, buckets=32, exact=8, distance=128):
    """T5's relative-position bucket of n = i - j (bidirectional), for both forms."""
    half = buckets // 2
    ret = to_int(n < 0) * half
    n = abs(n)
    large = exact + to_int(log(where(n > 0, n, 1) * 1.0 / exact)
                           / math.log(distance / exact) * (half - exact))
    return ret + where(n < exact, n, minimum(large, half - 1))


def t5_traced(s, b, h, i, j):
    return s + BIAS[h, t5_bucket(i - j, lambda x: x.int(), tessera.log, tessera.where,
                                 lambda x, m: x.clamp(max=m))]


# name -> (spec, numpy modifiers given the tables, tables for (heads, device))
SPECS = {
    "alibi": (tessera.attention(causal=True, score_mod=lambda s, b, h, i, j:
                                s + SLOPES[h] * (j - i).float()),
              lambda t: {"causal": True,
                         "score_mod": lambda s, b, h, i, j: s + t["slopes"][h] * (j - i)},
              lambda: {"slopes": -2.0 ** (-8.0 * np.arange(1, H + 1) / H)}),
    "bias": (tessera.attention(score_mod=lambda s, b, h, i, j: s + BIAS[h, i - j + REL]),
             lambda t: {"score_mod": lambda s, b, h, i, j: s + t["bias"][h, i - j + REL]},
             lambda: {"bias": np.random.default_rng(1).standard_normal((H, 2 * REL + 1))}),
    "t5": (tessera.attention(score_mod=t5_traced),
           lambda t: {"score_mod": lambda s, b, h, i, j: s + t["bias"][h, t5_bucket(
               i - j, lambda x: np.trunc(x).astype(np.int64),
               lambda x: np.log(np.asarray(x, np.float32)), np.where, np.minimum)]},
           lambda: {"bias": np.random.default_rng(2).standard_normal((H, 32))}),
    "morton": (tessera.attention(mask_mod=lambda b, h, i, j: (((i >> 5) ^ (j >> 5)) & ~3) == 0),
               lambda t: {"mask_mod": lambda b, h, i, j: (((i >> 5) ^ (j >> 5)) & ~3) == 0},
               lambda: {}),
    "exp2": (tessera.attention(score_mod=lambda s, b, h, i, j:
                               tessera.log2(tessera.exp2(s.clamp(-4.0, 4.0)) + 1.0) * 2.0),
             lambda t: {"score_mod": lambda s, b, h, i, j:
                        np.log2(np.exp2(np.clip(s, -4, 4)) + 1) * 2},
             lambda: {}),
    "bidirectional": (tessera.attention(window=100), lambda t: {"window": 100}, lambda: {}),
    # A mask that reads the head: classified per head (a grid of heads x key-tile chunks).
    "per-head": (tessera.attention(mask_mod=lambda b, h, i, j: (j >> (h & 1)) <= i + 3 * h),
                 lambda t: {"mask_mod": lambda b, h, i, j: (j >> (h & 1)) <= i + 3 * h},
                 lambda: {}),
}

# Head dims (D, Dv) past the 64 / 128 of cases.py, at the default config.
HEAD_DIMS = [(80, 80), (96, 96), (144, 144), (160, 160), (192, 128), (256, 256)]
LINEAR_HEAD_DIMS = [(80, 80), (96, 96)]


@functools.lru_cache(maxsize=None)
def kernels():
    out = {}
    for name, (spec, _, _) in SPECS.items():
        out[name] = tessera.compile(spec, head_dim=64, dtype="bfloat16", target="cuda")
    for d, dv in HEAD_DIMS:
        out["causal", d, dv] = tessera.compile(tessera.attention(causal=True), head_dim=d,
                                               value_dim=dv, dtype="bfloat16", target="cuda")
    from tessera.linear import default_gpu_config
    for d, dv in LINEAR_HEAD_DIMS:  # the default config, fixed (no per-shape split to miss)
        out["linear", d, dv] = tessera.compile(tessera.linear_attention(decay=True),
                                               head_dim=d, value_dim=dv, dtype="bfloat16",
                                               target="cuda",
                                               config=default_gpu_config(dv, head_dim=d))
    return out
