"""Softmax attention forward on the GPU: Tessera beside torch SDPA (FlashAttention-2 and
cuDNN backends) and FlexAttention, in one run. Writes one JSON line per measurement to
bench/results/softmax.jsonl; bench/report.py turns them into RESULTS.md and a plot.

    python3 bench/softmax_gpu.py [--quick] [--tma] [--warp-specialize] [--pingpong] [--overlap]
                                 [--persistent] [--head-dims 64,128]

--tma: also a "tessera-tma" row per workload, the fastest of the same candidates with
Config.tma (K / V / Q tiles by TMA copies and mbarriers; sm_90a).
--warp-specialize: also a "tessera-ws" row, the same with Config(tma=True,
warp_specialize=True) (a producer warpgroup feeding the consumers through an mbarrier
ring; sm_90a).
--overlap: also "tessera-ws-overlap" (and with --pingpong "tessera-pingpong-overlap")
rows, the same with Config.intra_warpgroup_overlap (each P·V issued under the next
softmax).
--pingpong: also a "tessera-pingpong" row, the same with Config(tma=True,
warp_specialize=True, pingpong=True) on the candidates of two consumer warpgroups
(num_warps 8): they take turns at their products.
--persistent: also a "tessera-persistent" row, the same with Config.persistent
(min(blocks per SM x #SMs, tiles) CTAs walking (batch, head, query tile) items), and a
"-persistent" twin of every other knob row (e.g. tessera-ws-overlap-persistent).
"""
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import (bench_setup, compiled_flex, measure_best, measure_tflops,  # noqa: E402
                     tail_error, write_row)

H, TOKENS = 16, 65536
WINDOW = 1024
SPECS = {
    "full": tessera.attention(),
    "causal": tessera.attention(causal=True),
    "window": tessera.attention(causal=True, window=WINDOW),
}


# Candidates per (mask, head dim) from bench/tune_softmax.py on the H200; the table
# reports the fastest (its config in the row). All use wgmma on sm_90a (block_m = 16 x
# num_warps, block_n a multiple of 64): one warpgroup and one stage keep shared memory
# at 49 KiB so three CTAs share an SM; two warpgroups with two stages prefetch instead.
def _config(block_m, block_n, num_warps, num_stages, min_blocks=0):
    return tessera.Config(block_m=block_m, block_n=block_n, num_warps=num_warps,
                          num_stages=num_stages, min_blocks=min_blocks)


_ONE_WARPGROUP, _TWO_WARPGROUPS = _config(64, 64, 4, 1), _config(128, 128, 8, 2)
# Two warpgroups on 64-key tiles: 32 accumulator registers of S beside O's 64, the room
# intra_warpgroup_overlap's carried P needs at D = 128.
_TWO_WARPGROUPS_N64 = _config(128, 64, 8, 2)
CONFIGS = {("full", 128): [_ONE_WARPGROUP, _TWO_WARPGROUPS, _config(64, 64, 4, 2),
                           _config(64, 64, 4, 1, min_blocks=4), _TWO_WARPGROUPS_N64],
           ("causal", 128): [_ONE_WARPGROUP, _TWO_WARPGROUPS, _config(64, 64, 4, 2),
                             _config(64, 64, 4, 1, min_blocks=4), _TWO_WARPGROUPS_N64],
           ("window", 128): [_ONE_WARPGROUP, _config(64, 64, 4, 2)],
           **{(kind, 64): [_config(128, 64, 8, 2), _config(64, 64, 4, 2), _ONE_WARPGROUP,
                           _TWO_WARPGROUPS, _config(64, 128, 4, 1)]
              for kind in ("full", "causal", "window")}}


def kernels(kinds=tuple(SPECS), dims=(64, 128)):
    """Every Tessera kernel the benchmark runs (also used by scripts/gpu_precompile.py)."""
    return {(name, d, i): tessera.compile(SPECS[name], head_dim=d, dtype="bfloat16",
                                          target="cuda", config=config)
            for (name, d), configs in CONFIGS.items() for i, config in enumerate(configs)
            if name in kinds and d in dims}


def slice_error(out, q, k, v, kind):
    """Error on the last 128 queries (they see every key under each mask)."""
    def keep(i, j):
        kept = (j <= i) if kind != "full" else (j >= 0)
        return kept & (j > i - WINDOW) if kind == "window" else kept
    return tail_error(out, q, k, v, keep)


def pairs(n, kind):
    if kind == "full":
        return n * n
    if kind == "causal":
        return n * (n + 1) // 2
    return sum(min(i + 1, WINDOW) for i in range(n))


def causal_mask(b, h, i, j):
    return j <= i


def window_mask(b, h, i, j):
    return (j <= i) & (j > i - WINDOW)


