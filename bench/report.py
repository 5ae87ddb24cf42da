"""Regenerates bench/RESULTS.md and bench/softmax.png from bench/results/*.jsonl.

    python3 bench/report.py
"""
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PEERS = ["sdpa-flash2", "sdpa-cudnn", "flex"]


def load():
    """The rows of the newest run (one .jsonl per run): every figure in the table comes
    from one process on one device, peers side by side."""
    runs = []
    for path in (ROOT / "results").glob("*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            runs.append((max(r.get("time", 0) for r in rows), rows))
    return max(runs, key=lambda run: run[0])[1] if runs else []


def table(rows):
    by = defaultdict(dict)
    meta = {}
    for r in rows:
        by[r["workload"]][r["impl"]] = r
        meta = r
    lines = [
        "# Benchmark results",
        "",
        f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
        f"`{meta.get('command')}` (then `python3 bench/report.py`).",
        "Rates in TFLOP/s (forward, 4·B·H·pairs·D; causal and window count kept pairs); relative",
        "errors against float64 on the last 128 queries of two heads. A dash: the peer does",
        "not offer the variant, or failed on it (see the run's log). Earlier runs stay in",
        "bench/results/.",
        "",
        "| workload | tessera | " + " | ".join(PEERS) + " | tessera / flash2 | tessera / cudnn | tessera / flex | rel err tessera | rel err best peer |",
        "|---|---|" + "---|" * len(PEERS) + "---|---|---|---|---|",
    ]
    for w in sorted(by, key=lambda w: (w.split()[0], int(w.split("d=")[1].split()[0]),
                                       int(w.split("n=")[1].split()[0]))):
        row = by[w]
        ours = row.get("tessera", {}).get("rate")
        cells = [f"{row[p]['rate']:.1f}" if p in row else "–" for p in PEERS]
        ratios = [f"{ours / row[p]['rate']:.2f}×" if ours and p in row else "–" for p in PEERS]
        errs = [row[p]["rel_err"] for p in PEERS if p in row and row[p].get("rel_err") is not None]
        our_err = row.get("tessera", {}).get("rel_err")
        lines.append(f"| {w} | {ours if ours is not None else '–'} | " + " | ".join(cells) +
                     " | " + " | ".join(ratios) +
                     f" | {our_err if our_err is not None else '–'} | {min(errs) if errs else '–'} |")
    return "\n".join(lines) + "\n"


def plot(rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, kind in zip(axes, ["full", "causal", "window"]):
        series = defaultdict(list)
        for r in rows:
            if not r["workload"].startswith(f"softmax-{kind} "):
                continue
            d = int(r["workload"].split("d=")[1].split()[0])
            n = int(r["workload"].split("n=")[1].split()[0])
            series[r["impl"], d].append((n, r["rate"]))
        colors = {"tessera": "tab:red", "sdpa-flash2": "tab:blue", "sdpa-cudnn": "tab:green",
                  "flex": "tab:purple"}
        for (impl, d), pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    color=colors.get(impl, "gray"),
                    linestyle="-" if d == 128 else "--", label=f"{impl} d={d}")
        ax.set_xscale("log", base=2)
        ax.set_title(f"softmax {kind}")
        ax.set_xlabel("N (B·N = 65536, H = 16, bf16)")
        ax.set_ylabel("TFLOP/s")
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "softmax.png", dpi=110)


if __name__ == "__main__":
    rows = load()
    (ROOT / "RESULTS.md").write_text(table(rows))
    plot(rows)
    print(f"{len(rows)} measurements -> bench/RESULTS.md, bench/softmax.png")
