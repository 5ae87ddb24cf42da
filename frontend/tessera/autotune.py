"""Autotuning: pick the fastest tuning config for a spec on this machine, and remember it.

    result = tessera.autotune(spec, head_dim=64)            # CPU; target="cuda" on a GPU
    out = result.kernel(q, k, v)
    print(result.config, result.ms, result.from_store)
    print(result.replay_command("tile"))

Candidates are the product of `space`; the compiler decides which are valid (each one is
lowered, its #tile.config re-verified, and compiled, in worker processes); the valid ones
are timed on the target and the fastest is stored (tuning_store.py) under the spec, shape
bucket, dtype, target and device, with the compiler version. See docs/AUTOTUNE.md.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import itertools
import multiprocessing
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .api import compile as _compile
from .autotune_grad import (DEFAULT_GRAD_SPACE, BackwardRun, check_backward_spec,
                            grad_key_hash, grad_module, invalid_for_backward)
from .config import Config
from .core import _core
from .errors import CompileError
from .autotune_timing import (_ForwardRun, _default_inputs, _max_diff, _time_cpu,
                              _time_cuda)
from .launch import COMPILER_VERSION, load_image
from .linear import LinearAttentionSpec
from .spec import AttentionSpec
from .trace import SpecError
from .tuning_store import BOOL_KNOBS, KNOBS, TuningKey, TuningStore, cache_dir

# Defaults per target. Knobs left out of a user's space take Config()'s value.
DEFAULT_SPACE = {
    "cpu": {"block_m": [32, 64, 128], "block_n": [32, 64, 128], "num_warps": [4],
            "num_stages": [2]},
    # The GPU target needs block_m = 16 x num_warps x (1, 2 or 4): (64, 8 warps) is
    # rejected by the compiler (cheaply) and reported as such.
    "cuda": {"block_m": [64, 128], "block_n": [32, 64], "num_warps": [4, 8],
             "num_stages": [1, 2]},
}
# Linear attention walks blocks of block_m tokens (block_n is unused); on the GPU `split`
# programs share a head and batch: pieces of the value columns times sequence chunks.
DEFAULT_LINEAR_SPACE = {
    "cpu": {"block_m": [16, 32, 64, 128]},
    "cuda": {"block_m": [64], "num_warps": [4], "num_stages": [1, 2], "split": [1, 2, 4, 8]},
}
# sm_90a softmax forwards also try TMA copies, alone and feeding a producer warpgroup
# (issue 25; off by default until a GPU run shows them correct and faster).
SM90A_SOFTMAX_KNOBS = {"tma": [False, True], "warp_specialize": [False, True],
                       "persistent": [False, True], "pingpong": [False, True],
                       "intra_warpgroup_overlap": [False, True]}
DEFAULT_SHAPE = {"cpu": (1, 2, 256), "cuda": (2, 16, 4096)}  # (batch, heads, seq_len)
_STAGES = {"cpu": ("attn", "tile", "llvm"), "cuda": ("attn", "tile", "ptx")}
_SPEC_HASH_DIMS = ("float32", 64, 64)  # one reference module per spec
_TOLERANCE = {"float32": 1e-3, "float16": 2e-2, "bfloat16": 4e-2}


# ---------------------------------------------------------------------------------------
# Results

@dataclasses.dataclass
class Trial:
    """One candidate: status "ok" (ms is its median), "rejected" (the compiler refused
    it: reason is its message), "failed" (an unexpected error: reason names the
    reproducer), "same" (it compiled to an earlier candidate's kernel: not timed) or
    "skipped" (time budget)."""

    config: Config
    status: str
    ms: Optional[float] = None
    reason: str = ""
    detail: str = ""  # the full compiler message
    kernel: str = ""  # GPU: a digest of the compiled kernels and their launch record

    def __str__(self) -> str:
        if self.status == "ok":
            what = "valid (not timed)" if self.ms is None else f"{self.ms:.4f} ms"
        else:
            what = f"{self.status}: {self.reason}"
        return f"{_cfg_text(self.config)}  {what}"


@dataclasses.dataclass
class AutotuneResult:
    """The winner (config, ms, kernel), every candidate tried (table) and how to replay
    the compilation with tessera-opt."""

    module: str                       # the attn module (spec.mlir)
    config: Config
    target: str = "cpu"
    chip: str = "sm_90a"
    ms: Optional[float] = None
    kernel: Any = None
    table: List[Trial] = dataclasses.field(default_factory=list)
    from_store: bool = False
    store_status: str = ""            # the store's answer: hit, miss, stale, corrupt, rejected, off
    store_detail: str = ""            # why a stored entry was not used
    key: Optional[TuningKey] = None
    compiled: int = 0                 # candidates compiled by this call (0 when from_store)
    elapsed_s: float = 0.0

    def pipeline(self, stage: Optional[str] = None) -> str:
        return pipeline_for(self.config, stage or _STAGES[self.target][-1], self.target, self.chip)

    def replay_command(self, stage: Optional[str] = None, path: str = "spec.mlir") -> str:
        """The tessera-opt command that compiles spec.mlir (the attn module) to `stage`:
        "attn", "tile", "llvm" (CPU) or "ptx" (CUDA: the gpu.binary holding the PTX);
        the default is the last one."""
        return f"tessera-opt {path} --pass-pipeline='{self.pipeline(stage)}'"

    def write_replay(self, directory: Union[str, os.PathLike], stage: Optional[str] = None) -> Path:
        """Writes spec.mlir and replay.sh (runs tessera-opt, or $TESSERA_OPT) into
        `directory`; returns the path of replay.sh."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "spec.mlir").write_text(self.module)
        cmd = self.replay_command(stage)
        script = d / "replay.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"# Tessera autotune replay: {_cfg_text(self.config)}, target {self.target}"
            + (f" ({self.chip})" if self.target == "cuda" else "") + "\n"
            + (f"# key: {self.key.text()}\n" if self.key else "")
            + f"# {cmd}\n"
            "set -e\ncd \"$(dirname \"$0\")\"\n"
            f"exec \"${{TESSERA_OPT:-tessera-opt}}\" spec.mlir "
            f"--pass-pipeline='{self.pipeline(stage)}' \"$@\"\n")
        script.chmod(0o755)
        return script

    def report(self) -> str:
        lines = [f"best {_cfg_text(self.config)}"
                 + (f": {self.ms:.4f} ms" if self.ms is not None else "")
                 + (" (from the store)" if self.from_store else "")]
        lines += [f"  {t}" for t in self.table]
        return "\n".join(lines)


