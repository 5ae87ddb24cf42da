"""The `persistent` knob without a GPU (issue 25): with it on, a softmax forward's
attention grid launches min(blocks per SM x #SMs, work items) programs, each walking
(batch, head, query tile) items t = program id, t += %nctaid.x; ptxas is told the blocks
per SM the grid is sized for and assembles without spills (but the ceilings below).
Classification grids keep their launch; the launch record plans the grid from the
device's SM count and packs the same parameters. Off (the default), sm_80's and the CPU's
kernels are unchanged. With TMA copies each item ends with a proxy fence before its
barrier; warp-specialised, the producer walks the items too and Q takes a ring of two
(the next item's Q lands under this one's key tiles)."""
import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
import cases  # noqa: E402
import tessera  # noqa: E402
from tessera import _core, _runtime  # noqa: E402
from tessera.errors import CompileError  # noqa: E402
from tessera.trace import SpecError  # noqa: E402

from ptxas_report import ptxas_report  # noqa: E402

# Dense walks, mask_mod (a classification grid before the attention grid) and block lists.
VARIANTS = {name: (cases.SPECS[name][0], None)
            for name in ("full", "causal", "window", "prefix-lm", "document")}
VARIANTS.update({name: cases.BLOCK_SPARSE[name]
                 for name in ("blocks-causal", "blocks-1stage", "tokens-causal")})
# Spill bytes ptxas may report with the knob on where it exceeds the kernel's without
# (the default ceiling): sm_80's D = 128 mma.sync kernels, at 255 registers and 12 bytes
# of spills already, hold the work loop's item number and ids beside them (and the
# mirrored order's counts: the block-list walk 132 -> 148 B).
SPILL_CEILINGS = {("sm_80", 128, "full"): 16, ("sm_80", 128, "causal"): 44,
                  ("sm_80", 128, "blocks-causal"): 148}


def compile_variant(name, d, chip="sm_90a", **knobs):
    spec, config = VARIANTS[name]
    config = dataclasses.replace(config or cases.config_for(d, name), **knobs)
    module = spec.to_mlir(cases.DTYPE, d, d)
    ptx, record = _core.compile_gpu(module, spec.name, chip, **config.as_kwargs())
    return ptx.decode(), json.loads(record)


def ptxas_spills(ptx, chip, tmp_path):
    """Spill store bytes per entry, in the order ptxas reports them."""
    return [r.spill_stores for r in ptxas_report(ptx, chip, tmp_path).values()]


def kernel_ptx(ptx, name):
    """The PTX of entry `name` (up to the next entry)."""
    start = ptx.index(f".entry {name}(")
    end = ptx.find(".entry ", start + 1)
    return ptx[start:end if end >= 0 else len(ptx)]


def items_extent(extent):
    """The attention grid's work items: the product of its three program-id extents."""
    assert set(extent) == {"product"}
    inner, batch = extent["product"]
    tiles, heads = inner["product"]
    return tiles, heads, batch


