"""Regenerates bench/RESULTS.md, bench/softmax.png, bench/softmax_bwd.png, bench/linear.png and
bench/block_sparse.png from bench/results/*.jsonl (softmax, mask_mod, block-sparse, linear
attention and autotuning runs).

    python3 bench/report.py
"""
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PEERS = ["sdpa-flash2", "sdpa-cudnn", "flex"]


def load(family):
    """The `family` rows (workloads starting with it) of the newest full run holding any
    (one .jsonl per run): every figure in a table comes from one process on one device,
    peers side by side."""
    runs = []
    for path in (ROOT / "results").glob("*.jsonl"):
        if path.stem.endswith("_quick"):
            continue  # a --quick check (fewer lengths) is kept, but a full run makes the table
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["workload"].startswith(family)]
        if rows:
            runs.append((max(r.get("time", 0) for r in rows), rows))
    return max(runs, key=lambda run: run[0])[1] if runs else []


def _n(w):
    return int(w.split("n=")[1].split()[0])


def _by_workload(rows):
    """{workload: {impl: row}} and the run's last row (its device, commit, command)."""
    by = defaultdict(dict)
    for r in rows:
        by[r["workload"]][r["impl"]] = r
    return by, (rows[-1] if rows else {})


def linear_table(rows):
    if not rows:
        return ""
    by, meta = _by_workload(rows)
    peers = ["fla", "lightning_attn2"]
    lines = [
        "## Linear attention (Lightning Attention-2, causal with decay)", "",
        f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
        f"`{meta.get('command')}`.",
        "Mtok/s = B·N / time (H = 16, D = Dv = 128, bf16); fla = chunk_simple_gla (g_gamma =",
        "log λ, scale 1), lightning_attn2 = OpenNLPLab's kernel. Byte floor: q, k, v, o moved",
        "once at 4.24 TB/s (≈ 259 Mtok/s). Errors against float64 on the first 1024 tokens.",
        "Tessera's row is the fastest of its configs for the shape (the `config` column).", "",
        "| workload | tessera | fla | lightning_attn2 | × fla | × lightning | tessera / byte floor | rel err tessera | rel err fla | config |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in sorted(by, key=lambda w: ("bwd" in w, _n(w))):
        row = by[w]
        ours = row.get("tessera", {}).get("rate")
        cells = [f"{row[p]['rate']:.1f}" if p in row else "–" for p in peers]
        ratios = [f"{ours / row[p]['rate']:.2f}×" if ours and p in row else "–" for p in peers]
        floor = row.get("tessera", {}).get("byte_floor_fraction")
        lines.append(
            f"| {w} | {ours if ours is not None else '–'} | " + " | ".join(cells) + " | " +
            " | ".join(ratios) + f" | {floor if floor is not None else '–'} | "
            f"{row.get('tessera', {}).get('rel_err', '–')} | {row.get('fla', {}).get('rel_err', '–')} | "
            f"{row.get('tessera', {}).get('config') or '–'} |")
    return "\n".join(lines) + "\n"


def versus_peer_table(rows, title, notes, extra_column, extra_cell, peer="flex"):
    """A table of Tessera against one peer, one row per workload: rates, ratio, errors,
    and one more column (`extra_cell(row)` gives its cell)."""
    if not rows:
        return ""
    by, meta = _by_workload(rows)
    lines = [f"## {title}", "",
             f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
             f"`{meta.get('command')}`.", *notes, "",
             f"| workload | tessera | {peer} | × {peer} | rel err tessera | rel err {peer} | {extra_column} |",
             "|---|---|---|---|---|---|---|"]
    for w in sorted(by, key=lambda w: (w.split()[0], -int(w.split("d=")[1].split()[0]), _n(w))):
        row = by[w]
        ours, theirs = row.get("tessera", {}), row.get(peer, {})
        ratio = f"{ours['rate'] / theirs['rate']:.2f}×" if ours and theirs else "–"
        lines.append(f"| {w} | {ours.get('rate', '–')} | {theirs.get('rate', '–')} | {ratio} | "
                     f"{ours.get('rel_err', '–')} | {theirs.get('rel_err', '–')} | "
                     f"{extra_cell(row)} |")
    return "\n".join(lines) + "\n"


def mask_mod_table(rows):
    return versus_peer_table(
        rows, "mask_mod: document masking and prefix-LM",
        ["Document: causal within packed documents of random lengths (256–3840 tokens);",
         "prefix-LM: causal plus the first 2048 keys for every query. Both tile masks are",
         "built once outside the timing (Tessera's kernel.block_mask, Flex's",
         "create_block_mask); the last column times Tessera's whole call, classification",
         "included. TFLOP/s = 4 · kept pairs · D / time."],
        "tessera incl. classification", lambda row: row.get("tessera+classify", {}).get("rate", "–"))


def block_sparse_table(rows):
    return versus_peer_table(
        rows, "Block-sparse softmax (causal block top-k lists)",
        ["Each head's query block of 128 keeps its diagonal block and 15 random past blocks of",
         "128; FlexAttention runs the same blocks as a BlockMask (diagonal partial under a",
         "causal mask_mod, the rest full). TFLOP/s = 4 · kept pairs · D / time; errors against",
         "float64 on the last query block of two heads. Tessera's row is the fastest of its",
         "configs (the `config` column)."],
        "config", lambda row: row.get("tessera", {}).get("config", "–"))


def nsa_table(rows):
    return versus_peer_table(
        rows, "NSA selected-block attention (per-token top-16 of 64-blocks, GQA group of 16)",
        ["Each token picks 16 blocks of 64 keys at random among those at or before it, shared",
         "by its group's 16 query heads (one KV head); fla-parallel_nsa is fla's kernel on",
         "the same lists. TFLOP/s = 4 · kept pairs · heads · D / time; errors against float64",
         "on the last 32 tokens. Tessera runs plain attention over (token, head) rows with",
         "per-token block lists (bench/nsa_gpu.py); its row is the fastest of its configs."],
        "config", lambda row: row.get("tessera", {}).get("config", "–"), peer="fla-parallel_nsa")


def hyper_table(rows):
    if not rows:
        return ""
    by, meta = _by_workload(rows)
    lines = ["## HyperAttention at N = 131072 against Tessera's dense kernels", "",
             f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
             f"`{meta.get('command')}`.",
             "Speedup = dense time / HyperAttention time (bars: ≥ 10× non-causal, ≥ 2× causal);",
             "errors against float64 exact attention on the last 128 queries of two heads.",
             "HyperAttention approximates: on these random Gaussian inputs no key stands out,",
             "so the 512 keys a query sees (its sorted block and the samples) cannot stand for",
             "131072 and its error against exact attention is large by construction. Its",
             "correctness (against float64 references of the same approximation, 2.6–2.9e-3)",
             "is tested in test/gpu/test_programs_gpu.py.", "",
             "| workload | dense ms | hyperattention ms | speedup | rel err hyper | rel err dense | config |",
             "|---|---|---|---|---|---|---|"]
    for w in sorted(by):
        dense, hyper = by[w].get("dense", {}), by[w].get("hyperattention", {})
        lines.append(f"| {w} | {dense.get('ms', '–')} | {hyper.get('ms', '–')} | "
                     f"{hyper.get('rate', '–')}× | {hyper.get('rel_err', '–')} | "
                     f"{dense.get('rel_err', '–')} | {hyper.get('config', '–')} |")
    return "\n".join(lines) + "\n"


def autotune_table(rows):
    if not rows:
        return ""
    meta = rows[-1]
    lines = [
        "## Autotuning on the GPU", "",
        f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
        f"`{meta.get('command')}` (tessera.autotune, L2 flushed, median of 5).", "",
        "| workload | shape (B, H, N) | default config ms | tuned ms | gain | tuned config | timed / candidates |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {tuple(r['shape'])} | {r['default_ms']} | {r['ms']} | "
                     f"{r['gain']}× | {r['config']} | {r['timed']} / {r['candidates']} |")
    return "\n".join(lines) + "\n"


def _line_plot(series, colors, title, xlabel, ylabel, filename, dashed, log_y=False,
               floor=None):
    """One line per (impl, variant) of (N, rate) points; `dashed(variant)` picks the
    second line style; `floor`, (value, label), adds a horizontal reference line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (impl, variant), pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                color=colors.get(impl, "gray"), linestyle="--" if dashed(variant) else "-",
                label=f"{impl} {variant}")
    if floor:
        ax.axhline(floor[0], color="black", linewidth=0.8, linestyle=":", label=floor[1])
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / filename, dpi=110)


def plot_linear(rows):
    if not rows:
        return
    series = defaultdict(list)
    for r in rows:
        kind = "fwd+bwd" if "fwd+bwd" in r["workload"] else "fwd"
        series[r["impl"], kind].append((_n(r["workload"]), r["rate"]))
    _line_plot(series, {"tessera": "tab:red", "fla": "tab:blue", "lightning_attn2": "tab:green"},
               "Lightning Attention-2, H = 16, D = 128, bf16", "N (B·N = 65536, B = 1 beyond)",
               "Mtok/s", "linear.png", lambda kind: kind != "fwd", log_y=True,
               floor=(259, "byte floor (fwd)"))


def plot_block_sparse(rows):
    """Block top-k lists (d=64 / d=128) and NSA's per-token selection (nsa) in one plot."""
    if not rows:
        return
    series = defaultdict(list)
    for r in rows:
        d = int(r["workload"].split("d=")[1].split()[0])
        variant = "nsa" if r["workload"].startswith("nsa") else f"d={d}"
        series[r["impl"], variant].append((_n(r["workload"]), r["rate"]))
    _line_plot(series, {"tessera": "tab:red", "flex": "tab:purple",
                        "fla-parallel_nsa": "tab:blue"},
               "Block top-k (128-blocks, 16 per query block, H = 16) and NSA selection, bf16",
               "N (B·N = 65536)", "TFLOP/s on kept pairs", "block_sparse.png",
               lambda variant: variant == "d=64")


def table(rows):
    by, meta = _by_workload(rows)
    lines = [
        "# Benchmark results",
        "",
        f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
        f"`{meta.get('command')}` (then `python3 bench/report.py`).",
        "Rates in TFLOP/s (forward, 4·B·H·pairs·D; causal and window count kept pairs); relative",
        "errors against float64 on the last 128 queries of two heads. A dash: the peer does",
        "not offer the variant, or failed on it (see the run's log). Earlier runs stay in",
        "bench/results/. Tessera's row is the fastest of its candidate configs for the shape",
        "(the `config` column; bench/softmax_gpu.py lists them).",
        "",
        "Times (every table): the median of CUDA-event timings of calls made back to back, as",
        "triton.testing.do_bench makes them (bench/_common.py `time_ms`), so that host overhead",
        "per call overlaps the GPU's work for every implementation alike. Runs before commit",
        "179358f synchronized after each call, which counted each call's host overhead too.",
        "",
        "| workload | tessera | " + " | ".join(PEERS) + " | tessera / flash2 | tessera / cudnn | tessera / flex | rel err tessera | rel err best peer | config |",
        "|---|---|" + "---|" * len(PEERS) + "---|---|---|---|---|---|",
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
                     f" | {our_err if our_err is not None else '–'} | {min(errs) if errs else '–'} |"
                     f" {row.get('tessera', {}).get('config', '–')} |")
    return "\n".join(lines) + "\n"


def backward_table(rows):
    """Softmax forward + backward (bench/softmax_bwd_gpu.py): Tessera beside its peers."""
    if not rows:
        return ""
    by, meta = _by_workload(rows)
    peers = ["sdpa-cudnn", "sdpa-flash2", "flex"]
    lines = ["## Softmax attention forward + backward", "",
             f"Device: {meta.get('device')}; commit {meta.get('commit')}; command "
             f"`{meta.get('command')}`.",
             "Through torch autograd; TFLOP/s = 3.5 · 4 · B·H · kept pairs · D / time (the",
             "backward counted as 2.5 forwards); SDPA runs only full and causal (no mod hook).",
             "rel err: the forward output's last 128 rows against float64. Before 4ee483e the",
             "benchmark gave FlexAttention one mask_mod closure for every kind, and compiled Flex",
             "reused the causal graph inside the window and document blocks (rel err 0.1-0.3).",
             "", "| workload | tessera | " + " | ".join(peers) +
             " | × flash2 | × cudnn | × flex | × fastest peer | rel err tessera | rel err flex |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in sorted(by, key=lambda w: (w.split()[0], -int(w.split("d=")[1].split()[0]), _n(w))):
        row = by[w]
        ours = row.get("tessera", {}).get("rate")
        best = max((row[p]["rate"] for p in peers if p in row), default=None)
        ratio = f"{ours / best:.2f}×" if ours and best else "–"
        each = [f"{ours / row[p]['rate']:.2f}×" if ours and p in row else "–"
                for p in ("sdpa-flash2", "sdpa-cudnn", "flex")]
        lines.append(f"| {w} | {ours if ours is not None else '–'} | " +
                     " | ".join(str(row[p]["rate"]) if p in row else "–" for p in peers) +
                     " | " + " | ".join(each) + f" | {ratio} | " +
                     " | ".join(str(row[p].get("rel_err", "–")) if p in row else "–"
                                for p in ("tessera", "flex")) + " |")
    return "\n".join(lines) + "\n"


def plot_backward(rows):
    """Forward + backward per mod: one line per (impl, head dim), D = 64 dashed."""
    if not rows:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = sorted({r["workload"].split()[0].removeprefix("bwd-softmax-") for r in rows})
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 4.2), squeeze=False)
    colors = {"tessera": "tab:red", "sdpa-flash2": "tab:blue", "sdpa-cudnn": "tab:green",
              "flex": "tab:purple"}
    for ax, kind in zip(axes[0], kinds):
        series = defaultdict(list)
        for r in rows:
            if r["workload"].split()[0] == f"bwd-softmax-{kind}":
                d = int(r["workload"].split("d=")[1].split()[0])
                series[r["impl"], d].append((_n(r["workload"]), r["rate"]))
        for (impl, d), pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    color=colors.get(impl, "gray"), linestyle="-" if d == 128 else "--",
                    label=f"{impl} d={d}")
        ax.set_xscale("log", base=2)
        ax.set_title(f"fwd+bwd {kind}")
        ax.set_xlabel("N (B·N = 65536, H = 16, bf16)")
        ax.set_ylabel("TFLOP/s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "softmax_bwd.png", dpi=110)


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
    softmax, linear, tuned = load("softmax-"), load("linear-"), load("autotune-")
    sparse, masks, nsa, hyper = load("block-topk"), load("mask-"), load("nsa-"), load("hyper-")
    backward = load("bwd-softmax-")
    (ROOT / "RESULTS.md").write_text("\n".join(t for t in (
        table(softmax), backward_table(backward), mask_mod_table(masks), block_sparse_table(sparse), nsa_table(nsa),
        hyper_table(hyper),
        linear_table(linear), autotune_table(tuned)) if t))
    plot(softmax)
    plot_linear(linear)
    plot_block_sparse(sparse + nsa)
    plot_backward(backward)
    print(f"{len(softmax) + len(backward) + len(masks) + len(sparse) + len(nsa) + len(hyper) + len(linear) + len(tuned)} measurements -> bench/RESULTS.md, "
          f"bench/softmax.png, bench/softmax_bwd.png, bench/linear.png, bench/block_sparse.png")
