"""What every GPU benchmark shares: timing, the commit a run measures, result rows."""
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_ms(fn, iters):
    """Median of `iters` CUDA-event timings of `fn` after one warm-up call."""
    import torch
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
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