def pipeline_for(config: Config, stage: str, target: str = "cpu", chip: str = "sm_90a") -> str:
    """The tessera-opt pipeline reaching `stage` under `config`."""
    if target not in _STAGES:
        raise SpecError(f"target must be 'cpu' or 'cuda', got {target!r}")
    if stage not in _STAGES[target]:
        raise ValueError(f"stage for target {target!r} must be one of {_STAGES[target]}, got {stage!r}")
    if _core is None:
        raise CompileError("replay needs the Tessera compiler module (_core)")
    if stage == "ptx":
        return _core.gpu_pipeline(chip, **config.as_kwargs())
    return _core.pipeline(stage, **config.as_kwargs())


def _cfg_text(c: Config) -> str:
    return (f"block_m={c.block_m} block_n={c.block_n} num_warps={c.num_warps} "
            f"num_stages={c.num_stages}" + (f" split={c.split}" if c.split != 1 else "")
            + (f" min_blocks={c.min_blocks}" if c.min_blocks else "")
            + (f" grad_query_tile={c.grad_query_tile}" if c.grad_query_tile else "")
            + (" tma" if c.tma else "") + (" warp_specialize" if c.warp_specialize else "")
            + (" persistent" if c.persistent else "") + (" pingpong" if c.pingpong else "")
            + (" intra_warpgroup_overlap" if c.intra_warpgroup_overlap else ""))