@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("d", [64, 128])
def test_persistent_kernels(name, d, chip, tmp_path):
    ptx, record = compile_variant(name, d, chip, persistent=True)
    off, off_record = compile_variant(name, d, chip)
    *classification, attention = record["launches"]
    # The classification grids (mask_mod) keep their launch; the attention grid is
    # min(items, k x #SMs) with the items its three extents multiplied.
    assert classification == off_record["launches"][:-1]
    (grid,) = attention["grid"]
    items, sms = grid["min"]
    assert items_extent(items) == tuple(off_record["launches"][-1]["grid"])
    blocks = sms["sm_count"]
    assert 1 <= blocks <= 4
    body = kernel_ptx(ptx, attention["kernel"])
    # The work loop: items advance by the number of programs; ptxas leaves room for the
    # blocks per SM the grid counts on.
    assert "%nctaid.x" in body and "%nctaid.x" not in off
    assert f".minnctapersm {blocks}" in body
    # The SMs hold the blocks the grid counts on (shared memory: 228 KiB, 1 KiB each).
    assert blocks * (attention["smem"] + 1024) <= 228 * 1024
    assert blocks <= max(1, 228 * 1024 // (off_record["launches"][-1]["smem"] + 1024))
    # No spills where the kernel without the knob has none (and no more where it has).
    spills, off_spills = ptxas_spills(ptx, chip, tmp_path), ptxas_spills(off, chip, tmp_path)
    ceiling = SPILL_CEILINGS.get((chip, d, name), max(off_spills))
    assert max(spills) <= ceiling, (spills, off_spills)


@pytest.mark.parametrize("name", ["causal", "document", "blocks-causal"])
@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
def test_off_is_the_default_kernel(name, chip):
    default, record = compile_variant(name, 64, chip)
    off, off_record = compile_variant(name, 64, chip, persistent=False)
    assert off == default and off_record == record
    assert "%nctaid" not in default
    assert not any("min" in g for launch in record["launches"] for g in launch["grid"]
                   if isinstance(g, dict))


def test_default_config_text_is_unchanged():
    assert "persistent" not in tessera.Config().as_kwargs()
    assert "persistent" not in _core.gpu_pipeline("sm_90a", **tessera.Config().as_kwargs())
    on = tessera.Config(persistent=True)
    assert "persistent=true" in _core.gpu_pipeline("sm_90a", **on.as_kwargs())


@pytest.mark.parametrize("batch,heads,n", [(1, 1, 1), (1, 2, 17), (2, 3, 1000), (4, 16, 4097),
                                           (8, 32, 8192)])
def test_record_plans_min_of_items_and_sms(batch, heads, n):
    # The host side: the record's grid is min(B x H x query tiles, k x #SMs), planned
    # for a device's SM count, also over symbolic sizes; parameters pack as without it.
    ptx, text = compile_variant("causal", 64, persistent=True)
    record = _runtime.LaunchRecord.parse(json.dumps(text))
    off = _runtime.LaunchRecord.parse(json.dumps(compile_variant("causal", 64)[1]))
    assert record.uses_sm_count and not off.uses_sm_count
    blocks = text["launches"][-1]["grid"][0]["min"][1]["sm_count"]
    shapes = [(batch, heads, n, 64)] * 4 + [(batch, heads, n)]
    items = batch * heads * -(-n // 64)
    for sms in (132, 78):
        _, grids = record.plan(shapes, sm_count=sms)
        assert grids == [(min(items, blocks * sms), 1, 1)]
        assert record.plan_symbolic([list(s) for s in shapes], sms)[1] == grids
    with pytest.raises(_runtime.LaunchRecordError, match="needs the device's SM count"):
        record.plan(shapes)

    class T:
        def __init__(self, ptr, shape):
            self.ptr, self.shape = ptr, shape
            self.strides = tuple(int(x) for x in _strides(shape))

        def data_ptr(self):
            return self.ptr

        def stride(self):
            return self.strides

    tensors = [T(256 * (i + 1), s) for i, s in enumerate(shapes)]
    assert record.pack(tensors) == off.pack(tensors)


def _strides(shape):
    out, step = [], 1
    for s in reversed(shape):
        out.append(step)
        step *= s
    return reversed(out)


# Knobs beside persistent on sm_90a: TMA copies, a producer warpgroup, its consumers'
# overlap (two warpgroups: also pingpong).
TMA_KNOBS = {"tma": {"tma": True}, "ws": {"tma": True, "warp_specialize": True},
             "ws-overlap": {"tma": True, "warp_specialize": True,
                            "intra_warpgroup_overlap": True}}
# Spill bytes ptxas may report for a warp-specialised persistent kernel: the producer's,
# at 24 (two consumer warpgroups) or 40 registers, holding the work loop's item, ids and
# key-loop bounds beside its ring counters (SASS: the consumers' loops spill nothing but
# a block list's overlapped 128 x 128 walk at D = 128, 7 stores of its 76 B).
PRODUCER_SPILL_CEILING = 128


@pytest.mark.parametrize("knobs", list(TMA_KNOBS))
@pytest.mark.parametrize("name", ["full", "causal", "window", "document", "blocks-causal"])
@pytest.mark.parametrize("d", [64, 128])
def test_persistent_with_tensor_copies(name, d, knobs, tmp_path):
    ptx, record = compile_variant(name, d, persistent=True, **TMA_KNOBS[knobs])
    off, off_record = compile_variant(name, d, **TMA_KNOBS[knobs])
    attention, off_attention = record["launches"][-1], off_record["launches"][-1]
    body, off_body = kernel_ptx(ptx, attention["kernel"]), kernel_ptx(off, off_attention["kernel"])
    assert "%nctaid.x" in body and "cp.async.bulk.tensor" in body
    assert "mbarrier.try_wait.parity" in body
    # Each item ends fenced against the next item's fills.
    assert body.count("fence.proxy.async") > off_body.count("fence.proxy.async")
    blocks = attention["grid"][0]["min"][1]["sm_count"]
    assert f".minnctapersm {blocks}" in body
    assert blocks * (attention["smem"] + 1024) <= 228 * 1024
    spills = max(ptxas_spills(ptx, "sm_90a", tmp_path))
    if "warp_specialize" not in TMA_KNOBS[knobs]:
        assert spills <= max(ptxas_spills(off, "sm_90a", tmp_path))
        return
    config = VARIANTS[name][1] or cases.config_for(d, name)
    assert "setmaxnreg.dec" in body and attention["block"] == off_attention["block"]
    # The register budgets' blocks per SM (two with one consumer warpgroup, else one),
    # as shared memory allows.
    fit = 228 * 1024 // (attention["smem"] + 1024)
    assert blocks == min(2 if config.num_warps == 4 else 1, fit)
    # Q in a ring of two: the next item's Q has its own slot.
    assert attention["smem"] >= off_attention["smem"] + config.block_m * d * 2
    assert spills <= PRODUCER_SPILL_CEILING


def test_persistent_is_for_softmax_forwards():
    with pytest.raises(SpecError, match="Config.persistent applies to softmax attention"):
        tessera.compile(tessera.linear_attention(), head_dim=64, dtype="bfloat16",
                        target="cuda", config=tessera.Config(persistent=True))
    kernel = tessera.compile(tessera.attention(causal=True), head_dim=64, dtype="bfloat16",
                             target="cuda", config=tessera.Config(persistent=True))
    kernel.grad_config = tessera.Config(persistent=True)
    with pytest.raises(SpecError, match="backward's grad_config must leave it off"):
        kernel.grad_image()


def test_cpu_ignores_persistent():
    import numpy as np
    spec = tessera.attention(causal=True)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 37, 32)).astype(np.float32) for _ in range(3))
    plain = tessera.compile(spec, head_dim=32, dtype="float32", config=tessera.Config())
    on = tessera.compile(spec, head_dim=32, dtype="float32",
                         config=tessera.Config(persistent=True))
    assert np.array_equal(plain(q, k, v), on(q, k, v))


def test_autotune_space_takes_persistent():
    import importlib
    at = importlib.import_module("tessera.autotune")  # `tessera.autotune` is the function
    space = {**at.DEFAULT_SPACE["cuda"], **at.SM90A_SOFTMAX_KNOBS}
    candidates = at._candidates(space, "cuda")
    assert {c.persistent for c in candidates} == {False, True}
    assert any(c.persistent and c.warp_specialize for c in candidates)
    assert any(c.persistent and not c.tma for c in candidates)
