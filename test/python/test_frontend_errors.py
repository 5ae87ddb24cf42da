"""Bad specs and bad arguments fail in Python, with a message that names the problem."""
import math
import os

import numpy as np
import pytest

import tessera
from tessera import SpecError

THIS_FILE = os.path.basename(__file__)
D = 64


def _line_of(marker):
    """Line number (1-based) of the line in this file that carries `marker`."""
    with open(__file__) as f:
        for n, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return n
    raise AssertionError(marker)


@pytest.fixture(scope="module")
def kern():
    return tessera.compile(tessera.attention(causal=True), head_dim=D)


DOC = tessera.Buffer("document_id")


@pytest.fixture(scope="module")
def doc_kern():
    spec = tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: DOC[q_idx] == DOC[kv_idx])
    return tessera.compile(spec, head_dim=D)


def qkv(B=1, H=2, Hk=2, N=8, d=D, dk=None, dv=None, Bk=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, H, N, d)).astype(dtype)
    k = rng.standard_normal((B if Bk is None else Bk, Hk, N, d if dk is None else dk)).astype(dtype)
    v = rng.standard_normal((B if Bk is None else Bk, Hk, N, d if dv is None else dv)).astype(dtype)
    return q, k, v


# --- call-time argument checks ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.float16])
def test_wrong_dtype(kern, dtype):
    with pytest.raises(TypeError, match=rf"q has dtype {np.dtype(dtype).name}; .*float32"):
        kern(*qkv(dtype=dtype))


def test_one_wrong_dtype(kern):
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"v has dtype float64"):
        kern(q, k, v.astype(np.float64))


@pytest.mark.parametrize("shape", [(2, 8, D), (1, 1, 2, 8, D), (D,)])
def test_wrong_rank(kern, shape):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"q must have rank 4 \[batch, heads, seq, dim\]"):
        kern(np.zeros(shape, np.float32), k, v)


def test_mismatched_head_dims(kern):
    q, k, v = qkv(dk=32)
    with pytest.raises(ValueError, match=r"head dims must be 64, got 64 and 32"):
        kern(q, k, v)
    q, k, v = qkv(d=32, dk=D, dv=D)
    with pytest.raises(ValueError, match=r"head dims must be 64, got 32 and 64"):
        kern(q, k, v)


def test_mismatched_value_shape(kern):
    q, k, v = qkv(dv=32)
    with pytest.raises(ValueError, match=r"v must have shape \[1, 2, 8, 64\]"):
        kern(q, k, v)
    q, k, _ = qkv()
    with pytest.raises(ValueError, match=r"v must have shape"):
        kern(q, k, np.zeros((1, 2, 9, D), np.float32))


def test_heads_not_a_multiple(kern):
    with pytest.raises(ValueError, match=r"query heads \(3\) must be a multiple of key/value heads \(2\)"):
        kern(*qkv(H=3, Hk=2))


def test_mismatched_batch(kern):
    with pytest.raises(ValueError, match=r"q has batch 2 but k has batch 1"):
        kern(*qkv(B=2, Bk=1))


def test_no_keys(kern):
    q, _, _ = qkv()
    empty = np.zeros((1, 2, 0, D), np.float32)
    with pytest.raises(ValueError, match=r"at least one key"):
        kern(q, empty, empty)


def test_negative_strides(kern):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"k has negative strides"):
        kern(q, k[..., ::-1, :], v)


def test_strides_not_whole_elements(kern):
    q, k, v = qkv()
    base = np.zeros(2 * q.size, np.float32)
    odd = np.lib.stride_tricks.as_strided(base, shape=q.shape,
                                          strides=q.strides[:3] + (6,))  # 1.5 elements
    with pytest.raises(ValueError, match=r"q has strides .* not whole elements"):
        kern(odd, k, v)


def test_not_an_array(kern):
    q, k, v = qkv()
    with pytest.raises(TypeError, match=r"q must be a numpy array or a DLPack tensor, got list"):
        kern(q.tolist(), k, v)


class _FakeCudaTensor:
    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, **kwargs):
        raise AssertionError("must not be called")


def test_device_tensor(kern):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"k is on a device \(DLPack device type 2:0\).*host"):
        kern(q, _FakeCudaTensor(), v)


def test_wrong_out_shape(kern):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"out must be float32 of shape \(1, 2, 8, 64\), got float32 \(1, 2, 8, 32\)"):
        kern(q, k, v, out=np.empty((1, 2, 8, 32), np.float32))


def test_wrong_out_dtype(kern):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"out must be float32 .* got float64"):
        kern(q, k, v, out=np.empty(q.shape, np.float64))


