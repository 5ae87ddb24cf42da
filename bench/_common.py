"""What every GPU benchmark shares: timing, the commit a run measures, result rows."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_ms(fn, iters):
    """Median of `iters` CUDA-event timings of `fn`, called back to back after one
    warm-up call (as triton.testing.do_bench does): the host enqueues the next call while
    the GPU runs this one, so each time is the GPU's, whatever Python costs per call."""
    import torch
    fn()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(iters)]
    for start, stop in events:
        start.record()
        fn()
        stop.record()
    torch.cuda.synchronize()
    times = sorted(start.elapsed_time(stop) for start, stop in events)
    return times[len(times) // 2]


def commit_id():
    """The GPU machine gets a copy of the work tree: the caller names the commit it is."""
    commit = os.environ.get("TESSERA_COMMIT")
    if commit:
        return commit
    try:
        return subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                       text=True).strip()
    except Exception:
        return "unknown"


def write_row(path, row):
    """Prints a measurement and appends it to `path` at once: a cut-off run keeps its rows."""
    row = dict(row, time=int(time.time()))
    print(json.dumps(row), flush=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def bench_setup(script: str, profile: bool = False, options=None):
    """The command line every GPU benchmark takes (--quick, --out FILE, default
    bench/results/<name>.jsonl; --profile where `profile`; `options(parser)` adds a
    benchmark's own), and what each of its rows records: (args, {device, commit, command})."""
    import argparse
    import torch
    name = Path(script).stem.removesuffix("_gpu")
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / f"bench/results/{name}.jsonl"))
    if profile:
        ap.add_argument("--profile", action="store_true", help="time each launch and stop")
    ap.add_argument("--knobs", default="",
                    help="boolean Config knobs every Tessera kernel of the run takes "
                         "(comma-separated, e.g. tma,warp_specialize); its rows' impl names them")
    if options:
        options(ap)
    args = ap.parse_args()
    command = " ".join([f"python3 bench/{Path(script).name}", *sys.argv[1:]])
    return args, {"device": torch.cuda.get_device_name(), "commit": commit_id(),
                  "command": command}


def knobs_of(args) -> dict:
    """--knobs as Config fields ({} without it); unknown names are an error."""
    from tessera.config import BOOLEAN_KNOBS
    names = [k for k in args.knobs.split(",") if k]
    known = set(BOOLEAN_KNOBS)
    unknown = [k for k in names if k not in known]
    if unknown:
        raise SystemExit(f"--knobs: unknown {unknown}; boolean knobs are {sorted(known)}")
    return {k: True for k in names}


def tessera_impl(knobs: dict) -> str:
    """A Tessera row's impl name: "tessera", or "tessera+tma+warp_specialize"."""
    return "+".join(["tessera", *knobs])


def compiled_flex():
    """FlexAttention compiled, as its users run it. Every (shape, mask) recompiles it;
    past dynamo's default limit of 8 graphs it silently falls back to eager, which
    materialises the N x N scores: the limit is raised."""
    import torch
    from torch.nn.attention.flex_attention import flex_attention
    torch._dynamo.config.cache_size_limit = 64
    return torch.compile(flex_attention)


def tail_error(out, q, k, v, keep, rows=128):
    """Relative error against float64 on the last `rows` queries of heads 0 and 1 of batch
    0 (cheap even at N = 65536); `keep(i, j)` on index tensors ([rows, 1] query and
    [1, N] key positions) gives the kept pairs, broadcastable to [2, rows, N]."""
    import torch
    rows = min(rows, q.shape[2])
    n = k.shape[2]
    i = torch.arange(q.shape[2] - rows, q.shape[2], device=q.device)[:, None]
    j = torch.arange(n, device=q.device)[None, :]
    s = (q[0, :2, -rows:].double() @ k[0, :2].double().transpose(-1, -2)) * q.shape[-1] ** -0.5
    ref = torch.softmax(s.masked_fill(~keep(i, j), float("-inf")), -1) @ v[0, :2].double()
    got = out[0, :2, -rows:].double()
    return float((got - ref).norm() / ref.norm())


def measure_tflops(fn, error, flops, iters, workload, impl, run_info):
    """The row for one implementation at one workload: its output's error (`error(out)`),
    median time and TFLOP/s, with `run_info` (device, commit, command); None, with the
    reason printed, when it cannot run (a peer without the shape)."""
    try:
        err = error(fn())
        ms = time_ms(fn, iters)
    except Exception as e:
        print(f"{impl} {workload}: {type(e).__name__}: {e}"[:300])
        return None
    return {"workload": workload, "impl": impl, "ms": round(ms, 4),
            "rate": round(flops / ms / 1e9, 1), "rate_unit": "TFLOP/s",
            "rel_err": round(err, 6), **run_info}


def config_label(c):
    return (f"{c.block_m}x{c.block_n} w{c.num_warps} s{c.num_stages}" +
            (f" b{c.min_blocks}" if c.min_blocks else ""))


def measure_best(candidates, error, flops, iters, workload, run_info):
    """Tessera's row at one workload: the fastest of `candidates` ([(config, fn)]), each
    printed as it is measured; None when none runs."""
    best = None
    for config, fn in candidates:
        row = measure_tflops(fn, error, flops, iters, workload, "tessera", run_info)
        if not row:
            continue
        row["config"] = config_label(config)
        print(row, flush=True)
        if best is None or row["ms"] < best["ms"]:
            best = row
    return best
