"""The IR a kernel shows at each stage, and replaying a stage with tessera-opt."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tessera

CONFIG = tessera.Config(block_m=32, block_n=16, num_warps=8, num_stages=3)


@pytest.fixture(scope="module")
def causal():
    return tessera.compile(tessera.attention(causal=True), head_dim=64, config=CONFIG)


@pytest.fixture(scope="module")
def masked():
    spec = tessera.attention(mask_mod=lambda b, h, q_idx, kv_idx: (kv_idx < 4) | (q_idx >= kv_idx),
                             score_mod=lambda s, b, h, q_idx, kv_idx: 2.0 * tessera.tanh(s / 2.0))
    return tessera.compile(spec, head_dim=128, value_dim=64)


def _tessera_opt():
    env = os.environ.get("TESSERA_OPT")
    if env:
        return env if os.path.exists(env) else shutil.which(env)
    path = Path(__file__).resolve().parents[2] / "build" / "bin" / "tessera-opt"
    return str(path) if path.exists() else None


def test_attn_stage(causal, masked):
    attn = causal.ir("attn")
    assert "attn.attention" in attn and "causal" in attn
    attn = masked.ir("attn")
    assert "attn.attention" in attn
    assert "score_mod" in attn and "mask_mod" in attn and "math.tanh" in attn
    assert "tensor<?x?x?x128xf32>" in attn and "tensor<?x?x?x64xf32>" in attn


def test_tile_stage(causal):
    tile = causal.ir("tile")
    for op in ("tile.grid", "tile.dot", "scf.for"):
        assert op in tile, op
    config = re.search(r"config = <([^>]*)>", tile)
    assert config, "tile.grid carries a #tile.config"
    for key, value in CONFIG.as_kwargs().items():
        if key not in ("min_blocks", "grad_query_tile"):  # pipeline options, not #tile.config
            assert f"{key} = {value}" in config.group(1), (key, config.group(1))
    assert "attn.attention" not in tile


def test_default_config_in_tile_stage():
    kern = tessera.compile(tessera.attention(), head_dim=64)
    config = re.search(r"config = <([^>]*)>", kern.ir("tile")).group(1)
    assert "block_m = 64" in config and "block_n = 64" in config


def test_causal_has_masked_and_unmasked_loops(causal, masked):
    # Causal: key tiles split into ranges that need the mask and ranges that do not.
    assert causal.ir("tile").count("scf.for") >= 2
    # A mask_mod may hide anything, so it has at least the one (masked) loop.
    assert masked.ir("tile").count("scf.for") >= 1


def test_llvm_stage(causal, masked):
    for kern in (causal, masked):
        llvm = kern.ir("llvm")
        assert "llvm.func" in llvm
        assert "tile." not in llvm and "attn." not in llvm


def test_unknown_stage(causal):
    with pytest.raises(Exception, match=r"unknown stage .ptx. \(expected attn, tile, tgpu, tgpu-sm_80 or llvm\)"):
        causal.ir("ptx")


def test_replay_command_text(causal):
    cmd = causal.replay_command("tile", path="k.mlir")
    assert cmd.startswith("tessera-opt k.mlir --pass-pipeline=")
    assert causal.pipeline("tile") in cmd
    assert "block-m=32" in causal.pipeline("tile") and "block-n=16" in causal.pipeline("tile")


GPU_CONFIG = tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=2)


@pytest.fixture(scope="module")
def gpu_causal():
    """A config the GPU target takes (the tgpu stage checks it as the GPU pipeline does)."""
    return tessera.compile(tessera.attention(causal=True), head_dim=64, config=GPU_CONFIG)


def test_tgpu_stage_layouts_and_schedule(gpu_causal):
    """The tile program after layout, staging and stage assignment: every tile has a
    #tgpu layout, every staged load is a copy into a buffer of its shared layout, every
    loop a schedule. An f32 program takes mma.sync on either chip."""
    for stage in ("tgpu", "tgpu-sm_80"):
        tgpu = gpu_causal.ir(stage)
        assert "tgpu.accumulator = #tgpu.mma<mma_sync" in tgpu
        assert "#tgpu.dot_operand<a" in tgpu and "#tgpu.shared_operand<" in tgpu
        loops = tgpu.count("scf.for")
        assert loops >= 2
        assert len(re.findall(r'\} \{.*tgpu\.pipeline = "registers", tgpu\.prefetch_distance = 1', tgpu)) == loops
        # Staged loads are copies into padded rows, prefetched an iteration ahead.
        assert re.search(r"tgpu\.async_copy .*\{tgpu\.prefetch_distance = 1 : i64\} : .* -> "
                         r"!tgpu\.smem<.*#tgpu\.shared<padded_rows, pad = 16>, mutable>", tgpu)
        assert "tgpu.operands_staged" in tgpu and "tgpu.loads_copied" in tgpu
        # The tile stage has neither.
        assert "tgpu." not in gpu_causal.ir("tile")


def test_tgpu_stage_checks_the_gpu_config(causal):
    with pytest.raises(Exception, match=r"the GPU target needs block_m = 16 x num_warps"):
        causal.ir("tgpu")


@pytest.mark.parametrize("which", ["gpu_causal", "masked"])
def test_replay_tgpu_with_tessera_opt(request, tmp_path, which):
    test_replay_with_tessera_opt(request, tmp_path, which, "tgpu")


def _bf16_tgpu(spec, head_dim, config, stage="tgpu"):
    """The tgpu stage of a bf16 (GPU) module, through the same core entry as ir()."""
    from tessera.core import require_core
    module = spec.to_mlir("bfloat16", head_dim, head_dim)
    return require_core().lower(module, stage, **config.as_kwargs())


def test_tgpu_stage_causal_d128_wgmma_schedule():
    """D = 128 causal softmax on sm_90a: the masked / unmasked / masked loops double-buffer
    only K, one iteration ahead, the second and third taking over the copies in flight;
    the plan leaves shared memory for 3 blocks an SM; the copies are ops. On sm_80 every
    staged tile is prefetched into registers."""
    config = GPU_CONFIG
    tgpu = _bf16_tgpu(tessera.attention(causal=True), 128, config)
    assert "#tgpu.mma<wgmma, warps = [4, 1], instr = [64, 64, 16]>" in tgpu
    assert "tgpu.blocks_per_sm = 3 : i64" in tgpu and "tgpu.num_stages = 2 : i64" in tgpu
    schedules = re.findall(r"\} \{(.*tgpu\.pipeline[^}]*)\}", tgpu)
    assert len(schedules) == 3, schedules
    assert all('tgpu.pipeline = "cp_async_first_product"' in s for s in schedules)
    assert ["tgpu.continues_prefetch" in s for s in schedules] == [False, True, True]
    # Q and each loop's K and V are copied (cp.async) into swizzled buffers for wgmma's
    # descriptors, a buffer each for Q, K and V (tessera-tgpu-copy-staged-loads); K (the
    # first product's operand) is prefetched in each loop, into a double buffer; V is not.
    allocs = re.findall(r"tgpu\.local_alloc .*-> !tgpu\.smem<(.*)>$", tgpu, re.M)
    assert len(allocs) == 3 and all("swizzle_128b" in a for a in allocs), allocs
    assert ["stages = 2" in a for a in allocs] == [False, True, False]
    # The loops rotated (tessera-tgpu-pipeline-loops): K's first tile copied before the
    # first loop into stage 0, each loop copying the next iteration's K into the other
    # stage and reading its own.
    assert tgpu.count("tgpu.async_copy") == 8
    assert len(re.findall(r"tgpu\.async_copy .* into %\d+\[%\w+\] "
                          r"\{tgpu\.prefetch_distance = 1 : i64\}", tgpu)) == 3
    assert "tgpu.staged" not in tgpu and "tgpu.loads_copied" in tgpu
    sm80 = _bf16_tgpu(tessera.attention(causal=True), 128, config, "tgpu-sm_80")
    assert "tgpu.blocks_per_sm" not in sm80 and "continues_prefetch" not in sm80
    assert sm80.count('tgpu.pipeline = "registers"') == 3
    # Shared memory (tessera-tgpu-allocate-shared): on sm_90a Q at 0, K's two stages
    # above it, V above those (64 KiB), O stored through Q's bytes after the loops; on
    # sm_80 K and V in padded rows (17408 bytes each).
    offsets = r"tgpu\.shared_offset = array<i64: (\d+)>"
    assert "tgpu.shared_bytes = 65536 : i64" in tgpu
    assert re.findall(offsets, tgpu) == ["0", "16384", "49152", "0"]
    assert re.search(r"tile\.store .*\{tgpu\.shared_offset = array<i64: 0>\}", tgpu)
    assert "tgpu.shared_bytes = 34816 : i64" in sm80
    assert re.findall(offsets, sm80) == ["0", "17408"]


@pytest.mark.parametrize("which", ["causal", "masked"])
@pytest.mark.parametrize("stage", ["tile", "llvm"])
def test_replay_with_tessera_opt(request, tmp_path, which, stage):
    opt = _tessera_opt()
    if opt is None:
        pytest.skip("tessera-opt not found (set TESSERA_OPT or build build/bin/tessera-opt)")
    kern = request.getfixturevalue(which)
    spec_file = tmp_path / "spec.mlir"
    spec_file.write_text(kern.module)
    result = subprocess.run([opt, str(spec_file), f"--pass-pipeline={kern.pipeline(stage)}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # Identical text; tessera-opt ends its output with one more newline than ir() does.
    assert result.stdout.rstrip("\n") == kern.ir(stage).rstrip("\n")


@pytest.fixture(scope="module")
def cuda_causal():
    """D = 128 causal for sm_90a (compiled to PTX here; no GPU needed)."""
    return tessera.compile(tessera.attention(causal=True), head_dim=128, dtype="bfloat16",
                           target="cuda", config=GPU_CONFIG)


def test_ir_after_any_pass(cuda_causal, causal):
    """The IR between any two passes of a kernel's own pipeline: the staged loads stay
    tile.loads the schedule marks until tessera-tgpu-copy-staged-loads makes them copies,
    tessera-tgpu-pipeline-loops rotates their loops, tessera-tgpu-allocate-shared
    places the buffers, tessera-tgpu-insert-waits writes the waits and
    tessera-tgpu-insert-barriers finds every access ordered; outlining makes the
    kernel."""
    scheduled = cuda_causal.ir(after="tessera-tgpu-assign-stages")
    assert "tgpu.pipeline" in scheduled and "tgpu.async_copy" not in scheduled
    assert len(re.findall(r"tile\.load .*tgpu\.staged = #tgpu\.shared<swizzle_128b>",
                          scheduled)) == 7
    copied = cuda_causal.ir(after="tessera-tgpu-copy-staged-loads")
    assert copied.count("tgpu.async_copy") == 7 and "tgpu.staged" not in copied
    assert "tgpu.shared_offset" not in copied
    # Software pipelining: K of the first iteration copied before the first loop (its
    # prologue, into stage 0), each loop copying the next iteration's K into the stage
    # the last one read; the two later loops start from the stage the one before hands on.
    rotated = cuda_causal.ir(after="tessera-tgpu-pipeline-loops")
    assert rotated.count("tgpu.async_copy") == 8 and rotated.count("tgpu.pipelined") == 3
    assert len(re.findall(r"iter_args\(.*%arg\d+ = %\d+#3\)", rotated)) == 2
    assert len(re.findall(r"tgpu\.local_load %\d+\[%arg\d+\]", rotated)) == 3
    placed = cuda_causal.ir(after="tessera-tgpu-allocate-shared")
    assert "tgpu.local_alloc {tgpu.shared_offset = array<i64: 16384>}" in placed
    # The waits for the copies as ops: in each loop Q·Kᵀ waits for K (V and the next K
    # may still land), P·V for V (the next K may); after the loops, for the K copied
    # past the last iteration.
    waited = cuda_causal.ir(after="tessera-tgpu-insert-waits")
    assert "tgpu.waits_placed" in waited and "tgpu.async_wait" not in placed.split("scf.for")[0]
    assert [int(n) for n in re.findall(r"tgpu\.async_wait\s+pending = (\d+)", waited)] == \
        [2, 1] * 3 + [0]
    assert waited.count("tgpu.fence_async_shared") == 7
    # Barrier insertion: the loops' own barriers and the waits' order every access.
    barriered = cuda_causal.ir(after="tessera-tgpu-insert-barriers")
    assert barriered.count("tgpu.barrier") == waited.count("tgpu.barrier") > 7
    outlined = cuda_causal.ir(after="tessera-tgpu-outline-kernels")
    assert "gpu.func @attention_kernel0" in outlined and "tessera.launches" in outlined
    # The distribution hands the ops on tiles in registers (element-wise, broadcasts,
    # row reductions, P read as a left operand) to tessera-convert-tgpu-to-nvvm, on
    # tiles cast from their slots; after it the kernel holds scalars only.
    distributed = cuda_causal.ir(after="tessera-tile-to-gpu")
    kernel = distributed[distributed.index("gpu.module"):]
    for op in ("math.exp2", "tile.reduce", "tile.broadcast", "tgpu.convert_layout"):
        assert re.search(op + r" .*tensor<.*#tgpu\.", kernel), op
    assert "builtin.unrealized_conversion_cast" in kernel and "ex2.approx" not in kernel
    converted = cuda_causal.ir(after="tessera-convert-tgpu-to-nvvm")
    kernel = converted[converted.index("gpu.module"):]
    assert "tensor<" not in kernel and "unrealized_conversion_cast" not in kernel
    assert "tile." not in kernel and "math.exp2" not in kernel
    assert kernel.count("llvm.nvvm.ex2.approx.ftz.f32") > 0
    # A CPU kernel's pipeline too.
    assert "linalg." in causal.ir(after="tessera-tile-to-linalg")


def test_ir_after_an_unknown_pass(cuda_causal):
    with pytest.raises(Exception, match=r"no pass 'tessera-no-such-pass' runs in the "
                                        r"pipeline; its passes, in order: .*"
                                        r"tessera-tgpu-copy-staged-loads, "
                                        r"tessera-tgpu-pipeline-loops, "
                                        r"tessera-tgpu-allocate-shared, "
                                        r"tessera-tgpu-insert-waits, "
                                        r"tessera-tgpu-insert-barriers, "):
        cuda_causal.ir(after="tessera-no-such-pass")


def test_replay_after_a_pass(tmp_path, cuda_causal):
    cmd = cuda_causal.replay_command(after="tessera-tgpu-copy-staged-loads", path="k.mlir")
    assert cmd.startswith("tessera-opt k.mlir --pass-pipeline=")
    assert cuda_causal.pipeline("ptx") in cmd
    assert cmd.endswith("--mlir-print-ir-after=tessera-tgpu-copy-staged-loads -o /dev/null")
    opt = _tessera_opt()
    if opt is None:
        pytest.skip("tessera-opt not found (set TESSERA_OPT or build build/bin/tessera-opt)")
    spec_file = tmp_path / "spec.mlir"
    spec_file.write_text(cuda_causal.module)
    result = subprocess.run([opt, str(spec_file), f"--pass-pipeline={cuda_causal.pipeline('ptx')}",
                             "--mlir-print-ir-after=tessera-tgpu-copy-staged-loads",
                             "-o", os.devnull], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("tgpu.async_copy") == 7


def test_kernel_module_is_the_attn_input(causal):
    """kernel.module is what replay reads; it parses back to the attn stage."""
    assert "attn.attention" in causal.module
    assert causal.module.lstrip().startswith("func.func @attention")


def test_ir_does_not_change_results(causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 40, 64), dtype=np.float32) for _ in range(3))
    before = causal(q, k, v)
    causal.ir("tile"), causal.ir("llvm")
    np.testing.assert_array_equal(before, causal(q, k, v))


def test_tgpu_stage_takes_the_gpu_knobs():
    """The tgpu stages run the GPU pipeline's own passes for the knobs a config sets:
    persistent's work loop, warp_specialize's split; off, neither."""
    spec = tessera.attention(causal=True)
    assert "tgpu.work_items" not in _bf16_tgpu(spec, 64, GPU_CONFIG)
    persistent = _bf16_tgpu(spec, 64, tessera.Config(persistent=True))
    assert re.search(r'\} \{.*tgpu\.pipeline = "none".*tgpu\.work_items', persistent)
    assert "tgpu.warp_specialize" not in _bf16_tgpu(spec, 64, tessera.Config(tma=True))
    split = _bf16_tgpu(spec, 64, tessera.Config(tma=True, warp_specialize=True))
    assert "tgpu.warp_specialize" in split
    with pytest.raises(Exception, match="warp_specialize"):
        _bf16_tgpu(spec, 64, tessera.Config(tma=True, warp_specialize=True), "tgpu-sm_80")


def test_gpu_kernels_show_their_stages():
    # A kernel compiled for the GPU shows the same stages from Python (its chip's tgpu
    # level, its PTX) and the command that reproduces each; no GPU needed.
    spec = tessera.attention(causal=True)
    for chip, layout in (("sm_90a", "wgmma"), ("sm_80", "mma_sync")):
        kern = tessera.compile(spec, head_dim=64, dtype="bfloat16", target="cuda", chip=chip)
        assert f"#tgpu.mma<{layout}" in kern.ir("tgpu")
        assert kern.ir("tile") == tessera.compile(spec, head_dim=64, dtype="bfloat16",
                                                  target="cuda", chip=chip).ir("tile")
        assert ".entry" in kern.ir("ptx") and f".target {chip}" in kern.ir("ptx")
        assert "tessera-gpu{" in kern.replay_command("ptx")
        assert f"chip={chip}" in kern.replay_command("ptx")


def test_tgpu_stage_computed_operand_buffer():
    """Linear attention's state, a right operand computed in registers, is staged as ops:
    one buffer made from the value (wgmma's swizzled rows, placed by the shared-memory
    plan) and a read of it (transposed: the product takes Sᵀ) — on sm_80 in padded rows."""
    spec = tessera.linear_attention(decay=True)
    tgpu = _bf16_tgpu(spec, 64, GPU_CONFIG)
    allocs = re.findall(r"tgpu\.local_alloc %\S+ \{(.*)\} : \(tensor<64x64xbf16, #tgpu\.mma<wgmma"
                        r"[^)]*\) -> !tgpu\.smem<64x64xbf16, #tgpu\.shared<swizzle_128b>>", tgpu)
    assert len(allocs) == 1 and "tgpu.shared_offset" in allocs[0], allocs
    assert len(re.findall(r"tgpu\.local_load %\S+ \{trans\}", tgpu)) == 1
    sm80 = _bf16_tgpu(spec, 64, GPU_CONFIG, "tgpu-sm_80")
    assert "#tgpu.shared<padded_rows, pad = 16>>" in sm80 and "tgpu.local_alloc" in sm80