# ---------------------------------------------------------------------------------------
# Keys

def compiler_version() -> str:
    """The compiler's fingerprint (launch.COMPILER_VERSION, a hash of its sources), which
    keys the kernel cache too."""
    return COMPILER_VERSION


def spec_hash(spec: AttentionSpec) -> str:
    return hashlib.sha256(spec.to_mlir(*_SPEC_HASH_DIMS).encode()).hexdigest()


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def device_name(target: str) -> str:
    if target == "cuda":
        import torch
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _shape(key, target: str) -> Tuple[int, int, int]:
    if key is None:
        return DEFAULT_SHAPE[target]
    if isinstance(key, dict):
        key = (key.get("batch", 1), key.get("heads", 1), key["seq_len"])
    elif isinstance(key, int):
        key = (1, 1, key)
    shape = tuple(key)
    if len(shape) != 3 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in shape):
        raise ValueError(f"key must be (batch, heads, seq_len) of positive ints, got {key!r}")
    return shape


def tuning_key(spec: AttentionSpec, *, head_dim: int, value_dim: int, dtype: str,
               shape: Tuple[int, int, int], target: str, chip: str,
               device: Optional[str] = None, backward: bool = False) -> TuningKey:
    B, H, N = shape
    return TuningKey(
        spec=grad_key_hash(spec, _SPEC_HASH_DIMS) if backward else spec_hash(spec),
        shape=f"D={head_dim},Dv={value_dim},N={_next_pow2(N)},BH={_next_pow2(B * H)}",
        dtype=dtype, target=target if target == "cpu" else f"cuda:{chip}",
        device=device or device_name(target))


# ---------------------------------------------------------------------------------------
# Compiling candidates (in worker processes)

def _reason(message: str) -> str:
    """The diagnostics of a CompileError message, without IR dumps."""
    errors = re.findall(r"error: (.*)", message)
    return "; ".join(errors) if errors else message.strip().splitlines()[0] if message.strip() else "?"


def _validate_worker(module: str, entry: str, target: str, chip: str,
                     cfg: Dict[str, int]) -> Tuple[bool, str, str]:
    """Compiles one candidate: (True, "", kernel digest; "" on the CPU) or (False, the
    compiler's message, ""). Any other exception is an unexpected compiler failure and
    propagates."""
    def gpu_image() -> str:  # compiled once, into the kernel cache the timing run loads from
        record, ptx = load_image(module, entry, Config(**cfg), chip)
        return hashlib.sha256(record.text.encode() + b"\n" + ptx).hexdigest()

    core = _core
    try:
        if core is None:  # a GPU machine with only the runtime: the kernel cache decides
            return True, "", gpu_image()
        tile = core.lower(module, "tile", **cfg)
        # The pass builds #tile.config without running its verifier; parsing the tile
        # module back runs it (power-of-two blocks, num_warps, num_stages ranges).
        core.verify(tile)
        if target == "cpu":
            core.lower(module, "llvm", **cfg)
            return True, "", ""
        return True, "", gpu_image()
    except CompileError as e:
        return False, str(e), ""


def write_reproducer(module: str, pipeline: str, error: str, config: Optional[Config] = None) -> Path:
    """cache_dir()/reproducers/<hash>.mlir: the attn module, with the pipeline, the config
    and the error in a comment header. `tessera-opt <file> --pass-pipeline='<pipeline>'`
    replays it."""
    digest = hashlib.sha256((module + "\n" + pipeline).encode()).hexdigest()[:16]
    d = cache_dir() / "reproducers"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{digest}.mlir"
    header = ["// Tessera reproducer", f"// compiler: {compiler_version()}"]
    if config is not None:
        header.append(f"// config: {_cfg_text(config)}")
    header.append(f"// pipeline: {pipeline}")
    header.append(f"// replay: tessera-opt {path.name} --pass-pipeline='{pipeline}'")
    header.append("// error:")
    header += [f"//   {line}" for line in error.splitlines()[:200]]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(header) + "\n" + module)
    os.replace(tmp, path)
    return path


