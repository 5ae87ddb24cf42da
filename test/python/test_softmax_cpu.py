"""Softmax attention on the CPU against the float64 reference (SEMANTICS.md §1).

fp32 tolerance: relative error <= 1e-5 for O, and for L on rows whose reference L is
finite. Outputs are poisoned with NaN before every run; rows with no visible key must
come back exactly 0.

Kernels are compiled once per (variant, head dims, config) and reused for every length:
B, H and N are run-time values of a compiled kernel.
"""
import functools
import math

import numpy as np
import pytest

import tessera
from tessera import reference

TOL = 1e-5
H_ALIBI = 4                      # ALiBi slopes 2^(-8(h+1)/H) for H = 4 query heads
C_ALIBI = -8.0 * math.log(2.0) / H_ALIBI
CAP = 4.0                        # soft-capping bound
SOFTCAP_SCALE = 0.5              # larger scores, so the cap matters
PREFIX = 11                      # prefix-LM: keys < PREFIX are visible to every query
WINDOW = 37
DOC = tessera.Buffer("document_id")


# Modifiers: the traced form (tessera.* helpers) and the numpy form for the reference.
def alibi(score, b, h, q_idx, kv_idx):
    return score - tessera.exp((h + 1) * C_ALIBI) * (q_idx - kv_idx)


def alibi_np(score, b, h, i, j):
    return score - np.exp((h + 1) * C_ALIBI) * (i - j)


def alibi_pow(score, b, h, q_idx, kv_idx):    # '**' and numpy scalars: one function for both
    return score - 2 ** (-8 * (h + 1) / H_ALIBI) * (q_idx - kv_idx) * np.float32(1.0)


def softcap(score, b, h, q_idx, kv_idx):
    return CAP * tessera.tanh(score / CAP)


def softcap_np(score, b, h, i, j):
    return CAP * np.tanh(score / CAP)


def future_to_minus_inf(score, b, h, q_idx, kv_idx):  # masking in score_mod, flex style
    return tessera.where(kv_idx > q_idx, float("-inf"), score)


def future_to_minus_inf_np(score, b, h, i, j):
    return np.where(j > i, -np.inf, score)