def test_wrong_lse_shape(kern):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"lse_out must be float32 of shape \(1, 2, 8\)"):
        kern(q, k, v, lse_out=np.empty((1, 2, 8, 1), np.float32))


def test_read_only_out(kern):
    q, k, v = qkv()
    out = np.empty(q.shape, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"out is read-only"):
        kern(q, k, v, out=out)


def test_missing_buffer(doc_kern):
    with pytest.raises(TypeError, match=r"missing \['document_id'\]"):
        doc_kern(*qkv())


def test_unexpected_buffer(kern, doc_kern):
    ids = np.zeros(8, np.int32)
    with pytest.raises(TypeError, match=r"unexpected \['document_id'\]"):
        kern(*qkv(), document_id=ids)
    with pytest.raises(TypeError, match=r"unexpected \['segment'\]"):
        doc_kern(*qkv(), document_id=ids, segment=ids)


@pytest.mark.parametrize("table", [np.zeros(8, np.int64), np.zeros((2, 4), np.int32),
                                   np.zeros(8, np.float32)])
def test_bad_buffer(doc_kern, table):
    with pytest.raises(TypeError, match=r"buffer 'document_id' must be a 1-D int32 array"):
        doc_kern(*qkv(), document_id=table)


# --- modifiers that cannot be traced ---------------------------------------------------------------

def test_mask_mod_returns_int():
    def returns_int(b, h, q_idx, kv_idx):
        return 1

    with pytest.raises(SpecError, match=r"mask_mod must return a bool") as e:
        tessera.attention(mask_mod=returns_int)
    assert THIS_FILE in str(e.value)
    assert f"{THIS_FILE}:{returns_int.__code__.co_firstlineno}" in str(e.value)


def test_mask_mod_returns_traced_int():
    with pytest.raises(SpecError, match=r"mask_mod must return a bool .* got i32") as e:
        tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx - kv_idx)
    assert THIS_FILE in str(e.value)


def test_score_mod_returns_bool():
    with pytest.raises(SpecError, match=r"score_mod must return a number") as e:
        tessera.attention(score_mod=lambda s, b, h, q_idx, kv_idx: q_idx >= kv_idx)
    assert THIS_FILE in str(e.value)


def test_if_on_traced_value():
    def score_mod(score, b, h, q_idx, kv_idx):
        if q_idx >= kv_idx:  # MARK-IF-LINE
            return score
        return score - 1.0

    with pytest.raises(SpecError, match=r"Python control flow .* tessera\.where") as e:
        tessera.attention(score_mod=score_mod)
    assert f"{THIS_FILE}:{_line_of('MARK-IF-LINE')}" in str(e.value)


def test_and_on_traced_value():
    with pytest.raises(SpecError, match=r"Python control flow"):
        tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx >= kv_idx and kv_idx < 4)


def test_python_min_on_traced_value():
    with pytest.raises(SpecError, match=r"tessera\.minimum"):
        tessera.attention(score_mod=lambda s, b, h, q_idx, kv_idx: min(s, 1.0))


def test_math_exp_on_traced_value():
    def score_mod(score, b, h, q_idx, kv_idx):
        return math.exp(score)  # MARK-MATH-EXP

    with pytest.raises(SpecError, match=r"no Python number; use tessera's math functions") as e:
        tessera.attention(score_mod=score_mod)
    assert f"{THIS_FILE}:{_line_of('MARK-MATH-EXP')}" in str(e.value)


def test_numpy_math_on_traced_value():
    with pytest.raises(SpecError, match=r"numpy's exp cannot take a traced value; use tessera.exp") as e:
        tessera.attention(score_mod=lambda s, b, h, q_idx, kv_idx: np.exp(s))
    assert THIS_FILE in str(e.value)


def test_numpy_array_in_modifier():
    slopes = np.array([0.5, 0.25])
    with pytest.raises(SpecError, match=r"numpy array of shape \(2,\)"):
        tessera.attention(score_mod=lambda s, b, h, q_idx, kv_idx: s - slopes * (q_idx - kv_idx))


def test_buffer_indexed_by_python_int():
    with pytest.raises(SpecError, match=r"buffer 'document_id' is indexed by a traced index"):
        tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: DOC[3] == DOC[kv_idx])


def test_logic_on_numbers():
    with pytest.raises(SpecError, match=r"'&', '\|' and '\^' combine two comparisons"):
        tessera.attention(score_mod=lambda s, b, h, q_idx, kv_idx: s & kv_idx)
    with pytest.raises(SpecError, match=r"mask_mod must return a bool"):  # bits of ints: i32
        tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_idx & kv_idx)