def _pipeline_or_unknown(config: Config, target: str, chip: str) -> str:
    try:
        return pipeline_for(config, "llvm" if target == "cpu" else "ptx", target, chip)
    except Exception as e:  # noqa: BLE001 - a reproducer must still be written
        return f"<unknown: {e}>"


def _failure(module: str, config: Config, target: str, chip: str, error: BaseException,
             what: str) -> Trial:
    text = f"{type(error).__name__}: {error}"
    path = write_reproducer(module, _pipeline_or_unknown(config, target, chip), text, config)
    return Trial(config, "failed", reason=f"{what}: {_reason(str(error))} (reproducer: {path})",
                 detail=text)


def validate_configs(spec: AttentionSpec, configs: Sequence[Config], *, head_dim: int,
                     value_dim: Optional[int] = None, dtype: str = "float32",
                     target: str = "cpu", chip: str = "sm_90a", workers: Optional[int] = None,
                     deadline: Optional[float] = None, on_done: Optional[Callable] = None,
                     backward: bool = False) -> List[Trial]:
    """Compiles each config (in `workers` processes; 0 = in this process) and returns a
    Trial per config: "ok" (valid, not timed), "rejected" with the compiler's reason,
    "failed" (unexpected error or crash; a reproducer is written) or "skipped" (past
    `deadline`, a time.monotonic() value). backward: the softmax gradient's kernels,
    whose invalid candidates are rejected before compiling (autotune_grad.py)."""
    value_dim = head_dim if value_dim is None else value_dim
    module, entry = spec.to_mlir(dtype, head_dim, value_dim), spec.name
    configs = list(configs)
    results: Dict[int, Trial] = {}
    if backward:
        module, entry = grad_module(spec, dtype, head_dim, value_dim)
        for i, c in enumerate(configs):
            reason = invalid_for_backward(c, target, head_dim, value_dim, chip)
            if reason:
                results[i] = Trial(c, "rejected", reason=reason, detail=reason)

    def finish(i: int, ok: bool, message: str, kernel: str = "") -> None:
        c = configs[i]
        results[i] = (Trial(c, "ok", kernel=kernel) if ok else
                      Trial(c, "rejected", reason=_reason(message), detail=message))
        if on_done:
            on_done(results[i])

    def crashed(i: int, error: BaseException) -> None:
        results[i] = _failure(module, configs[i], target, chip, error, "compiler crashed")
        if on_done:
            on_done(results[i])

    def late() -> bool:
        return (deadline is not None and time.monotonic() > deadline
                and any(t.status == "ok" for t in results.values()))

    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if workers <= 0:
        for i, c in enumerate(configs):
            if i in results:
                continue
            if late():
                break
            try:
                finish(i, *_validate_worker(module, entry, target, chip, c.as_kwargs()))
            except Exception as e:  # noqa: BLE001
                crashed(i, e)
    else:
        todo = [i for i in range(len(configs)) if i not in results]
        while todo:
            broken = _run_pool(module, entry, target, chip, configs, todo,
                               min(workers, len(todo)), finish, crashed, late)
            if not broken:
                break
            # A worker died (a crash in native code): retry the unfinished ones one at a
            # time, so that the culprit is named.
            todo = [i for i in todo if i not in results]
            if len(todo) == 1 or workers == 1:
                crashed(todo[0], RuntimeError("the compiler process died (a crash in native code, or it could not start)"))
                todo = todo[1:]
            workers = 1
    for i, c in enumerate(configs):
        if i not in results:
            results[i] = Trial(c, "skipped", reason="time budget spent")
    return [results[i] for i in range(len(configs))]


