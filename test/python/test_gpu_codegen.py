"""GPU code generation without a GPU: every GPU test variant compiles to PTX for Hopper
(sm_90a) and Ampere (sm_80) that uses the tensor cores, and ptxas assembles it."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
import cases  # noqa: E402
from tessera import _core, _runtime  # noqa: E402

PTXAS = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"


def assemble(ptx: bytes, chip: str, tmp_path):
    """ptxas takes the PTX (the test is skipped where ptxas is not installed)."""
    if not os.path.exists(PTXAS):
        pytest.skip("ptxas not installed")
    path = tmp_path / "k.ptx"
    path.write_bytes(ptx)
    subprocess.run([PTXAS, f"-arch={chip}", str(path), "-o", str(tmp_path / "k.cubin")],
                   check=True, capture_output=True)


VARIANTS = {**{name: (spec, cases.config_for(64, name)) for name, (spec, _) in cases.SPECS.items()},
            **cases.BLOCK_SPARSE}


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
def test_ptx_assembles(name, chip, tmp_path):
    spec, config = VARIANTS[name]
    module = spec.to_mlir(cases.DTYPE, 64, 64)
    ptx, launches = _core.compile_gpu(module, spec.name, chip, **config.as_kwargs())
    text = ptx.decode()
    assert f".target {chip}" in text
    # Hopper takes warpgroup MMA where the config fits it: one warpgroup per 64 rows.
    wgmma = chip == "sm_90a" and config.block_m == 16 * config.num_warps \
        and config.num_warps % 4 == 0 and config.block_n % 64 == 0
    if wgmma:
        assert re.search(r"wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16", text)
        assert "cp.async.cg.shared.global" in text and "fence.proxy.async.shared::cta" in text
        assert json.loads(launches)["launches"][-1]["smem"] > 0  # the attention grid
        # O (64 x 64 bf16 a warpgroup) leaves through Q's buffer in 4 16-byte rows a
        # thread, not as 16 32-bit pairs.
        assert text.count("st.global.v4.b32") == 4
    else:
        assert re.search(r"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32", text)
        assert "wgmma" not in text
    assert '"kernel": "attention_kernel0"' in launches
    # A warp whose rows keep their maximum skips the accumulator's rescale.
    assert re.search(r"vote\.sync\.all\.pred\s+(%p\d+)[^\n]*\n\s*@\1 bra", text)
    assemble(ptx, chip, tmp_path)


def test_gpu_layout_constraint_is_reported():
    module = cases.SPECS["full"][0].to_mlir(cases.DTYPE, 64, 64)
    with pytest.raises(_core.CompileError, match=r"block_m = 16 x num_warps"):
        _core.compile_gpu(module, "attention", "sm_90a", block_m=32, num_warps=4)


def test_compile_rejections_are_cached(tmp_path, monkeypatch):
    import tessera
    """A machine without the compiler (the GPU machine) reports the compiler's reason."""
    from tessera import gpu
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    spec = tessera.linear_attention(decay=True)
    bad = tessera.Config(block_m=32, num_warps=4, split=4)
    module = spec.to_mlir("bfloat16", 128, 128)
    for _ in range(2):  # compiled, then found in the cache
        with pytest.raises(tessera.CompileError, match="block_m = 16 x num_warps"):
            gpu.load_image(module, spec.name, bad, "sm_90a")


def test_linear_attention_gpu_default_uses_warpgroup_products(tmp_path, monkeypatch):
    # The state is carried as Sᵀ over pieces of 64 value columns: every product has 64
    # rows, so all four are wgmma (the state written to a swizzled buffer for Q Sᵀᵀ, Vᵀ
    # read from its buffer for the update) with cp.async copies; mma.sync on sm_80.
    import tessera
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    spec = tessera.linear_attention(decay=True)
    k = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda")
    assert k.ptx.count(b"wgmma.mma_async") >= 4 and b"cp.async.cg.shared.global" in k.ptx
    assert b"mma.sync" not in k.ptx
    assemble(k.ptx, "sm_90a", tmp_path)
    ampere = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda", chip="sm_80")
    assert b"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" in ampere.ptx
    assemble(ampere.ptx, "sm_80", tmp_path)