def main():
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask

    def options(ap):
        ap.add_argument("--tma", action="store_true", help="also the candidates with Config.tma")
        ap.add_argument("--warp-specialize", action="store_true",
                        help="also the candidates with Config(tma=True, warp_specialize=True)")
        ap.add_argument("--pingpong", action="store_true",
                        help="also the candidates of num_warps 8 with Config(tma=True, "
                             "warp_specialize=True, pingpong=True)")
        ap.add_argument("--overlap", action="store_true",
                        help="also the warp_specialize (and --pingpong) candidates with "
                             "Config.intra_warpgroup_overlap")
        ap.add_argument("--persistent", action="store_true",
                        help="also the candidates with Config.persistent, and each other "
                             "knob variant's as a persistent grid (its impl + '-persistent')")
        ap.add_argument("--only", default="",
                        help="keep only these knob rows (comma-separated impl names, e.g. "
                             "tessera-ws-overlap,tessera-ws-overlap-persistent)")
        ap.add_argument("--head-dims", default="64,128")
        ap.add_argument("--kinds", default="full,causal,window",
                        help="masks to run (comma-separated)")
        ap.add_argument("--lengths", default=None,
                        help="sequence lengths (comma-separated; default 1k-64k, --quick 1k-16k)")
    args, run_info = bench_setup(__file__, options=options)
    dims = [int(d) for d in args.head_dims.split(",")]
    kinds = args.kinds.split(",")
    ours = kernels(kinds, dims)
    # Rows of the same candidates with knobs on: impl -> knobs, then impl -> kernels.
    variants = {impl: knobs for impl, knobs, wanted in (
        ("tessera-tma", {"tma": True}, args.tma),
        ("tessera-ws", {"tma": True, "warp_specialize": True}, args.warp_specialize),
        ("tessera-pingpong", {"tma": True, "warp_specialize": True, "pingpong": True},
         args.pingpong),
        ("tessera-ws-overlap", {"tma": True, "warp_specialize": True,
                                "intra_warpgroup_overlap": True}, args.overlap),
        ("tessera-pingpong-overlap", {"tma": True, "warp_specialize": True, "pingpong": True,
                                      "intra_warpgroup_overlap": True},
         args.overlap and args.pingpong),
        ("tessera-persistent", {"persistent": True}, args.persistent))
        if wanted}
    if args.persistent:  # each knob variant also as a persistent grid
        variants.update({f"{impl}-persistent": {**knobs, "persistent": True}
                         for impl, knobs in list(variants.items()) if "persistent" not in knobs})
    if args.only:  # a device call's minutes: just these knob rows
        variants = {impl: knobs for impl, knobs in variants.items()
                    if impl in args.only.split(",")}
    with_knobs = {impl: {key: tessera.compile(SPECS[key[0]], head_dim=key[1], dtype="bfloat16",
                                              target="cuda", config=dataclasses.replace(
                                                  CONFIGS[key[:2]][key[2]], **knobs))
                         for key in ours if key[1] in dims and not (
                             # warp_specialize takes an SM alone: min_blocks > 1 is refused
                             knobs.get("warp_specialize") and CONFIGS[key[:2]][key[2]].min_blocks > 1)
                         # turns between two consumer warpgroups: num_warps 8 only
                         and not (knobs.get("pingpong") and CONFIGS[key[:2]][key[2]].num_warps != 8)}
                  for impl, knobs in variants.items()}
    flex = compiled_flex()
    lengths = ([int(n) for n in args.lengths.split(",")] if args.lengths
               else [1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for d in dims:
        for n in lengths:
            b = TOKENS // n
            q, k, v = (torch.randn(b, H, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            for kind in kinds:
                flops = 4 * b * H * pairs(n, kind) * d
                impls = {}
                if kind != "window":
                    causal = kind == "causal"
                    for label, backend in (("sdpa-flash2", SDPBackend.FLASH_ATTENTION),
                                           ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION)):
                        def run(backend=backend, causal=causal):
                            with sdpa_kernel([backend]):
                                return torch.nn.functional.scaled_dot_product_attention(
                                    q, k, v, is_causal=causal)
                        impls[label] = run
                if kind != "full":
                    # One function per mask: torch.compile's cache is keyed on the code
                    # object, so a shared function with a default argument would reuse
                    # the causal graph for the window.
                    mask = causal_mask if kind == "causal" else window_mask
                    bm = create_block_mask(mask, None, None, n, n, device="cuda")
                    impls["flex"] = lambda bm=bm: flex(q, k, v, block_mask=bm)
                iters = 5 if flops > 2e13 else 20
                workload = f"softmax-{kind} d={d} n={n} b={b} h={H}"
                error = lambda out, kind=kind: slice_error(out, q, k, v, kind)  # noqa: E731
                best = measure_best([(CONFIGS[kind, d][i], lambda kern=kern: kern(q, k, v))
                                     for (name, dd, i), kern in ours.items()
                                     if (name, dd) == (kind, d)],
                                    error, flops, iters, workload, run_info)
                for impl, kernels_with in with_knobs.items():
                    knob_best = measure_best(
                        [(dataclasses.replace(CONFIGS[kind, d][i], **variants[impl]),
                          lambda kern=kern: kern(q, k, v))
                         for (name, dd, i), kern in kernels_with.items()
                         if (name, dd) == (kind, d)],
                        error, flops, iters, workload, run_info)
                    if knob_best:
                        write_row(args.out, dict(knob_best, impl=impl))
                rows = [best] + [measure_tflops(fn, error, flops, iters, workload, impl, run_info)
                                 for impl, fn in impls.items()]
                for row in rows:
                    if row:
                        write_row(args.out, row)


if __name__ == "__main__":
    main()
