"""The `tma` knob without a GPU (issue 25): with it on, every softmax variant's sm_90a
kernel copies Q, K and V by cp.async.bulk.tensor from descriptor parameters, waits on
mbarrier phases, multiplies with wgmma and assembles; the launch record lists the
descriptors. With it off, or on sm_80 and the CPU, nothing changes."""
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
import cases  # noqa: E402
import tessera  # noqa: E402
from tessera import _core  # noqa: E402

from ptxas_report import ptxas_report  # noqa: E402

# Dense walks, mask_mod (a classification grid before the attention grid) and block lists.
VARIANTS = {name: (cases.SPECS[name][0], None)
            for name in ("full", "causal", "window", "prefix-lm", "document")}
VARIANTS.update({name: cases.BLOCK_SPARSE[name]
                 for name in ("blocks-causal", "blocks-1stage", "blocks-2tiles")})


def compile_variant(name, d, chip="sm_90a", **knobs):
    spec, config = VARIANTS[name]
    config = dataclasses.replace(config or cases.config_for(d, name), **knobs)
    module = spec.to_mlir(cases.DTYPE, d, d)
    ptx, record = _core.compile_gpu(module, spec.name, chip, **config.as_kwargs())
    return ptx.decode(), json.loads(record)


# The document list walk at D = 128 runs at 168 registers (three blocks an SM); since only
# the issuer waits for a barrier's previous fill (a slower warp's wait raced the fill),
# ptxas keeps 16 B of its walk's setup in local memory.
SPILL_CEILING = {("document", 128): 16}


def ptxas_stats(ptx, tmp_path):
    """Spill store bytes per entry (sm_90a), in the order ptxas reports them."""
    return [r.spill_stores for r in ptxas_report(ptx, "sm_90a", tmp_path).values()]


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("d", [64, 128])
def test_tma_kernels(name, d, tmp_path):
    ptx, record = compile_variant(name, d, tma=True)
    assert "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes" in ptx
    assert "mbarrier.try_wait.parity.shared::cta.b64" in ptx
    assert "mbarrier.arrive.expect_tx.shared::cta.b64" in ptx
    assert "fence.mbarrier_init.release.cluster" in ptx
    assert re.search(r"wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16", ptx)
    # Every tile goes by TMA: no cp.async copies (nor their waits) are left.
    assert not re.search(r"cp\.async\.(cg|ca|wait_group|commit_group)", ptx)
    # The record's descriptors: Q (block_m rows), K and V (block_n rows), 64-column boxes
    # (128 bytes, the swizzle span), one 128-byte parameter each in every kernel.
    spec, config = VARIANTS[name]
    config = config or cases.config_for(d, name)
    maps = record["tensor_maps"]
    assert record["version"] == 2
    assert [m["argument"] for m in maps] == [0, 1, 2]
    assert [m["box"] for m in maps] == [[1, 1, config.block_m, 64]] + \
        [[1, 1, config.block_n, 64]] * 2
    assert {(m["dtype"], m["swizzle"]) for m in maps} == {("bf16", 128)}
    kernels = len(record["launches"])
    assert ptx.count(".param .align 64 .b8") == len(maps) * kernels
    # Each copy of a D-column tile is D / 64 boxes.
    assert ptx.count("cp.async.bulk.tensor") % (d // 64) == 0
    spills = ptxas_stats(ptx, tmp_path)
    assert max(spills) <= SPILL_CEILING.get((name, d), 0), spills


@pytest.mark.parametrize("name", ["causal", "prefix-lm", "blocks-causal"])
def test_off_and_elsewhere_unchanged(name):
    # Off (the default) is the kernel as before; sm_80 ignores the knob.
    default, _ = compile_variant(name, 64)
    off, _ = compile_variant(name, 64, tma=False)
    assert off == default and "cp.async.bulk" not in default
    sm80, record = compile_variant(name, 64, "sm_80", tma=True)
    assert sm80 == compile_variant(name, 64, "sm_80")[0]
    assert record["tensor_maps"] == []


def test_default_config_text_is_unchanged():
    # tma is absent from a default config's kwargs and pipeline text (cache keys stay).
    assert "tma" not in tessera.Config().as_kwargs()
    assert "tma" not in _core.gpu_pipeline("sm_90a", **tessera.Config().as_kwargs())
    on = tessera.Config(tma=True)
    assert on.as_kwargs()["tma"] is True
    assert "tma=true" in _core.gpu_pipeline("sm_90a", **on.as_kwargs())


def test_cpu_ignores_tma():
    import numpy as np
    spec = tessera.attention(causal=True)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 37, 32)).astype(np.float32) for _ in range(3))
    plain = tessera.compile(spec, head_dim=32, dtype="float32", config=tessera.Config())
    tma = tessera.compile(spec, head_dim=32, dtype="float32", config=tessera.Config(tma=True))
    assert np.array_equal(plain(q, k, v), tma(q, k, v))


def test_autotune_space_takes_tma():
    import importlib
    at = importlib.import_module("tessera.autotune")  # `tessera.autotune` is the function
    from tessera.tuning_store import _entry_problem
    space = {**at.DEFAULT_SPACE["cuda"], **at.SM90A_SOFTMAX_KNOBS}
    candidates = at._candidates(space, "cuda")
    assert {c.tma for c in candidates} == {False, True}
    # The default space once per combination of the boolean knobs the space allows (tma
    # off / on, with warp_specialize and persistent as test_warp_specialize_ptx.py and
    # test_persistent_ptx.py say), each tiling once; pingpong and intra_warpgroup_overlap
    # besides, with warp_specialize (test_pingpong_ptx.py, test_intra_warpgroup_overlap_ptx.py).
    plain = [c for c in candidates if not c.pingpong and not c.intra_warpgroup_overlap]
    knobs = {(c.tma, c.warp_specialize, c.persistent) for c in plain}
    assert len(plain) == len(knobs) * len(at._candidates(at.DEFAULT_SPACE["cuda"], "cuda"))
    with pytest.raises(ValueError, match=r"space\['tma'\] must be a non-empty list of True / False"):
        at._candidates({"tma": [1]}, "cuda")
    # A stored winner keeps its tma; entries without the knob (older ones, or off) are read.
    entry = {"config": tessera.Config(tma=True).as_kwargs(), "ms": 1.0, "compiler": "v"}
    assert _entry_problem(entry) is None
    entry["config"]["tma"] = 1
    assert "tma is not true or false" in _entry_problem(entry)
    entry["config"] = tessera.Config().as_kwargs()
    assert _entry_problem(entry) is None


@pytest.mark.parametrize("d", [64, 128])
def test_per_token_lists_keep_cp_async(d):
    # A while loop over per-token lists: TMA copies there hung on an H100 (N >= 4096,
    # D = 64), so the knob leaves such kernels to cp.async, as they are without it.
    spec, config = cases.BLOCK_SPARSE["tokens-causal"]
    module = spec.to_mlir(cases.DTYPE, d, d)
    on, _ = _core.compile_gpu(module, spec.name, "sm_90a",
                              **dataclasses.replace(config, tma=True).as_kwargs())
    off, _ = _core.compile_gpu(module, spec.name, "sm_90a", **config.as_kwargs())
    assert on == off and b"cp.async.bulk" not in on and b"cp.async.cg" in on