def test_linear_split_follows_shape_without_a_config(tmp_path, monkeypatch):
    # No config: pieces of 64 value columns where B·H fills a wave of two programs per
    # SM, else pieces times as many sequence chunks as fit one wave, compiled once per
    # split; a given config is kept.
    import tessera
    from tessera.linear import shape_split
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    spec = tessera.linear_attention(decay=True)
    k = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda")
    assert k.config.split == 2 and k.for_shape(1024, 1024, "cpu") is k
    for bh, n in ((64, 16384), (16, 65536), (16, 262144)):
        split = shape_split(2, bh, n, 132)
        assert split > 2 and split % 2 == 0
        chunked = k.for_shape(bh, n, "cpu")
        assert chunked.config.split == split and k.for_shape(bh, n, "cpu") is chunked
        assert len(chunked._image.kernels) == 3  # own states, scan, sweep
    assert shape_split(2, 16, 1024, 132) == 8  # chunks of at least 4 blocks
    assert shape_split(2, 128, 65536, 132) == 2  # 256 programs: one wave already
    assert shape_split(2, 64, 16384, 132) == 4 and shape_split(2, 16, 65536, 132) == 16
    fixed = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda",
                            config=tessera.Config(split=2))
    assert fixed.for_shape(16, 65536, "cpu") is fixed


def test_linear_chunked_sweep_pipelines_and_stores_rows(tmp_path, monkeypatch):
    # Sequence chunks: the states grid (no programs for the last chunk) keeps three
    # blocks' copies in flight (two tiles a block: wait_group 4); the sweep's output
    # blocks leave through shared memory as 16-byte rows, not 32-bit pairs.
    import tessera
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    spec = tessera.linear_attention(decay=True)
    k = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda",
                        config=tessera.Config(split=4))
    text = k.ptx.decode()
    launches = json.loads(k._image.record.text)["launches"]
    states, sweep = (text.split(f".entry {launches[i]['kernel']}(")[1].split(".entry")[0]
                     for i in (0, 2))
    assert launches[0]["grid"][0] == {"constant": 2}  # 2 pieces x 1 chunk (the last has none)
    assert re.search(r"cp\.async\.wait_group\s+4;", states)
    assert sweep.count("st.global.v4.b32") == 4 and "ld.shared.v4.b32" in sweep
    assert "st.global.b32" not in sweep.split("st.global.v4.b32")[0]  # none in the loop
    assemble(k.ptx, "sm_90a", tmp_path)


@pytest.mark.parametrize("feature_map", ["identity", "elu_plus_one"])
def test_linear_decode_assembles(feature_map, tmp_path, monkeypatch):
    # One token in tiles of 16 rows per warp, the state's value columns over 4 programs.
    import tessera
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    k = tessera.compile(tessera.linear_decode(decay=True, feature_map=feature_map),
                        head_dim=128, dtype="bfloat16", target="cuda")
    launches = json.loads(k._image.record.text)["launches"]
    assert [l["grid"][2] for l in launches] == [{"constant": 4}]
    assert b"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" in k.ptx
    assemble(k.ptx, "sm_90a", tmp_path)


@pytest.mark.parametrize("feature_map,d", [("identity", 128), ("elu_plus_one", 64)])
def test_linear_gradient_assembles(feature_map, d, tmp_path, monkeypatch):
    # Three sweeps of the forward's kind (dQ first to last, dK and dV last to first), all
    # on warpgroup products on Hopper; dK and dV each as a sweep grid for groups of one
    # head, one for larger groups and a grid summing a group's heads (no blocks for a
    # group of one head).
    import tessera
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    spec = tessera.linear_attention(decay=True, feature_map=feature_map)
    image = tessera.compile(spec, head_dim=d, dtype="bfloat16", target="cuda").grad_image()
    assert len(image.kernels) == 7 and len(image.record.workspace_dtypes) == 2
    # The per-head f32 sums have no heads where every group is one head; of the two
    # sweep grids of dK (dV) a shape runs exactly one, and the sums only for larger groups.
    for heads, kv_heads in ((4, 2), (4, 4)):
        q, k = (2, heads, 100, d), (2, kv_heads, 100, d)
        workspaces, grids = image.plan(_with_others(image, q, k))
        assert workspaces == [(2, 0 if heads == kv_heads else heads, 100, d)] * 2
        alone = heads == kv_heads
        for one, shared, sums in ((1, 2, 3), (4, 5, 6)):
            assert [grids[one][1], grids[shared][1], grids[sums][0]] == \
                ([heads, 0, 0] if alone else [0, heads, kv_heads])
    assert b"wgmma.mma_async" in image.ptx and b"mma.sync" not in image.ptx
    assemble(image.ptx, "sm_90a", tmp_path)
    ampere = tessera.compile(spec, head_dim=d, dtype="bfloat16", target="cuda",
                             chip="sm_80").grad_image()
    assert b"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32" in ampere.ptx
    assemble(ampere.ptx, "sm_80", tmp_path)