def python_div_mod(score, b, h, q_idx, kv_idx):
    """'//' and '%' with negative operands, ints and floats: Python's floored semantics.
    The same function serves the reference (numpy follows Python here). The float
    operands are exact in f32, so rounding cannot move a floor across an integer."""
    d = kv_idx - q_idx
    x = d * 0.25
    return (score + (d % 7) * 0.25 - (d // 5) * 0.125 + (d % -3) * 0.5
            + (x % 0.75) * 0.5 - (x // -0.5) * 0.0625 + (x % -1.5) * 0.25)


def prefix_lm(b, h, q_idx, kv_idx):          # only comparisons and '|': works on both sides
    return (kv_idx < PREFIX) | (q_idx >= kv_idx)


def same_document(b, h, q_idx, kv_idx):
    return DOC[q_idx] == DOC[kv_idx]


def per_head_band(b, h, q_idx, kv_idx):      # uses b and h: band width 8(h+1) + b
    return (kv_idx <= q_idx) & (q_idx - kv_idx < (h + 1) * 8 + b)


def block_diagonal(b, h, q_idx, kv_idx):     # HyperAttention's: query and key blocks differ
    return q_idx // 48 == kv_idx // 80


def bounded_mix(b, h, q_idx, kv_idx):        # every op tile classification bounds, per head
    return ((q_idx - kv_idx) // -7 <= -2) ^ (kv_idx * 3 < 90 + 20 * h)


def selected_band(b, h, q_idx, kv_idx):      # a select between masks, a minimum: bounded
    return tessera.where(q_idx < 100, kv_idx <= q_idx,
                         (q_idx - kv_idx) < tessera.minimum(q_idx // 4, 64))


def selected_band_np(b, h, q_idx, kv_idx):
    return np.where(q_idx < 100, kv_idx <= q_idx, (q_idx - kv_idx) < np.minimum(q_idx // 4, 64))


def rows_20_to_39_masked(b, h, q_idx, kv_idx):
    return (q_idx < 20) | (q_idx >= 40)


def rows_60_to_70_masked(b, h, q_idx, kv_idx):  # crosses the block_m = 64 boundary
    return (q_idx < 60) | (q_idx > 70)


def document_ids(n, seed=7):
    """Sorted document ids: a few documents of random lengths."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(0, max(1, n // 20) + 1, n)).astype(np.int32)


# name -> (tessera.attention kwargs, reference kwargs; table-dependent ones built later)
VARIANTS = {
    "full": (dict(), dict()),
    "causal": (dict(causal=True), dict(causal=True)),
    "window": (dict(causal=True, window=WINDOW), dict(causal=True, window=WINDOW)),
    "window1": (dict(causal=True, window=1), dict(causal=True, window=1)),
    "alibi": (dict(causal=True, score_mod=alibi), dict(causal=True, score_mod=alibi_np)),
    "alibi_pow": (dict(causal=True, score_mod=alibi_pow), dict(causal=True, score_mod=alibi_pow)),
    "softcap": (dict(scale=SOFTCAP_SCALE, score_mod=softcap),
                dict(scale=SOFTCAP_SCALE, score_mod=softcap_np)),
    "document": (dict(causal=True, mask_mod=same_document), dict(causal=True)),
    "document_full": (dict(mask_mod=same_document), dict()),
    "prefix_lm": (dict(mask_mod=prefix_lm), dict(mask_mod=prefix_lm)),
    "score_minus_inf": (dict(score_mod=future_to_minus_inf),
                        dict(score_mod=future_to_minus_inf_np)),
    "python_div_mod": (dict(score_mod=python_div_mod), dict(score_mod=python_div_mod)),
    "per_head_band": (dict(mask_mod=per_head_band), dict(mask_mod=per_head_band)),
    "softcap_document": (dict(causal=True, scale=SOFTCAP_SCALE, score_mod=softcap,
                              mask_mod=same_document),
                         dict(causal=True, scale=SOFTCAP_SCALE, score_mod=softcap_np)),
    "block_diagonal": (dict(mask_mod=block_diagonal), dict(mask_mod=block_diagonal)),
    "bounded_mix": (dict(mask_mod=bounded_mix), dict(mask_mod=bounded_mix)),
    "selected_band": (dict(mask_mod=selected_band), dict(mask_mod=selected_band_np)),
    "rows_20_39": (dict(mask_mod=rows_20_to_39_masked), dict(mask_mod=rows_20_to_39_masked)),
    "rows_60_70": (dict(causal=True, mask_mod=rows_60_to_70_masked),
                   dict(causal=True, mask_mod=rows_60_to_70_masked)),
}


@functools.lru_cache(maxsize=None)
def spec(name):
    return tessera.attention(name=name, **VARIANTS[name][0])


_compiles = []


def kernel(name, d=64, dv=None, config=None):
    """The compiled kernel of a variant; compiled on first use only."""
    return _kernel(name, d, d if dv is None else dv, config or tessera.Config())


@functools.lru_cache(maxsize=None)
def _kernel(name, d, dv, config):
    _compiles.append((name, d, dv, config))
    return tessera.compile(spec(name), head_dim=d, value_dim=dv, config=config)


def inputs(B, H, Hk, Nq, Nk, D, Dv=None, seed=0):
    rng = np.random.default_rng(seed)
    Dv = D if Dv is None else Dv
    q = rng.standard_normal((B, H, Nq, D), dtype=np.float32)
    k = rng.standard_normal((B, Hk, Nk, D), dtype=np.float32)
    v = rng.standard_normal((B, Hk, Nk, Dv), dtype=np.float32)
    return q, k, v


def run_and_check(name, q, k, v, *, config=None, out=None, tol=TOL):
    """Runs variant `name` with poisoned outputs and compares with the reference.
    Returns (O, L, reference L)."""
    B, H, Nq, D = q.shape
    Nk, Dv = k.shape[2], v.shape[3]
    kern = kernel(name, D, Dv, config)
    ref_kwargs = dict(VARIANTS[name][1])
    tables = {}
    if "document" in name:
        assert Nq == Nk
        doc = document_ids(Nq)
        tables["document_id"] = doc
        ref_kwargs["mask_mod"] = lambda b, h, i, j: doc[i] == doc[j]

    if out is None:
        out = np.full((B, H, Nq, Dv), np.nan, np.float32)
    else:
        out[...] = np.nan
    lse = np.full((B, H, Nq), np.nan, np.float32)
    o, l = kern(q, k, v, out=out, lse_out=lse, return_lse=True, **tables)
    assert o is out and l is lse

    ro, rl = reference.attention(q, k, v, **ref_kwargs)
    err_o = reference.relative_error(o, ro)
    assert err_o <= tol, f"O relative error {err_o:.3g}"
    live = np.isfinite(rl)
    if live.any():
        err_l = reference.relative_error(l[live], rl[live])
        assert err_l <= tol, f"L relative error {err_l:.3g}"
    # A row with every key masked gives exactly 0 (its L is not compared).
    assert np.all(o[~live] == 0), "fully masked rows must be exactly 0"
    return o, l, rl


# --- lengths and head dims ------------------------------------------------------------

@pytest.mark.parametrize("name", ["full", "causal"])
@pytest.mark.parametrize("n", [1, 17, 128, 257, 1000])
def test_lengths_d64(name, n):
    B, H = (1, 2) if n >= 1000 else (2, 3)
    run_and_check(name, *inputs(B, H, H, n, n, 64, seed=n))


@pytest.mark.parametrize("name", ["full", "causal"])
@pytest.mark.parametrize("d", [64, 96, 128, 256])
@pytest.mark.parametrize("n", [17, 257])
def test_head_dims(name, d, n):
    run_and_check(name, *inputs(1, 2, 2, n, n, d, seed=d + n))


@pytest.mark.parametrize("d,dv", [(64, 32), (64, 128), (96, 64)])
def test_value_dim(d, dv):
    run_and_check("causal", *inputs(1, 2, 2, 257, 257, d, dv, seed=5))


def jumping_maxima(B, H, N, D, seed):
    """Inputs whose row maxima move by far more than the online softmax's lag (2^8) from
    key tile to key tile, rising in the first half of the keys and falling in the
    second: every tile both moves a row's maximum and lags behind it."""
    q, k, v = inputs(B, H, H, N, N, D, seed=seed)
    ramp = np.minimum(np.arange(N), N - np.arange(N)).astype(np.float32) / 2
    k += ramp[None, None, :, None] * np.sign(q.mean(axis=2, keepdims=True))
    return q, k, v


@pytest.mark.parametrize("name", ["full", "causal", "window"])
@pytest.mark.parametrize("n", [17, 300])
def test_rows_whose_maxima_jump(name, n):
    run_and_check(name, *jumping_maxima(1, 2, n, 64, seed=n))


# --- causal with Nq != Nk (bottom-right aligned) ----------------------------------------

@pytest.mark.parametrize("nq,nk", [(1, 1000), (17, 257), (128, 1000), (100, 64),
                                   (257, 17), (1000, 128), (65, 64)])
def test_causal_rectangular(nq, nk):
    _, _, rl = run_and_check("causal", *inputs(1, 2, 2, nq, nk, 64, seed=nq * 7 + nk))
    if nq > nk:  # the first nq - nk rows see no key
        assert np.all(np.isneginf(rl[..., :nq - nk])) and np.all(np.isfinite(rl[..., nq - nk:]))


@pytest.mark.parametrize("nq,nk", [(17, 257), (257, 17), (1, 1000)])
@pytest.mark.parametrize("name", ["full", "window", "alibi"])
def test_rectangular_variants(name, nq, nk):
    run_and_check(name, *inputs(1, 2, 2, nq, nk, 64, seed=nq + nk))


# --- modifiers and masks ------------------------------------------------------------------

@pytest.mark.parametrize("n", [17, 257])
@pytest.mark.parametrize("name", ["window", "window1", "alibi", "alibi_pow", "softcap",
                                  "document", "document_full", "prefix_lm", "per_head_band",
                                  "softcap_document", "score_minus_inf", "python_div_mod",
                                  "block_diagonal", "bounded_mix", "selected_band"])
def test_variants(name, n):
    run_and_check(name, *inputs(2, H_ALIBI, H_ALIBI, n, n, 64, seed=n))


def test_softcap_changes_the_result():
    """Guards the soft-capping test against a cap too loose to matter."""
    q, k, v = inputs(1, 2, 2, 257, 257, 64, seed=3)
    capped, _ = reference.attention(q, k, v, scale=SOFTCAP_SCALE, score_mod=softcap_np)
    plain, _ = reference.attention(q, k, v, scale=SOFTCAP_SCALE)
    assert reference.relative_error(capped, plain) > 1e-2


@pytest.mark.parametrize("n", [17, 257])
@pytest.mark.parametrize("hk", [2, 1])
@pytest.mark.parametrize("name", ["full", "causal", "alibi"])
def test_gqa(name, hk, n):
    run_and_check(name, *inputs(2, 4, hk, n, n, 64, seed=10 * hk + n))


# --- rows with every key masked --------------------------------------------------------------

@pytest.mark.parametrize("name,n", [("rows_20_39", 17), ("rows_20_39", 257),
                                    ("rows_60_70", 257), ("rows_60_70", 128)])
def test_mask_mod_masks_whole_rows(name, n):
    o, _, rl = run_and_check(name, *inputs(1, 2, 2, n, n, 64, seed=n))
    lo, hi = (20, 40) if name == "rows_20_39" else (60, 71)
    if n > lo:
        assert np.all(np.isneginf(rl[..., lo:min(hi, n)]))
        assert np.all(o[..., lo:min(hi, n), :] == 0)


def test_causal_empty_rows_exactly_zero():
    q, k, v = inputs(1, 2, 2, 200, 50, 64, seed=4)
    o, _, _ = run_and_check("causal", q, k, v)
    assert np.all(o[:, :, :150] == 0)
    assert np.all(np.any(o[:, :, 150:] != 0, axis=-1))


# --- tile configs -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["document", "prefix_lm", "bounded_mix", "selected_band"])
def test_classification_in_chunks(name):
    # 16-key tiles at N = 1100: 69 key tiles, classified in three chunks of 32 and joined.
    config = tessera.Config(block_m=16, block_n=16)
    run_and_check(name, *inputs(1, 2, 2, 1100, 1100, 64, seed=11), config=config)


@pytest.mark.parametrize("bm,bn", [(32, 16), (16, 128), (128, 32)])
@pytest.mark.parametrize("name", ["causal", "window", "prefix_lm", "block_diagonal",
                                  "bounded_mix"])
def test_configs(name, bm, bn):
    config = tessera.Config(block_m=bm, block_n=bn)
    run_and_check(name, *inputs(1, 2, 2, 257, 257, 64, seed=bm + bn), config=config)


@pytest.mark.parametrize("n", [1, 100, 257])
@pytest.mark.parametrize("name", ["document", "prefix_lm"])
def test_one_stage_tile_lists(name, n):
    # One stage: the classified-tile walk as a GPU without prefetching compiles it.
    run_and_check(name, *inputs(1, 2, 2, n, n, 64, seed=n), config=tessera.Config(num_stages=1))


# --- memory layouts -------------------------------------------------------------------------------

def _bnhd_views(B, H, Hk, N, D, seed):
    """q, k, v built as [B, N, H, D] and viewed as [B, H, N, D] (not contiguous)."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, N, H, D), dtype=np.float32).transpose(0, 2, 1, 3)
    k = rng.standard_normal((B, N, Hk, D), dtype=np.float32).transpose(0, 2, 1, 3)
    v = rng.standard_normal((B, N, Hk, D), dtype=np.float32).transpose(0, 2, 1, 3)
    return q, k, v


@pytest.mark.parametrize("n", [17, 257])
@pytest.mark.parametrize("name", ["full", "causal", "document"])
def test_transposed_inputs(name, n):
    q, k, v = _bnhd_views(2, 4, 2, n, 64, seed=n)
    assert not q.flags.c_contiguous and not k.flags.c_contiguous
    run_and_check(name, q, k, v)


def test_strided_head_dim_and_sliced_inputs():
    rng = np.random.default_rng(11)
    big = rng.standard_normal((3, 2, 2, 300, 128), dtype=np.float32)
    q = big[0, :, :, 10:267, ::2]          # every other element of the last dim
    k = big[1, :, :, 3:260, 64:]           # a slice of the last dim
    v = big[2, :, :, :257, :64]
    assert q.strides[-1] == 8
    run_and_check("causal", q, k, v)


def test_transposed_output():
    q, k, v = inputs(2, 3, 3, 257, 257, 64, seed=12)
    out = np.empty((2, 257, 3, 64), np.float32).transpose(0, 2, 1, 3)
    o, _, _ = run_and_check("causal", q, k, v, out=out)
    assert o.base is not None and not o.flags.c_contiguous


class _DLPackOnly:
    """A host tensor reachable only through DLPack."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_dlpack_inputs():
    q, k, v = inputs(1, 2, 2, 129, 129, 64, seed=13)
    o = kernel("causal")(_DLPackOnly(q), _DLPackOnly(k), _DLPackOnly(v))
    ro, _ = reference.attention(q, k, v, causal=True)
    assert reference.relative_error(o, ro) <= TOL


# --- one kernel, many shapes ------------------------------------------------------------------------

def test_one_kernel_serves_every_shape():
    """Growing and shrinking B, H and N on one compiled kernel; nothing recompiles."""
    kern = kernel("causal")
    before = len(_compiles)
    for B, H, Hk, N in [(1, 2, 2, 257), (2, 4, 1, 17), (1, 1, 1, 1000), (3, 2, 2, 64),
                        (1, 2, 2, 257)]:
        q, k, v = inputs(B, H, Hk, N, N, 64, seed=N + B)
        o = kern(q, k, v)
        ro, _ = reference.attention(q, k, v, causal=True)
        assert reference.relative_error(o, ro) <= TOL
    assert kernel("causal") is kern and kernel("causal", 64, 64) is kern
    assert len(_compiles) == before
    assert len(_compiles) == len(set(_compiles))  # no (variant, dims, config) compiled twice


def test_default_output_and_return_lse():
    q, k, v = inputs(1, 2, 2, 65, 65, 64, seed=14)
    kern = kernel("full")
    o = kern(q, k, v)
    assert isinstance(o, np.ndarray) and o.shape == (1, 2, 65, 64) and o.dtype == np.float32
    o2, l2 = kern(q, k, v, return_lse=True)
    assert l2.shape == (1, 2, 65) and l2.dtype == np.float32
    np.testing.assert_array_equal(o, o2)