def mark_same_kernels(table: Sequence[Trial]) -> List[Tuple[Trial, Trial]]:
    """Valid candidates that compiled to an earlier one's kernel (a knob the kernel does
    not take, such as warp_specialize where the grid stays TMA alone) become "same": timing
    them again would only cost the budget. Returns (same, timed in its place) pairs."""
    first: Dict[str, Trial] = {}
    pairs = []
    for t in table:
        if t.status != "ok" or not t.kernel:
            continue
        if t.kernel in first:
            t.status, t.reason = "same", f"the same kernel as {_cfg_text(first[t.kernel].config)}"
            pairs.append((t, first[t.kernel]))
        else:
            first[t.kernel] = t
    return pairs


@contextlib.contextmanager
def _main_hidden():
    """Spawned workers re-run the parent's __main__ script (so that pickled functions of
    it resolve) unless it names no file; a script calling autotune() at top level, without
    an `if __name__ == "__main__":` guard, would then recurse. The workers only need
    tessera.autotune, so they are started with __main__'s file and spec hidden."""
    main = sys.modules.get("__main__")
    saved = {a: main.__dict__[a] for a in ("__file__", "__spec__") if main and a in main.__dict__}
    try:
        for a in saved:
            if a == "__file__":
                del main.__file__
            else:
                main.__spec__ = None
        yield
    finally:
        for a, v in saved.items():
            setattr(main, a, v)


def _run_pool(module, entry, target, chip, configs, todo, workers, finish, crashed, late) -> bool:
    """Runs `todo` in a pool; True when the pool broke (a worker process died)."""
    ctx = multiprocessing.get_context("spawn")  # MLIR holds threads: never fork it
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        with _main_hidden():  # the workers start here, in submit()
            futures = {pool.submit(_validate_worker, module, entry, target, chip,
                                   configs[i].as_kwargs()): i for i in todo}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            if fut.cancelled():
                continue
            try:
                finish(i, *fut.result())
            except cf.process.BrokenProcessPool:
                return True
            except Exception as e:  # noqa: BLE001 - an unexpected error in the compiler
                crashed(i, e)
            if late():
                for f in futures:
                    f.cancel()
        return False
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------
# Progress