def test_min_blocks_reaches_ptxas_and_is_checked(tmp_path):
    module = cases.SPECS["full"][0].to_mlir(cases.DTYPE, 128, 128)
    config = dict(block_m=64, block_n=64, num_warps=4, num_stages=1)
    ptx, _ = _core.compile_gpu(module, "attention", "sm_90a", **config)
    assert b".minnctapersm" not in ptx  # one stage: nothing planned, nothing asked
    ptx, _ = _core.compile_gpu(module, "attention", "sm_90a", min_blocks=4, **config)
    assert b".minnctapersm 4" in ptx
    # Two stages at D = 128: only K is double-buffered, for three blocks per SM.
    ptx, launches = _core.compile_gpu(module, "attention", "sm_90a",
                                      **dict(config, num_stages=2))
    assert b".minnctapersm 3" in ptx and '"smem": 66560' in launches
    with pytest.raises(_core.CompileError, match=r"min_blocks must be in \[0, 32\].*got 40"):
        _core.compile_gpu(module, "attention", "sm_90a", min_blocks=40, **config)
    # Six blocks leave 80 registers a thread, fewer than O (64) and S (32) take: ptxas
    # would fail at module load on the GPU; five (96) assemble.
    with pytest.raises(_core.CompileError, match=r"min_blocks = 6 leaves 80 registers.*96"):
        _core.compile_gpu(module, "attention", "sm_90a", min_blocks=6, **config)
    ptx, _ = _core.compile_gpu(module, "attention", "sm_90a", min_blocks=5, **config)
    assemble(ptx, "sm_90a", tmp_path)


def test_hyper_attention_program_assembles(tmp_path, monkeypatch):
    # LSH sort, gathers, the block-diagonal and sampled attentions, the merge and the
    # scatters: every op of HyperAttention lowers to sm_90a, and ptxas takes all of it.
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    kernel = cases.hyper_kernels(lengths=(1000,), dims=(128,))[1000, 128]
    ptx = kernel._image.ptx
    assert len(kernel._image.kernels) == 24  # 4 per sort, 2 classifying the diagonal
    assert re.search(rb"wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16", ptx)
    assemble(ptx, "sm_90a", tmp_path)


import flex_cases  # noqa: E402


@pytest.mark.parametrize("name", list(flex_cases.SPECS))
@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
def test_flex_parity_ptx_assembles(name, chip, tmp_path):
    """Float and 2-D tables, casts, bit operations, exp2, a bidirectional window (issue 31)."""
    spec = flex_cases.SPECS[name][0]
    ptx, _ = _core.compile_gpu(spec.to_mlir(cases.DTYPE, 64, 64), spec.name, chip,
                               **tessera_config().as_kwargs())
    text = ptx.decode()
    assert ("wgmma.mma_async" in text) == (chip == "sm_90a")
    assemble(ptx, chip, tmp_path)


def tessera_config():
    import tessera
    return tessera.Config()


def test_mask_mod_reading_the_head_compiles():
    """A mask_mod that reads h is classified per head: the classification grid runs over
    heads x key-tile chunks, a product launch formula [-4, n, f1..., f2...] (it was
    rejected: 'grid sizes must be ceil or floor of dim(argument) / constant')."""
    spec = tessera_attention(mask_mod=lambda b, h, i, j: j <= i + h)
    _, launches = _core.compile_gpu(spec.to_mlir(cases.DTYPE, 64, 64), spec.name, "sm_90a",
                                    **tessera_config().as_kwargs())
    assert "product" in json.loads(launches)["launches"][0]["grid"][1]
    record = _runtime.LaunchRecord.parse(launches)
    _, grids = record.plan(_with_others(record, (2, 12, 5000, 64), (2, 4, 9000, 64)))
    assert grids[0][1] == 12 * -(-(-(-9000 // 64)) // 32)


def _with_others(image, q, k):
    """Shapes for every argument of an image (or record) whose formulas read only q and k:
    those two, then ones of each other argument's rank."""
    ranks = getattr(image, "record", image).argument_ranks
    return tuple([q, k] + [(1,) * r for r in ranks[2:]])


def tessera_attention(**kwargs):
    import tessera
    return tessera.attention(**kwargs)
