"""tessera.autotune on the GPU: softmax (causal) and Lightning Attention-2 kernels tuned
over a config space, each against the default config (tessera.Config()), and the softmax
backward's own config (autotune(backward=True), against gpu.default_grad_config), in one
run. Prints every candidate and writes one JSON line per workload (best, default, gain).

    python3 bench/autotune_gpu.py [--out FILE]

With the wheel installed there (scripts/gpu_device.sh), the tuner compiles each candidate
on the GPU machine; without it, scripts/gpu_precompile.py fills the kernel cache with every
candidate first (kernels() below), and the tuner finds them there.
"""
import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import commit_id, write_row  # noqa: E402
from tessera.gpu import default_grad_config  # noqa: E402

# name -> (spec, (batch, heads, seq_len), space); each space holds tessera.Config().
WORKLOADS = {
    "autotune-softmax-causal d=128 n=16384": (
        tessera.attention(causal=True), (4, 16, 16384),
        {"block_m": [64, 128], "block_n": [64, 128], "num_warps": [4, 8], "num_stages": [1, 2]}),
    "autotune-linear-la2 d=128 n=16384": (
        tessera.linear_attention(decay=True), (4, 16, 16384),
        {"block_m": [64], "num_warps": [4], "num_stages": [1, 2], "split": [1, 2, 4, 8]}),
    "autotune-linear-la2 d=128 n=65536": (
        tessera.linear_attention(decay=True), (1, 16, 65536),
        {"block_m": [64], "num_warps": [4], "num_stages": [1, 2], "split": [1, 2, 4, 8]}),
}
# name -> (spec, (batch, heads, seq_len), space) of the backward's config (kernel.grad, the
# torch op's backward); each space holds gpu.default_grad_config(D, D).
BACKWARD_WORKLOADS = {
    "autotune-softmax-bwd-causal d=128 n=16384": (
        tessera.attention(causal=True), (4, 16, 16384),
        {"block_m": [64, 128], "block_n": [64, 128], "num_warps": [4, 8], "num_stages": [1, 2]}),
}
D = 128


def kernels():
    """Every candidate that compiles (for scripts/gpu_precompile.py)."""
    from tessera.autotune import _candidates, invalid_for_backward
    out = {}
    for name, (spec, _, space) in WORKLOADS.items():
        for config in _candidates(space, "cuda"):
            try:
                out[name, config] = tessera.compile(spec, head_dim=D, dtype="bfloat16",
                                                    target="cuda", config=config)
            except tessera.CompileError:
                pass  # the tuner reports it as rejected
    for name, (spec, _, space) in BACKWARD_WORKLOADS.items():
        kernel = tessera.compile(spec, head_dim=D, dtype="bfloat16", target="cuda")
        for config in _candidates(space, "cuda"):
            if invalid_for_backward(config, "cuda", D, D):
                continue  # refused before compiling
            kernel.grad_config = config
            try:
                out[name, config] = kernel.grad_image()
            except tessera.CompileError:
                pass
    return out


def main():
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench/results/autotune.jsonl"))
    args = ap.parse_args()
    device, commit = torch.cuda.get_device_name(), commit_id()
    runs = [(name, *w, False, tessera.Config()) for name, w in WORKLOADS.items()]
    runs += [(name, *w, True, default_grad_config(D, D))
             for name, w in BACKWARD_WORKLOADS.items()]
    for name, spec, shape, space, backward, default in runs:
        with tempfile.TemporaryDirectory() as store:
            r = tessera.autotune(spec, head_dim=D, dtype="bfloat16", target="cuda", key=shape,
                                 space=space, store=Path(store) / "tuning.json",
                                 budget_s=240, progress=False, workers=0, backward=backward)
        print(f"== {name} {shape}")
        for t in r.table:
            print(f"  {t}")
        base = next(t for t in r.table if t.config == default)
        gain = base.ms / r.ms if base.ms else None
        print(f"  best {r.config} {r.ms:.3f} ms; default {base.ms} ms; gain {gain}")
        write_row(args.out, {
            "workload": name, "impl": "tessera-autotune", "ms": round(r.ms, 4),
            "default_ms": None if base.ms is None else round(base.ms, 4),
            "gain": None if gain is None else round(gain, 3),
            "config": str(r.config), "candidates": len(r.table),
            "timed": sum(t.status == "ok" for t in r.table), "shape": list(shape),
            "device": device, "commit": commit, "command": "python3 bench/autotune_gpu.py"})


if __name__ == "__main__":
    main()