class _Progress:
    """One self-rewriting line on stderr: phase, bar, best so far, time left."""

    def __init__(self, enabled: bool, budget_s: float, start: float) -> None:
        self.enabled, self.budget_s, self.start = enabled, budget_s, start
        self.width, self.phase, self.phase_start = 0, None, start

    def show(self, phase: str, done: int, total: int, best: Optional[Trial]) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.phase_start = phase, now
        left = max(0.0, self.budget_s - (now - self.start))
        if done:  # this phase's rate, capped by the budget
            left = min(left, (now - self.phase_start) / done * (total - done))
        filled = int(20 * done / total) if total else 20
        text = (f"autotune {phase:<9} [{'#' * filled}{'.' * (20 - filled)}] {done}/{total}"
                + (f"  best {best.ms:.3f} ms ({best.config.block_m}x{best.config.block_n}"
                   f" w{best.config.num_warps} s{best.config.num_stages})" if best else "")
                + f"  ~{left:.0f} s left")
        pad = max(0, self.width - len(text))
        self.width = len(text)
        sys.stderr.write("\r" + text + " " * pad)
        sys.stderr.flush()

    def line(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(("\r" + " " * self.width + "\r" if self.width else "") + text + "\n")
            sys.stderr.flush()
            self.width = 0


# ---------------------------------------------------------------------------------------
# The tuner

def _candidates(space, target: str, linear: bool = False) -> List[Config]:
    if space is None:
        space = (DEFAULT_LINEAR_SPACE if linear else DEFAULT_SPACE)[target]
    unknown = set(space) - set(KNOBS)
    if unknown:
        raise ValueError(f"unknown knobs {sorted(unknown)} in space; knobs are {list(KNOBS)}")
    base = dataclasses.asdict(Config())
    values = []
    for knob in KNOBS:
        vals = space.get(knob, [base[knob]])
        if isinstance(vals, int):
            vals = [vals]
        vals = list(vals)
        if knob in BOOL_KNOBS:
            if not vals or any(not isinstance(v, bool) for v in vals):
                raise ValueError(f"space[{knob!r}] must be a non-empty list of True / False, "
                                 f"got {vals!r}")
        elif not vals or any(isinstance(v, bool) or not isinstance(v, int) for v in vals):
            raise ValueError(f"space[{knob!r}] must be a non-empty list of ints, got {vals!r}")
        values.append(vals)
    seen, out = set(), []
    tma_offered = True in space.get("tma", [])
    split_offered = True in space.get("warp_specialize", [])
    for combo in itertools.product(*values):
        config = Config(**dict(zip(KNOBS, combo)))
        # warp_specialize needs tma: where the space offers tma, the combination without
        # it would only be refused.
        if tma_offered and config.warp_specialize and not config.tma:
            continue
        # pingpong takes turns between warp_specialize's two consumer warpgroups: where
        # the space offers warp_specialize, a combination without them would be refused.
        if split_offered and config.pingpong and not (config.warp_specialize and
                                                      config.num_warps == 8):
            continue
        # So does intra_warpgroup_overlap (it rotates the consumers' loops).
        if split_offered and config.intra_warpgroup_overlap and not config.warp_specialize:
            continue
        if combo not in seen:
            seen.add(combo)
            out.append(config)
    return out


def _open_store(store) -> Optional[TuningStore]:
    if store is False:
        return None
    if store is None or store is True:
        return TuningStore()
    if isinstance(store, TuningStore):
        return store
    return TuningStore(store)


def autotune(spec: AttentionSpec, *, head_dim: int, value_dim: Optional[int] = None,
             dtype: str = "float32", target: str = "cpu", chip: str = "sm_90a",
             space: Optional[Dict[str, Sequence[int]]] = None,
             key: Union[Tuple[int, int, int], Dict[str, int], int, None] = None,
             inputs: Union[Callable, Tuple, None] = None, budget_s: float = 60.0,
             warmup: int = 1, repeats: int = 5, workers: Optional[int] = None,
             store: Union[TuningStore, str, os.PathLike, bool, None] = None,
             progress: bool = True, backward: bool = False) -> AutotuneResult:
    """Finds the fastest valid config in `space` for `spec` at the problem shape `key`
    ((batch, heads, seq_len)), or reuses the one stored for the same key.

    backward: tunes the softmax backward's own config instead (kernel.grad and the torch
    op's backward; autotune_grad.py): candidates valid for it (default space
    DEFAULT_GRAD_SPACE), the gradient kernels compiled and timed (kernel.grad on fixed
    o, lse and grad_out), the winner stored under the gradient module's key. The
    result's kernel is the forward's (default config) with the winner as grad_config.

    inputs: a callable shape -> (q, k, v) or (q, k, v, {table: array}), or such a tuple
    (its q fixes the shape); default random normal tensors of shape `key`.
    budget_s: no new candidate is started past it (the best so far is returned).
    workers: compile processes (default min(4, cpu count); 0 compiles in this process).
    store: a TuningStore, a path to a JSON file, None (the default store) or False (none).
    """
    start = time.monotonic()
    if not isinstance(spec, (AttentionSpec, LinearAttentionSpec)):
        raise TypeError(f"spec must come from tessera.attention(...) or "
                        f"tessera.linear_attention(...), got {type(spec).__name__}")
    if isinstance(spec, LinearAttentionSpec) and spec.decode:
        raise SpecError("a decode step is one token: there is nothing to tune")
    if target not in DEFAULT_SPACE:
        raise SpecError(f"target must be 'cpu' or 'cuda', got {target!r}")
    if target == "cpu" and dtype != "float32":
        raise SpecError(f"the CPU target computes in float32; dtype {dtype!r} is not supported")
    if target == "cuda" and dtype not in ("bfloat16", "float16"):
        raise SpecError(f"GPU kernels take bfloat16 or float16, got {dtype!r}")
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    if backward:
        check_backward_spec(spec)
        space = DEFAULT_GRAD_SPACE[target] if space is None else space
    elif space is None and target == "cuda" and chip == "sm_90a" and isinstance(spec, AttentionSpec):
        space = {**DEFAULT_SPACE["cuda"], **SM90A_SOFTMAX_KNOBS}
    value_dim = head_dim if value_dim is None else value_dim
    candidates = _candidates(space, target, isinstance(spec, LinearAttentionSpec))
    module = (grad_module(spec, dtype, head_dim, value_dim)[0] if backward
              else spec.to_mlir(dtype, head_dim, value_dim))
    given = None
    if inputs is not None and not callable(inputs):
        given = tuple(inputs)
        if key is None:
            key = tuple(int(x) for x in given[0].shape[:3])
    shape = _shape(key, target)
    if target == "cuda":
        try:
            import torch
            ok = torch.cuda.is_available()
        except ImportError:
            ok = False
        if not ok:
            raise RuntimeError("autotuning for target='cuda' times kernels on the GPU and needs "
                               "torch with a CUDA device; validate_configs() only compiles")
    tkey = tuning_key(spec, head_dim=head_dim, value_dim=value_dim, dtype=dtype, shape=shape,
                      target=target, chip=chip, backward=backward)
    db = _open_store(store)
    version = compiler_version()
    bar = _Progress(progress, budget_s, start)

    forward_kernel = []

    def build(config: Config):
        if not backward:
            return _compile(spec, head_dim=head_dim, value_dim=value_dim, dtype=dtype,
                            config=config, target=target, chip=chip)
        if not forward_kernel:  # one forward kernel; each candidate is its grad_config
            forward_kernel.append(_compile(spec, head_dim=head_dim, value_dim=value_dim,
                                           dtype=dtype, target=target, chip=chip))
        kernel = forward_kernel[0]
        kernel.grad_config = config
        return kernel

    result = AutotuneResult(module=module, config=Config(), target=target, chip=chip, key=tkey)
    store_status = "off"
    if db is not None:
        found = db.lookup(tkey, version)
        store_status = found.status
        if found.status == "hit":
            config = Config(**found.entry["config"])
            check = validate_configs(spec, [config], head_dim=head_dim, value_dim=value_dim,
                                     dtype=dtype, target=target, chip=chip, workers=0,
                                     backward=backward)[0]
            if check.status == "ok":
                try:
                    kernel = build(config)
                except (CompileError,) as e:
                    check = _failure(module, config, target, chip, e, "the stored config no longer compiles")
            if check.status == "ok":
                bar.line(f"autotune: stored config {_cfg_text(config)} for {tkey.shape} "
                         f"({db.path})")
                result.config, result.ms, result.kernel = config, found.entry.get("ms"), kernel
                result.from_store, result.store_status = True, "hit"
                result.elapsed_s = time.monotonic() - start
                return result
            store_status, result.store_detail = "rejected", f"{_cfg_text(config)}: {check.reason}"
            bar.line(f"autotune: the stored config is no longer valid ({result.store_detail}); "
                     f"re-tuning")
        elif found.status in ("stale", "corrupt"):
            result.store_detail = found.detail
            bar.line(f"autotune: store entry {found.status} ({found.detail}); re-tuning")

    # 1. compile every candidate (in parallel); the compiler rejects invalid ones.
    deadline = start + budget_s
    done = [0]

    def compiled(_trial):
        done[0] += 1
        bar.show("compiling", done[0], len(candidates), None)

    bar.show("compiling", 0, len(candidates), None)
    table = validate_configs(spec, candidates, head_dim=head_dim, value_dim=value_dim,
                             dtype=dtype, target=target, chip=chip, workers=workers,
                             deadline=deadline, on_done=compiled, backward=backward)
    result.compiled = sum(t.status != "skipped" for t in table)
    same = mark_same_kernels(table)

    # 2. time the valid ones, one at a time, on the target.
    valid = [t for t in table if t.status == "ok"]
    if valid:
        if given is not None:
            args = given
        elif inputs is not None:
            args = tuple(inputs(shape))
        else:
            args = _default_inputs(spec, shape, head_dim, value_dim, dtype, target)
        q, k, v = args[:3]
        buffers = dict(args[3]) if len(args) > 3 else {}
        timer = _time_cpu if target == "cpu" else _time_cuda
    best: Optional[Trial] = None
    best_kernel = reference = reference_cfg = runs = None
    tol = _TOLERANCE.get(dtype, 1e-3)
    for n, trial in enumerate(valid):
        if best is not None and time.monotonic() > deadline:
            trial.status, trial.reason = "skipped", "time budget spent"
            continue
        bar.show("timing", n, len(valid), best)
        try:
            kernel = build(trial.config)
            if runs is None:  # inputs and outputs, the same for every candidate
                runs = (BackwardRun if backward else _ForwardRun)(kernel, q, k, v, buffers,
                                                                  target)
            run = runs.runner(kernel)
            if backward:
                run()  # the gradient kernels compile on first use, untimed
        except (CompileError,) as e:
            table[table.index(trial)] = _failure(module, trial.config, target, chip, e,
                                                 "compiles in a worker but not here")
            continue
        ms = timer(run, warmup, repeats)
        out = runs.result()
        if reference is None:
            reference, reference_cfg = out, trial.config
            if backward:  # gradients: relative to their largest entry
                tol *= max(1.0, _max_diff(reference, 0 * reference))
        else:
            diff = _max_diff(out, reference)
            if not diff <= tol:
                trial.status = "rejected"
                trial.reason = (f"wrong result: differs from {_cfg_text(reference_cfg)} by "
                                f"{diff:.3g} (> {tol})")
                continue
        trial.ms = ms
        if best is None or ms < best.ms:
            best, best_kernel = trial, kernel
    bar.show("timing", len(valid), len(valid), best)
    for copy, timed in same:  # its kernel's time, for tables that look a config up
        copy.ms = timed.ms
    result.table, result.elapsed_s = table, time.monotonic() - start
    result.store_status = store_status

    if best is None:
        bar.line("")
        lines = "\n".join(f"  {t}" for t in table)
        raise CompileError(f"autotune: no candidate compiled and ran for {spec.name} "
                           f"({tkey.shape}, {dtype}, {target}):\n{lines}")
    bar.line(f"autotune: best {_cfg_text(best.config)}: {best.ms:.4f} ms "
             f"({sum(t.status == 'ok' for t in table)} timed, "
             f"{sum(t.status == 'same' for t in table)} the same kernel as another, "
             f"{sum(t.status in ('rejected', 'failed') for t in table)} rejected, "
             f"{result.elapsed_s:.1f} s)")
    if backward:
        best_kernel.grad_config = best.config
    result.config, result.ms, result.kernel = best.config, best.ms, best_kernel
    if db is not None:
        try:  # the tuned kernel is the caller's even where the store cannot keep it
            db.put(tkey, {"config": best.config.as_kwargs(), "ms": best.ms, "compiler": version,
                          "candidates": len(table),
                          "rejected": sum(t.status in ("rejected", "failed") for t in table),
                          "shape": list(shape)})
        except (OSError, ValueError) as e:
            warnings.warn(f"autotune: the tuning store {db.path} did not take the result "
                          f"({e}); continuing without storing it", RuntimeWarning, stacklevel=2)
    return result
