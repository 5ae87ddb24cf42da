"""tessera.autotune on the CPU: tuning, the persistent store (reuse across processes,
concurrent writers, corrupt and stale files), rejected candidates, replay with tessera-opt
and reproducers. The CUDA target is checked up to its compile step (no GPU needed)."""
import dataclasses
import importlib
import json
import multiprocessing
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tessera
from tessera import _core
from tessera.tuning_store import TuningStore

at = importlib.import_module("tessera.autotune")  # `tessera.autotune` is the function
ROOT = Path(__file__).resolve().parents[2]
SPEC = tessera.attention(causal=True)
SPACE = {"block_m": [16, 32], "block_n": [16]}
SMALL = dict(head_dim=16, key=(1, 1, 64), space=SPACE, warmup=0, repeats=2, progress=False)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tessera_opt():
    env = os.environ.get("TESSERA_OPT")
    if env:
        return env if os.path.exists(env) else shutil.which(env)
    path = ROOT / "build" / "bin" / "tessera-opt"
    return str(path) if path.exists() else None


def _entries(cache):
    return json.loads((cache / "tuning.json").read_text())["entries"]


def test_tunes_persists_and_reuses_in_a_new_process(cache, capfd):
    r = tessera.autotune(SPEC, workers=2, **{**SMALL, "progress": True})
    assert not r.from_store and r.store_status == "miss" and r.compiled == 2
    assert r.config in {tessera.Config(16, 16, 4, 2), tessera.Config(32, 16, 4, 2)}
    assert [t.status for t in r.table] == ["ok", "ok"] and r.ms == min(t.ms for t in r.table)
    err = capfd.readouterr().err
    assert "\r" in err and "s left" in err and "autotune: best" in err

    q, k, v = (np.random.default_rng(1).standard_normal((1, 2, 50, 16), dtype=np.float32)
               for _ in range(3))
    want, _ = tessera.reference.attention(q, k, v, causal=True)
    np.testing.assert_allclose(r.kernel(q, k, v), want, atol=2e-5)

    (entry,) = _entries(cache).values()
    assert entry["config"] == r.config.as_kwargs() and entry["compiler"] == at.compiler_version()
    assert entry["key"]["shape"] == "D=16,Dv=16,N=64,BH=1"

    code = ("import json, tessera\n"
            "r = tessera.autotune(tessera.attention(causal=True), head_dim=16, key=(1, 1, 50),\n"
            f"                     space={SPACE!r}, progress=False)\n"
            "import importlib; at = importlib.import_module('tessera.autotune')\n"
            "print(json.dumps({'from_store': r.from_store, 'compiled': r.compiled,\n"
            "                  'status': r.store_status, 'config': r.config.as_kwargs(),\n"
            "                  'version': at.compiler_version()}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    if got["version"] != at.compiler_version():  # compiler sources edited meanwhile
        assert got["status"] == "stale" and got["compiled"] == 2
        return
    # N = 50 falls in the same size bucket (64): reused, nothing compiled.
    assert got == {"from_store": True, "compiled": 0, "status": "hit",
                   "config": r.config.as_kwargs(), "version": at.compiler_version()}


def _writer(path, proc, n, start):
    store = TuningStore(path)
    start.wait()
    for j in range(n):
        entry = {"config": {"block_m": 16, "block_n": 16, "num_warps": 4, "num_stages": 2, "split": 1},
                 "ms": float(j), "compiler": "test"}
        store.put(f"p{proc}-{j}", entry)
        store.put("shared", dict(entry, ms=float(proc)))


def test_concurrent_writers_lose_nothing(cache):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    path = cache / "tuning.json"
    procs = [ctx.Process(target=_writer, args=(str(path), p, 15, start)) for p in range(5)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = _entries(cache)
    assert set(entries) == {f"p{p}-{j}" for p in range(5) for j in range(15)} | {"shared"}
    assert entries["shared"]["ms"] in {float(p) for p in range(5)}
    assert not [f for f in os.listdir(cache) if f.endswith(".tmp")]


@pytest.mark.parametrize("garbage", [
    b"{\"entries\": {\x00 not json",
    b'{"format": "something-else", "version": 1, "entries": {}}',
    b'[1, 2, 3]',
])
def test_corrupt_file_is_retuned_and_replaced(cache, garbage):
    cache.mkdir(parents=True)
    (cache / "tuning.json").write_bytes(garbage)
    r = tessera.autotune(SPEC, workers=0, **SMALL)
    assert r.store_status == "corrupt" and not r.from_store and r.compiled == 2
    (entry,) = _entries(cache).values()
    assert entry["config"] == r.config.as_kwargs()
    assert (cache / "tuning.json.corrupt").read_bytes() == garbage


def test_corrupt_entry_and_stale_compiler_and_rejected_config_are_retuned(cache):
    r = tessera.autotune(SPEC, workers=0, **SMALL)
    path = cache / "tuning.json"
    key = next(iter(_entries(cache)))

    def edit(**change):
        data = json.loads(path.read_text())
        data["entries"][key].update(change)
        path.write_text(json.dumps(data))

    edit(config={"block_m": "sixteen"})
    again = tessera.autotune(SPEC, workers=0, **SMALL)
    assert again.store_status == "corrupt" and again.compiled == 2

    edit(compiler="tessera-0.0.1+old")
    again = tessera.autotune(SPEC, workers=0, **SMALL)
    assert again.store_status == "stale" and again.compiled == 2 and not again.from_store
    assert _entries(cache)[key]["compiler"] == at.compiler_version()

    # A config the compiler rejects now (well-formed, current compiler version).
    edit(config={"block_m": 3, "block_n": 16, "num_warps": 4, "num_stages": 2, "split": 1})
    again = tessera.autotune(SPEC, workers=0, **SMALL)
    assert again.store_status == "rejected" and again.compiled == 2
    assert "power of two" in again.store_detail
    assert _entries(cache)[key]["config"] == again.config.as_kwargs()

    assert tessera.autotune(SPEC, workers=0, **SMALL).from_store
    assert r.config.as_kwargs() != {}  # (the first result is untouched)


def test_invalid_candidate_is_rejected_with_its_reason():
    r = tessera.autotune(SPEC, workers=1, **{**SMALL, "space": {"block_m": [3, 16], "block_n": [16]}})
    bad, good = r.table
    assert bad.status == "rejected" and bad.ms is None
    assert re.search(r"block_m must be a power of two in \[1, 256\], got 3", bad.reason)
    assert good.status == "ok" and r.config == good.config


def test_cuda_candidates_are_validated_by_the_gpu_compiler():
    cfgs = [tessera.Config(64, 64, 4, 2), tessera.Config(32, 64, 4, 2)]
    ok, bad = at.validate_configs(SPEC, cfgs, head_dim=64, dtype="bfloat16", target="cuda",
                                  chip="sm_90a", workers=0)
    assert ok.status == "ok", ok.reason
    assert bad.status == "rejected"
    assert "the GPU target needs block_m = 16 x num_warps x (1, 2 or 4), got block_m = 32" in bad.reason


def test_cuda_autotune_times_on_the_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="needs torch with a CUDA device"):
            tessera.autotune(SPEC, head_dim=64, dtype="bfloat16", target="cuda", progress=False)
        pytest.skip("no CUDA device")
    r = tessera.autotune(SPEC, head_dim=64, dtype="bfloat16", target="cuda", key=(1, 4, 1024),
                         space={"block_m": [64, 128], "num_warps": [4, 8]}, progress=False)
    assert r.config.block_m == 16 * r.config.num_warps and r.ms > 0
    assert sum(t.status == "rejected" for t in r.table) == 2


def test_budget_returns_the_best_so_far():
    r = tessera.autotune(SPEC, workers=0, budget_s=0, **{**SMALL, "space": {"block_m": [16, 32, 64]}})
    assert [t.status for t in r.table].count("ok") == 1 and r.ms is not None
    assert all(t.status == "skipped" for t in r.table if t.status != "ok")


def test_bad_space():
    with pytest.raises(ValueError, match="unknown knobs"):
        tessera.autotune(SPEC, head_dim=16, space={"block_k": [16]}, progress=False)


def _run_replay(opt, directory, cmd):
    argv = shlex.split(cmd)
    assert argv[0] == "tessera-opt" and argv[1] == "spec.mlir"
    out = subprocess.run([opt, *argv[1:]], cwd=directory, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def test_replay_tile_stage(tmp_path):
    opt = _tessera_opt()
    if opt is None:
        pytest.skip("tessera-opt not found (set TESSERA_OPT or build build/bin/tessera-opt)")
    r = tessera.autotune(SPEC, workers=0, **SMALL)
    script = r.write_replay(tmp_path / "replay", "tile")
    assert (tmp_path / "replay" / "spec.mlir").read_text() == r.module
    want = _core.lower(r.module, "tile", **r.config.as_kwargs()).rstrip()
    got = _run_replay(opt, script.parent, r.replay_command("tile")).decode()
    assert got.rstrip() == want
    via_script = subprocess.run([str(script)], capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, TESSERA_OPT=opt))
    assert via_script.returncode == 0, via_script.stderr
    assert via_script.stdout.rstrip() == want


def _mlir_string_bytes(text: str) -> bytes:
    """MLIR prints string attributes with \\XX hex escapes (and \\\\ for a backslash)."""
    return re.sub(rb"\\(\\|[0-9A-Fa-f]{2})",
                  lambda m: b"\\" if m.group(1) == b"\\" else bytes([int(m.group(1), 16)]),
                  text.encode())


def test_replay_gpu_pipeline_gives_identical_ptx(tmp_path):
    opt = _tessera_opt()
    if opt is None:
        pytest.skip("tessera-opt not found (set TESSERA_OPT or build build/bin/tessera-opt)")
    config = tessera.Config(64, 64, 4, 2)
    r = at.AutotuneResult(module=SPEC.to_mlir("bfloat16", 64, 64), config=config,
                          target="cuda", chip="sm_90a")
    assert "tessera-gpu{" in r.replay_command() and "chip=sm_90a" in r.replay_command()
    script = r.write_replay(tmp_path / "replay")
    got = _run_replay(opt, script.parent, r.replay_command("ptx")).decode()
    assembly = re.search(r'assembly = "((?:[^"\\]|\\.)*)"', got)
    assert assembly, got[:2000]
    ptx, _ = _core.compile_gpu(r.module, SPEC.name, "sm_90a", **config.as_kwargs())
    assert _mlir_string_bytes(assembly.group(1)) == ptx


def _check_reproducer(path: Path, needle: str):
    text = path.read_text()
    assert text.startswith("// Tessera reproducer")
    assert needle in text
    pipeline = re.search(r"^// pipeline: (.*)$", text, re.M).group(1)
    assert pipeline.startswith("builtin.module(tessera-cpu{")
    opt = _tessera_opt()
    if opt:  # the reproducer is itself the input of its replay
        out = subprocess.run([opt, str(path), f"--pass-pipeline={pipeline}"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr


def test_reproducer_when_the_chosen_config_fails_to_compile(cache, monkeypatch):
    def fail(*args, **kwargs):
        raise _core.CompileError("forced failure for the test")
    monkeypatch.setattr(_core, "CpuKernel", fail)
    with pytest.raises(tessera.CompileError, match=r"reproducer: ") as info:
        tessera.autotune(SPEC, workers=0, **SMALL)
    paths = re.findall(r"reproducer: (\S+\.mlir)\)", str(info.value))
    assert len(paths) == 2 and all(Path(p).parent == cache / "reproducers" for p in paths)
    for p in paths:
        _check_reproducer(Path(p), "forced failure for the test")


def test_reproducer_for_an_unexpected_compiler_error(cache, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom in the compiler")
    monkeypatch.setattr(_core, "lower", boom)
    (trial,) = at.validate_configs(SPEC, [tessera.Config(16, 16, 4, 2)], head_dim=16, workers=0)
    assert trial.status == "failed"
    path = Path(re.search(r"reproducer: (\S+\.mlir)", trial.reason).group(1))
    _check_reproducer(path, "boom in the compiler")


LINEAR = tessera.linear_attention(decay=True)


def test_linear_attention_is_tuned_and_reused(cache):
    kw = dict(head_dim=16, key=(1, 2, 64), space={"block_m": [16, 32]}, warmup=0, repeats=2,
              progress=False, workers=0)
    r = tessera.autotune(LINEAR, **kw)
    assert r.config.block_m in (16, 32) and r.ms > 0 and not r.from_store
    assert all(t.status == "ok" for t in r.table)
    again = tessera.autotune(LINEAR, **kw)
    assert again.from_store and again.config == r.config


def test_cuda_linear_candidates_are_validated_by_the_compiler():
    cfgs = [tessera.Config(64, 64, 4, 1, split=16), tessera.Config(32, 64, 4, 1, split=4)]
    ok, bad = at.validate_configs(LINEAR, cfgs, head_dim=128, dtype="bfloat16",
                                  target="cuda", chip="sm_90a", workers=0)
    assert ok.status == "ok", ok.reason
    assert bad.status == "rejected" and "block_m = 16 x num_warps" in bad.reason


def test_candidates_compiling_to_one_kernel_are_timed_once():
    # Per-token block lists keep cp.async under the tma knob (TMA does not copy in their
    # while loop): that candidate compiles to the kernel without it and is not timed.
    spec = tessera.attention(causal=True, block_sparse=(1, 64))
    base = tessera.Config(64, 64, 4, 1)
    cfgs = [base, dataclasses.replace(base, tma=True), dataclasses.replace(base, num_stages=2)]
    table = at.validate_configs(spec, cfgs, head_dim=64, dtype="bfloat16", target="cuda",
                                chip="sm_90a", workers=0)
    assert all(t.status == "ok" and len(t.kernel) == 64 for t in table), table
    pairs = at.mark_same_kernels(table)
    assert [t.status for t in table] == ["ok", "same", "ok"]
    assert pairs == [(table[1], table[0])]
    assert str(table[1]).endswith("tma  same: the same kernel as block_m=64 block_n=64 "
                                  "num_warps=4 num_stages=1")
    # The CPU compiles no kernel image here: nothing to compare.
    (cpu,) = at.validate_configs(spec, [base], head_dim=64, workers=0)
    assert cpu.status == "ok" and cpu.kernel == "" and at.mark_same_kernels([cpu, cpu]) == []
