"""tessera.autotune(..., backward=True): the softmax backward's own config, tuned on the CPU
(real timing, and an injected timing function), kept in the tuning store under a key of its
own, and used by kernel.grad and the torch op's backward; the CUDA candidates are checked up
to their compile step (no GPU needed)."""
import importlib
import json

import numpy as np
import pytest

import tessera
from tessera import reference_grad
from tessera.gpu import default_grad_config

at = importlib.import_module("tessera.autotune")  # `tessera.autotune` is the function
SPEC = tessera.attention(causal=True)
SPACE = {"block_m": [16, 32], "block_n": [16, 32]}
SMALL = dict(head_dim=16, key=(1, 2, 48), space=SPACE, warmup=0, repeats=2, progress=False,
             workers=0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entries(cache):
    return json.loads((cache / "tuning.json").read_text())["entries"]


def _inputs(shape, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((*shape, d), dtype=np.float32) for _ in range(3))


def _check_grad(kernel, shape):
    """kernel.grad (into poisoned buffers) against the float64 backward."""
    q, k, v = _inputs(shape, seed=3)
    o, lse = kernel(q, k, v, return_lse=True)
    g = np.random.default_rng(4).standard_normal(o.shape, dtype=np.float32)
    poisoned = tuple(np.full_like(x, np.nan) for x in (q, k, v))
    got = kernel.grad(q, k, v, o, lse, g, out=poisoned)
    want = reference_grad.attention_grad(q, k, v, g, causal=True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_backward_is_tuned_stored_apart_and_used_by_grad(cache):
    fwd = tessera.autotune(SPEC, **SMALL)
    r = tessera.autotune(SPEC, backward=True, **SMALL)
    assert not r.from_store and r.store_status == "miss" and r.compiled == 4
    assert [t.status for t in r.table] == ["ok"] * 4 and r.ms == min(t.ms for t in r.table)
    assert r.kernel.grad_config == r.config and r.kernel.config == tessera.Config()
    assert "attn.attention_grad" in r.module
    # Its own entry beside the forward's: same shape, another spec hash.
    assert r.key.shape == fwd.key.shape and r.key.spec != fwd.key.spec
    entries = _entries(cache)
    assert len(entries) == 2
    assert entries[r.key.text()]["config"] == r.config.as_kwargs()
    assert entries[fwd.key.text()]["config"] == fwd.config.as_kwargs()
    # kernel.grad runs the tuned gradient kernels (N = 37: not a tile multiple).
    _check_grad(r.kernel, (1, 2, 37))
    assert r.config in {c for _, c in r.kernel._grad_impls}

    again = tessera.autotune(SPEC, backward=True, **SMALL)
    assert again.from_store and again.compiled == 0 and again.config == r.config
    assert again.kernel.grad_config == r.config
    _check_grad(again.kernel, (2, 1, 1))


def test_injected_timing_picks_the_fastest_backward(monkeypatch):
    """The timing function is replaced: each candidate's run must launch kernel.grad
    with that candidate as grad_config, and the cheapest one wins."""
    cost = {(16, 16): 3.0, (16, 32): 2.0, (32, 16): 0.5, (32, 32): 1.0}
    seen = []

    def fake_time(run, warmup, repeats):
        run()
        config = seen_config[0]
        seen.append(config)
        return cost[config.block_m, config.block_n]

    seen_config = [None]
    real_grad = tessera.Kernel.grad

    def spy(self, *args, **kwargs):
        seen_config[0] = self.grad_config
        return real_grad(self, *args, **kwargs)

    monkeypatch.setattr(tessera.Kernel, "grad", spy)
    monkeypatch.setattr(at, "_time_cpu", fake_time)
    r = tessera.autotune(SPEC, backward=True, store=False, **SMALL)
    assert [(c.block_m, c.block_n) for c in seen] == list(cost)
    assert (r.config.block_m, r.config.block_n) == (32, 16) and r.ms == 0.5
    assert [t.ms for t in r.table] == list(cost.values())


def test_grad_config_changes_only_the_gradient_kernel():
    kernel = tessera.compile(SPEC, head_dim=16)
    q, k, v = _inputs((1, 2, 40))
    o, lse = kernel(q, k, v, return_lse=True)
    g = np.ones_like(o)
    default = kernel.grad(q, k, v, o, lse, g)
    kernel.grad_config = tessera.Config(block_m=16, block_n=32)
    tuned = kernel.grad(q, k, v, o, lse, g)
    for a, b in zip(default, tuned):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert {c for _, c in kernel._grad_impls} == {tessera.Config(), kernel.grad_config}
    np.testing.assert_array_equal(kernel(q, k, v), o)  # the forward is untouched


@pytest.mark.parametrize("tile", [8, 16, 48])
def test_grad_query_tile_walks_narrower_dk_dv_tiles_with_the_same_gradients(tile):
    """grad_query_tile changes how many queries the dK / dV grid walks at a time (the CPU
    takes any positive width); the gradients stay within 1e-5 of the float64 backward,
    at N = 37 and N = 1 (neither a multiple of the tile)."""
    kernel = tessera.compile(SPEC, head_dim=16)
    kernel.grad_config = tessera.Config(block_m=32, block_n=32, grad_query_tile=tile)
    _check_grad(kernel, (1, 2, 37))
    _check_grad(kernel, (2, 1, 1))


def test_grad_query_tile_is_refused_where_it_cannot_work():
    kernel = tessera.compile(SPEC, head_dim=16)
    q, k, v = _inputs((1, 1, 8))
    o, lse = kernel(q, k, v, return_lse=True)
    kernel.grad_config = tessera.Config(block_m=32, block_n=32, grad_query_tile=-16)
    with pytest.raises(Exception, match="grad_query_tile must be 0"):
        kernel.grad(q, k, v, o, lse, o)
    c = tessera.Config(grad_query_tile=16)
    assert at.invalid_for_backward(c, "cuda", 128, 128, "sm_90a") is None
    assert at.invalid_for_backward(c, "cuda", 128, 128, "sm_80") is None  # [key, query]
    assert "multiple of 64" in at.invalid_for_backward(
        tessera.Config(grad_query_tile=96), "cuda", 128, 128, "sm_80")
    assert "multiple of 16" in at.invalid_for_backward(
        tessera.Config(grad_query_tile=24), "cuda", 128, 128)
    assert at.invalid_for_backward(tessera.Config(grad_query_tile=64), "cuda", 128, 128,
                                   "sm_80") is None


def test_cuda_backward_candidates_are_filtered_then_compiled():
    cfgs = [tessera.Config(64, 64, 4, 2), tessera.Config(64, 32, 4, 2),
            tessera.Config(64, 64, 8, 1), tessera.Config(128, 128, 4, 2)]
    ok, narrow, eight, deep = at.validate_configs(SPEC, cfgs, head_dim=128, dtype="bfloat16",
                                                  target="cuda", workers=0, backward=True)
    assert ok.status == "ok", ok.reason
    assert narrow.status == "rejected"
    assert "block_n must be multiples of 16 x num_warps = 64, got 64 x 32" in narrow.reason
    assert eight.status == "rejected" and "16 x num_warps = 128" in eight.reason
    assert deep.status == "rejected" and "num_stages=2" in deep.reason
    assert "use num_stages=1" in deep.reason


def test_default_grad_space_and_config_agree_with_the_filter():
    for d in (64, 128, 192, 256):
        c = default_grad_config(d, d)
        assert at.invalid_for_backward(c, "cuda", d, d) is None
        assert (c.num_stages == 2) == (d <= 192)
        # sm_90a past D = 64: 16-query dK / dV tiles, no .minnctapersm; sm_80: 16-query
        # [key, query] tiles, one stage past D = 64 (the ptxas figures in gpu.py).
        assert c.min_blocks == 0
        assert c.grad_query_tile == (16 if d > 64 else 64)
        sm80 = default_grad_config(d, d, "sm_80")
        assert sm80.min_blocks == 1 and sm80.grad_query_tile == 16
        assert sm80.num_stages == (1 if d > 64 else 2)
        assert at.invalid_for_backward(sm80, "cuda", d, d, "sm_80") is None
    space = at.DEFAULT_GRAD_SPACE["cuda"]
    valid = [c for c in at._candidates(space, "cuda")
             if at.invalid_for_backward(c, "cuda", 128, 128) is None]
    assert default_grad_config(128, 128) in valid and len(valid) >= 4
    # The dK / dV grid's query tile is tuned (both routes on sm_80).
    assert {c.grad_query_tile for c in valid} == {16, 32, 64}
    assert default_grad_config(128, 128, "sm_80") in [
        c for c in at._candidates(space, "cuda")
        if at.invalid_for_backward(c, "cuda", 128, 128, "sm_80") is None]


def test_backward_of_a_linear_spec_is_refused():
    with pytest.raises(tessera.SpecError, match="backward=True tunes the softmax backward"):
        tessera.autotune(tessera.linear_attention(), backward=True, **SMALL)
