"""FlexAttention-style modifiers on the CPU against float64 (SEMANTICS.md §1): float
tables and tables of any rank indexed by traced indices, casts between float and int,
exp2 / log2, torch-style methods (.abs(), .clamp(), .to()), bit operations and shifts on
indices. Outputs are poisoned with NaN first; lengths are ragged (1, not tile multiples)."""
import math

import numpy as np
import pytest

import tessera
from tessera import reference

TOL = 1e-5
D = 32
H = 4
SLOPES = tessera.Buffer("slopes", "float32")
BIAS = tessera.Buffer("bias", "float32", rank=2)
T5_BIAS = tessera.Buffer("t5_bias", "float32", rank=2)
BUCKETS, MAX_EXACT, MAX_DISTANCE = 16, 4, 64


def t5_bucket(q_idx, kv_idx, to_int, log, where, minimum):
    """T5's bidirectional relative-position bucket, written once for both forms."""
    n = q_idx - kv_idx
    ret = to_int(n < 0) * (BUCKETS // 2)
    n = abs(n)
    half = BUCKETS // 2
    large = MAX_EXACT + to_int(log(where(n > 0, n, 1) * 1.0 / MAX_EXACT)
                               / math.log(MAX_DISTANCE / MAX_EXACT) * (half - MAX_EXACT))
    large = minimum(large, half - 1)
    return ret + where(n < MAX_EXACT, n, large)


def t5_traced(s, b, h, q_idx, kv_idx):
    bucket = t5_bucket(q_idx, kv_idx, lambda x: x.to("int32"), tessera.log, tessera.where,
                       lambda x, m: x.clamp(max=m))
    return s + T5_BIAS[h, bucket]


def t5_numpy(tables):
    def f(s, b, h, i, j):
        bucket = t5_bucket(i, j, lambda x: np.trunc(x).astype(np.int64),
                           lambda x: np.log(np.asarray(x, np.float32)).astype(np.float32),
                           np.where, np.minimum)
        return s + tables["t5_bias"][h, bucket]
    return f


# name -> (spec kwargs, numpy score_mod / mask_mod taking the tables, tables for (H, Nq, Nk))
CASES = {
    # Per-head ALiBi slopes from a float table, the distance cast to float.
    "alibi": (dict(causal=True,
                   score_mod=lambda s, b, h, q_idx, kv_idx:
                   s + SLOPES[h] * (kv_idx - q_idx).float()),
              lambda t: dict(score_mod=lambda s, b, h, i, j: s + t["slopes"][h] * (j - i)),
              lambda nq, nk: {"slopes": -2.0 ** (-8.0 * np.arange(1, H + 1) / H)}),
    # A learned bias over (head, relative position): a 2-D table.
    "bias": (dict(score_mod=lambda s, b, h, q_idx, kv_idx: s + BIAS[h, q_idx - kv_idx + 255]),
             lambda t: dict(score_mod=lambda s, b, h, i, j: s + t["bias"][h, i - j + 255]),
             lambda nq, nk: {"bias": np.random.default_rng(1).standard_normal((H, 511))}),
    "t5": (dict(score_mod=t5_traced), lambda t: dict(score_mod=t5_numpy(t)),
           lambda nq, nk: {"t5_bias": np.random.default_rng(2).standard_normal((H, BUCKETS))}),
    # torch's Tensor.where / maximum / minimum methods.
    "methods": (dict(score_mod=lambda s, b, h, q_idx, kv_idx:
                     s.where(q_idx >= kv_idx, s.maximum(-1.0).minimum(0.5) - 2.0)),
                lambda t: dict(score_mod=lambda s, b, h, i, j:
                               np.where(i >= j, s, np.minimum(np.maximum(s, -1), 0.5) - 2)),
                lambda nq, nk: {}),
    "exp2-log2": (dict(score_mod=lambda s, b, h, q_idx, kv_idx:
                       tessera.log2(tessera.exp2(s.clamp(-3.0, 3.0)) + 1.0) * 1.5),
                  lambda t: dict(score_mod=lambda s, b, h, i, j:
                                 np.log2(np.exp2(np.clip(s, -3, 3)) + 1) * 1.5),
                  lambda nq, nk: {}),
    # Morton-style neighbourhoods: blocks of 4 whose codes agree above bit 1.
    "morton": (dict(mask_mod=lambda b, h, q_idx, kv_idx:
                    (((q_idx >> 2) ^ (kv_idx >> 2)) & ~1) == 0),
               lambda t: dict(mask_mod=lambda b, h, i, j: (((i >> 2) ^ (j >> 2)) & ~1) == 0),
               lambda nq, nk: {}),
    # Block-causal by shifts (decided per tile by interval bounds), with '|' and '<<'.
    "shifts": (dict(mask_mod=lambda b, h, q_idx, kv_idx:
                    ((kv_idx >> 3) <= (q_idx >> 3)) & (((q_idx | 1) << 1) >= kv_idx)),
               lambda t: dict(mask_mod=lambda b, h, i, j:
                              ((j >> 3) <= (i >> 3)) & (((i | 1) << 1) >= j)),
               lambda nq, nk: {}),
    # Casts saturate: 3e9 * s is past i32's range for |s| > 0.72.
    "saturating-cast": (dict(score_mod=lambda s, b, h, q_idx, kv_idx:
                             s + ((s * 3e9).int() // 1_000_000_000).float() * 0.25),
                        lambda t: dict(score_mod=lambda s, b, h, i, j:
                                       s + np.floor(np.clip(np.trunc(s * 3e9), -2**31, 2**31 - 128)
                                                    / 1e9) * 0.25),
                        lambda nq, nk: {}),
}

_KERNELS = {}


def kernel(name):
    if name not in _KERNELS:
        spec = tessera.attention(name=name.replace("-", "_"), **CASES[name][0])
        _KERNELS[name] = tessera.compile(spec, head_dim=D)
    return _KERNELS[name]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("nq,nk", [(1, 1), (67, 67), (50, 130)])
def test_matches_float64(name, nq, nk):
    rng = np.random.default_rng(nq * 31 + nk)
    q = rng.standard_normal((2, H, nq, D)).astype(np.float32)
    k = rng.standard_normal((2, H // 2, nk, D)).astype(np.float32)
    v = rng.standard_normal((2, H // 2, nk, D)).astype(np.float32)
    tables = {n: t.astype(np.float32) for n, t in CASES[name][2](nq, nk).items()}
    out = np.full((2, H, nq, D), np.nan, np.float32)
    lse = np.full((2, H, nq), np.nan, np.float32)
    kernel(name)(q, k, v, out=out, lse_out=lse, **tables)
    ref, ref_lse = reference.attention(q, k, v, causal=CASES[name][0].get("causal", False),
                                       **CASES[name][1](tables))
    assert reference.relative_error(out, ref) <= TOL
    rows = np.isfinite(ref_lse)
    assert np.all(out[~rows] == 0)
    assert reference.relative_error(lse[rows], ref_lse[rows]) <= TOL


def test_shift_counts_out_of_range_are_defined():
    """'<<' by >= 32 gives 0, '>>' by >= 31 the sign, negative counts shift by 0."""
    counts = tessera.Buffer("counts")

    def mod(s, b, h, q_idx, kv_idx):
        n = counts[h]
        return s + ((q_idx + 1) << n).float() / 1099511627776.0 + ((-1 - kv_idx) >> n).float() * 0.125

    def ref_mod(s, b, h, i, j):
        n = int(np.clip(table[h], 0, 31))
        left = ((i + 1) << n) & 0xFFFFFFFF if table[h] < 32 else 0 * i
        left = np.where(left >= 2**31, left - 2**32, left)
        return s + left / 1099511627776.0 + ((-1 - j) >> n) * 0.125

    table = np.array([-3, 5, 31, 40], np.int32)
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, H, 40, D)).astype(np.float32) for _ in range(3))
    kern = tessera.compile(tessera.attention(score_mod=mod), head_dim=D)
    out = kern(q, k, v, counts=table)
    ref, _ = reference.attention(q, k, v, score_mod=ref_mod)
    assert reference.relative_error(out, ref) <= TOL


def test_table_rank_and_dtype_checked_at_call():
    kern = kernel("bias")
    q = np.zeros((1, H, 4, D), np.float32)
    for bad in (np.zeros(8, np.float32), np.zeros((H, 8), np.int32), np.zeros((H, 8)), None):
        with pytest.raises(TypeError, match=r"buffer 'bias' must be a 2-D float32 array"):
            kern(q, q[:, :2], q[:, :2], bias=bad if bad is not None else np.zeros((2, 2, 2), np.float32))


@pytest.mark.parametrize("mod,message", [
    (lambda s, b, h, i, j: s + BIAS[h], r"2-D, it takes 2 indices, got 1"),
    (lambda s, b, h, i, j: s + SLOPES[s], r"buffer 'slopes' takes integer indices, got f32"),
    (lambda s, b, h, i, j: s + (s & 1), r"'&', '\|' and '\^' combine two comparisons"),
    (lambda s, b, h, i, j: s + (s << 1), r"'<<' and '>>' shift integers, got f32"),
    (lambda s, b, h, i, j: s + (i > j) + (i & (j > 0)), r"combine two comparisons \(bools\) or two"),
    (lambda s, b, h, i, j: s.to("complex64"), r"cannot convert a traced value to 'complex64'"),
    (lambda s, b, h, i, j: s.clamp(), r"clamp needs min or max"),
    (lambda s, b, h, i, j: s + tessera.Buffer("slopes", "int32")[h] + SLOPES[h],
     r"two buffers named 'slopes' differ"),
])
def test_bad_modifiers_are_reported(mod, message):
    with pytest.raises(tessera.SpecError, match=message):
        tessera.attention(score_mod=mod)


def test_bad_buffer_declarations():
    with pytest.raises(tessera.SpecError, match=r"tables are int32 or float32, got int64"):
        tessera.Buffer("t", "int64")
    with pytest.raises(tessera.SpecError, match=r"rank must be an int in \[1, 4\], got 0"):
        tessera.Buffer("t", rank=0)
    with pytest.raises(tessera.SpecError, match=r"score_mod and mask_mod read two different"):
        tessera.attention(score_mod=lambda s, b, h, i, j: s + SLOPES[h],
                          mask_mod=lambda b, h, i, j: tessera.Buffer("slopes")[h] > 0)