def test_where_needs_a_comparison():
    with pytest.raises(SpecError, match=r"tessera.where needs a comparison"):
        tessera.attention(score_mod=lambda s, b, h, q_idx, kv_idx: tessera.where(q_idx, s, 0.0))


def test_escaped_traced_value():
    leaked = []

    def first(b, h, q_idx, kv_idx):
        leaked.append(q_idx)
        return q_idx >= kv_idx

    tessera.attention(mask_mod=first)
    with pytest.raises(SpecError, match=r"escaped its modifier"):
        tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: kv_idx <= leaked[0])


def test_modifier_not_callable():
    with pytest.raises(SpecError, match=r"score_mod must be a function"):
        tessera.attention(score_mod=3.0)


# --- spec and compile options ---------------------------------------------------------------------------

def test_window_without_causal_is_bidirectional():
    """No longer an error (issue 31): |j - i| < w, test_window_blocks_cpu.py."""
    text = tessera.attention(window=16).to_mlir("float32", 64, 64)
    assert "{window = 16 : i64}" in text and "causal" not in text


@pytest.mark.parametrize("window", [0, -3, 2.5, True])
def test_bad_window(window):
    with pytest.raises(SpecError, match=r"window must be a positive int"):
        tessera.attention(causal=True, window=window)


@pytest.mark.parametrize("scale", [-1, 0, float("inf"), float("nan"), "0.1"])
def test_bad_scale(scale):
    with pytest.raises(SpecError, match=r"scale must be a positive finite number"):
        tessera.attention(scale=scale)


def test_causal_not_bool():
    with pytest.raises(SpecError, match=r"causal must be a bool"):
        tessera.attention(causal=1)


def test_bad_name():
    with pytest.raises(SpecError, match=r"name must be an identifier"):
        tessera.attention(name="my kernel")


def test_buffer_clashes_with_inputs():
    q_table = tessera.Buffer("q")
    with pytest.raises(SpecError, match=r"clash with q, k, v"):
        tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: q_table[q_idx] == 0)


@pytest.mark.parametrize("head_dim", [0, -64, 513, 64.0, True])
def test_bad_head_dim(head_dim):
    with pytest.raises(SpecError, match=r"head_dim must be an int in \[1, 512\]"):
        tessera.compile(tessera.attention(), head_dim=head_dim)


def test_bad_value_dim():
    with pytest.raises(SpecError, match=r"value_dim must be an int"):
        tessera.compile(tessera.attention(), head_dim=64, value_dim=0)


@pytest.mark.parametrize("dtype", ["float64", "int32", "float16", "bfloat16"])
def test_bad_compile_dtype(dtype):
    with pytest.raises(SpecError, match=rf"dtype '{dtype}' is not supported"):
        tessera.compile(tessera.attention(), head_dim=64, dtype=dtype)


def test_bad_target():
    with pytest.raises(SpecError, match=r"target must be 'cpu' or 'cuda', got 'tpu'"):
        tessera.compile(tessera.attention(), head_dim=64, target="tpu")


def test_gpu_needs_16_bit_inputs():
    with pytest.raises(SpecError, match=r"GPU kernels take bfloat16 or float16, got 'float32'"):
        tessera.compile(tessera.attention(), head_dim=64, target="cuda")


def test_not_a_spec():
    with pytest.raises(TypeError, match=r"spec must come from tessera.attention"):
        tessera.compile({"causal": True}, head_dim=64)


def test_bad_buffer_declarations():
    with pytest.raises(SpecError, match=r"must be a Python identifier"):
        tessera.Buffer("document id")
    with pytest.raises(SpecError, match=r"tables are int32 or float32"):
        tessera.Buffer("document_id", dtype="int64")


def test_linear_attention_gpu_rejects_what_it_cannot_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    with pytest.raises(tessera.SpecError, match="bfloat16 or float16"):
        tessera.compile(tessera.linear_attention(), head_dim=64, target="cuda")
    kernel = tessera.compile(tessera.linear_attention(), head_dim=64, dtype="bfloat16",
                             target="cuda")
    q = np.zeros((1, 1, 4, 64), np.float32)
    # Without torch: torch is needed; with it: q must be a CUDA tensor.
    with pytest.raises((RuntimeError, TypeError), match="torch"):
        kernel(q, q, q)
    with pytest.raises((RuntimeError, TypeError), match="torch"):
        kernel.grad(q, q, q, q)
    step = tessera.compile(tessera.linear_decode(), head_dim=64, dtype="bfloat16",
                           target="cuda")
    with pytest.raises(tessera.SpecError, match="a decode step has no gradient kernel"):
        step.grad(q, q, q, q)
