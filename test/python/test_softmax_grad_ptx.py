"""The softmax backward's tile program through the existing GPU lowering (issue 24's
stretch; the GPU backward proper waits for issue 23's tgpu level): PTX for sm_90a (wgmma)
and sm_80 (mma.sync) that ptxas assembles. Nothing runs here; the device run checks the
numbers once the runtime launches it."""
import os
import re
import subprocess

import pytest

import tessera as ts
from tessera import _core
from tessera.gpu import default_grad_config
from tessera.softmax_grad import grad_mlir

from ptxas_report import PTXAS, ptxas_report  # noqa: E402
DOC = ts.Buffer("doc")
BIAS = ts.Buffer("bias", dtype="float32", rank=2)

SPECS = {
    "causal": ts.attention(causal=True),
    "softcap": ts.attention(score_mod=lambda s, b, h, i, j: 30.0 * ts.tanh(s / 30.0)),
    "document": ts.attention(mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
    "blocks": ts.attention(block_sparse=(64, 64)),
}


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("chip,product", [("sm_90a", "wgmma.mma_async"), ("sm_80", "mma.sync")])
def test_backward_ptx_assembles(name, chip, product, tmp_path):
    if not os.path.exists(PTXAS):
        pytest.skip("ptxas not installed")
    module = grad_mlir(SPECS[name], "bfloat16", 64, 64)
    ptx, _ = _core.compile_gpu(module, "attention_grad", chip, **ts.Config().as_kwargs())
    # Δ, dK / dV per key tile, dQ per query tile; a mask_mod's classification and its two
    # lists (per key tile: query tiles; per query tile: key tiles) before them.
    assert ptx.count(b".entry") == (6 if name == "document" else 3)
    assert product.encode() in ptx
    path = tmp_path / "k.ptx"
    path.write_bytes(ptx)
    subprocess.run([PTXAS, f"-arch={chip}", str(path), "-o", str(tmp_path / "k.cubin")],
                   check=True, capture_output=True)


SLOPES = ts.Buffer("slopes", "float32")
SPILL_SPECS = {
    **SPECS,
    "full": ts.attention(),
    "window": ts.attention(causal=True, window=256),
    "alibi": ts.attention(causal=True, score_mod=lambda s, b, h, i, j: s + SLOPES[h] * (j - i)),
}
# Spill bytes (stores) ptxas 13 gives the D = 128 backward with its default config
# (16-query dK / dV tiles on both chips; on sm_80 K / V, and dQ's Q / dO, read per
# product, dQ over 32-key tiles, one stage), summed over the module's kernels (Δ,
# dK / dV, dQ and any others): none, as issue 24 asks.
SPILL_CEILING = {"sm_90a": {}, "sm_80": {}}


def ptxas_spills(ptx, chip, tmp_path):
    """{entry: spill store bytes} from ptxas -v."""
    return {e: r.spill_stores for e, r in ptxas_report(ptx, chip, tmp_path).items()}


@pytest.mark.parametrize("name", list(SPILL_SPECS))
@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
def test_default_d128_backward_spills(name, chip, tmp_path):
    if not os.path.exists(PTXAS):
        pytest.skip("ptxas not installed")
    config = default_grad_config(128, 128, chip)
    module = grad_mlir(SPILL_SPECS[name], "bfloat16", 128, 128)
    ptx, _ = _core.compile_gpu(module, "attention_grad", chip, **config.as_kwargs())
    spills = ptxas_spills(ptx, chip, tmp_path)
    assert len(spills) >= 3, spills
    assert sum(spills.values()) <= SPILL_CEILING[chip].get(name, 0), spills


TABLE_SPECS = {  # a relative-position bias table, per-head ALiBi slopes
    "bias": ts.attention(causal=True, score_mod=lambda s, b, h, i, j: s + BIAS[h, i - j + 63]),
    "slopes": SPILL_SPECS["alibi"],
}


@pytest.mark.parametrize("table", list(TABLE_SPECS))
@pytest.mark.parametrize("chip,head_dim", [("sm_90a", 64), ("sm_90a", 128), ("sm_80", 64),
                                           ("sm_80", 128)])
def test_table_gradient_ptx_adds_with_red(table, chip, head_dim, tmp_path):
    """A table gradient: a first grid stores zero tiles over it, then the dQ grid adds
    each pair's share with red.global.add.f32 (one per element a thread holds); the
    other grids are those of the backward without it. ptxas assembles every kernel."""
    if not os.path.exists(PTXAS):
        pytest.skip("ptxas not installed")
    config = default_grad_config(head_dim, head_dim, chip)
    module = grad_mlir(TABLE_SPECS[table], "bfloat16", head_dim, head_dim, (table,))
    ptx, _ = _core.compile_gpu(module, "attention_grad", chip, **config.as_kwargs())
    text = ptx.decode()
    kernels = dict(re.findall(r"\.entry (attention_grad_kernel\d)\((.*?)(?=\.entry|\Z)", text,
                              re.S))
    assert sorted(kernels) == [f"attention_grad_kernel{i}" for i in range(4)]
    zero, delta, dkdv, dq = (kernels[f"attention_grad_kernel{i}"] for i in range(4))
    def reductions(kernel):  # not cp.async.cg.shared.global
        return len(re.findall(r"\bred\.global\.add\.f32", kernel))

    assert "st.global.b32" in zero and reductions(zero + delta + dkdv) == 0
    adds = reductions(dq)
    # A pair tile over 128 threads: 64 x 64, or 64 x 32 where sm_80's dQ grid walks
    # 32-key tiles (past D = 64).
    keys = 32 if chip == "sm_80" and head_dim > 64 else 64
    assert adds >= 64 * keys // 128, adds
    assert "atom." not in text
    spills = ptxas_spills(ptx, chip, tmp_path)
    print(f"{table} {chip} D={head_dim}: {adds} red.global.add.f32, spills {spills}")


def test_grad_query_tile_sets_the_dk_dv_grids_tiles():
    """Config.grad_query_tile reaches the tile program (pipeline option grad-query-tile,
    absent from a default config's text): 16 queries, wgmma m64n16k16 for Sᵀ and dPᵀ on
    sm_90a; on sm_80, under 16 x num_warps queries, [key, query] tiles whose K / V are
    read per product (ldmatrix), from there on queries as product rows."""
    assert "grad-query-tile" not in _core.gpu_pipeline("sm_90a", **ts.Config().as_kwargs())
    assert "grad-query-tile=16" in _core.pipeline("tile", grad_query_tile=16)
    module = grad_mlir(SPECS["causal"], "bfloat16", 128, 128)
    ptx, _ = _core.compile_gpu(module, "attention_grad", "sm_90a",
                               **ts.Config(min_blocks=1, grad_query_tile=16).as_kwargs())
    assert b"wgmma.mma_async.sync.aligned.m64n16k16" in ptx
    ptx, _ = _core.compile_gpu(module, "attention_grad", "sm_80", grad_query_tile=16)
    assert b"ldmatrix" in ptx
    with pytest.raises(_core.CompileError, match=r"grad_query_tile \(96\) must be a multiple "
                                                 r"of 16 x num_warps = 64"):
        _core.compile_gpu(module, "attention_grad", "sm_80", grad_query_tile=96)
    blocks = grad_mlir(SPECS["blocks"], "bfloat16", 64, 64)
    with pytest.raises(_core.CompileError, match=r"block_q \(64\) must be 1 or a multiple "
                                                 r"of grad_query_tile \(48\)"):
        _core.compile_gpu(blocks, "attention_grad", "sm_90a", grad_query_tile=48)


# grad_dq_atomic: the dK / dV grid adds each pair's dS K into an f32 workspace with
# red.global.add.f32, Δ's grid zeroes it, a last grid converts it; no dQ grid.
ATOMIC_SPECS = {**SPILL_SPECS, "gqa_blocks": ts.attention(block_sparse=(128, 64))}
# Spill bytes ptxas 13 gives the knob's modules (default_grad_config(..., dq_atomic=True)),
# summed over their kernels, per (chip, head dim); absent: 0. sm_90a at D = 128: the
# dK / dV grid with dQᵀ's two 64-row products, their K pieces and dSᵀ's staging reaches
# 255 registers (188 without the knob); not yet spill-free.
ATOMIC_SPILL_CEILING = {("sm_90a", 128): {"causal": 28, "softcap": 76, "document": 24,
                                          "blocks": 32, "full": 44, "window": 48,
                                          "alibi": 32, "gqa_blocks": 32}}


def entries(ptx):
    """{kernel name: its PTX text}."""
    return dict(re.findall(r"\.entry (\w+)\((.*?)(?=\.entry|\Z)", ptx.decode(), re.S))


@pytest.mark.parametrize("name", list(ATOMIC_SPECS))
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
def test_dq_atomic_ptx(name, head_dim, chip, tmp_path):
    if not os.path.exists(PTXAS):
        pytest.skip("ptxas not installed")
    config = default_grad_config(head_dim, head_dim, chip, dq_atomic=True)
    module = grad_mlir(ATOMIC_SPECS[name], "bfloat16", head_dim, head_dim)
    ptx, record = _core.compile_gpu(module, "attention_grad", chip, **config.as_kwargs())
    off, _ = _core.compile_gpu(module, "attention_grad", chip,
                               **default_grad_config(head_dim, head_dim, chip).as_kwargs())
    kernels, plain = entries(ptx), entries(off)
    # The dQ grid's place is taken by the conversion; a mask_mod's per-query-tile key
    # lists (the dQ grid's) are not written.
    assert len(kernels) == len(plain) - (1 if name == "document" else 0)
    names = sorted(kernels)
    dkdv, convert = kernels[names[-2]], kernels[names[-1]]
    adds = len(re.findall(r"\bred\.global\.add\.f32", dkdv))
    # A pair's dQ share over 128 threads: every element of [queries, D] once.
    assert adds >= head_dim * 16 // 128, adds
    assert not re.search(r"\bred\.global", convert) and "atom." not in ptx.decode()
    if chip == "sm_90a" and head_dim == 64:
        assert "wgmma.mma_async" in dkdv
    spills = ptxas_spills(ptx, chip, tmp_path)
    regs = {e: r.registers for e, r in ptxas_report(ptx, chip, tmp_path).items()}
    print(f"dq_atomic {name} {chip} D={head_dim}: {adds} red.global.add.f32, spills {spills}, "
          f"registers {regs}")
    assert sum(spills.values()) <= ATOMIC_SPILL_CEILING.get((chip, head_dim), {}).get(name, 0), \
        spills



def test_dq_atomic_reaches_the_tile_program():
    """grad_dq_atomic reaches the GPU pipelines (grad-dq-atomic, only where set); the CPU
    keeps its dQ grid whatever the config says (same semantics)."""
    assert "grad-dq-atomic" not in _core.gpu_pipeline("sm_90a", **ts.Config().as_kwargs())
    assert "grad-dq-atomic=true" in _core.gpu_pipeline(
        "sm_80", **ts.Config(grad_dq_atomic=True).as_kwargs())
