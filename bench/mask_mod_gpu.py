"""mask_mod on the GPU: document masking (causal within packed documents) and prefix-LM,
Tessera beside FlexAttention in one run. One JSON line per measurement
(bench/report.py makes the table).

Both build their tile mask once, outside the timing, as a model reuses it across layers
(Tessera's `kernel.block_mask(...)`, FlexAttention's create_block_mask); the
`tessera+classify` rows time Tessera's whole call, classification included.
TFLOP/s = 4 · kept pairs · D / time.

    python3 bench/mask_mod_gpu.py [--quick] [--out FILE] [--profile]
"""
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import (bench_setup, compiled_flex, knobs_of, measure_tflops,  # noqa: E402
                     tail_error, tessera_impl, write_row)

H, TOKENS, PREFIX = 16, 65536, 2048
DOC = tessera.Buffer("document_id")
SPECS = {
    "document": tessera.attention(causal=True, mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
    "prefix-lm": tessera.attention(mask_mod=lambda b, h, i, j: (j <= i) | (j < PREFIX)),
}
CONFIGS = {128: tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=1),
           64: tessera.Config(block_m=128, block_n=64, num_warps=8, num_stages=2)}


def kernels(knobs=None):
    """Every Tessera kernel the benchmark runs (also used by scripts/gpu_precompile.py),
    with the boolean Config `knobs` on."""
    return {(kind, d): tessera.compile(spec, head_dim=d, dtype="bfloat16", target="cuda",
                                       config=dataclasses.replace(CONFIGS[d], **(knobs or {})))
            for kind, spec in SPECS.items() for d in CONFIGS}


def document_ids(n, generator):
    """Documents of random lengths (mean ≈ 2048 tokens) packed into n tokens."""
    import torch
    lengths = torch.randint(256, 3841, (n // 256,), generator=generator)
    ends = lengths.cumsum(0)
    ends = ends[ends < n]
    ids = torch.bucketize(torch.arange(n), ends, right=True).int()
    return ids.cuda(), torch.bincount(ids.long())


def kept_pairs(kind, n, lengths):
    if kind == "document":
        return int((lengths * (lengths + 1) // 2).sum())
    return n * (n + 1) // 2 + sum(max(0, PREFIX - 1 - i) for i in range(min(n, PREFIX)))


def main():
    import torch
    from torch.nn.attention.flex_attention import create_block_mask

    args, run_info = bench_setup(__file__, profile=True)
    knobs = knobs_of(args)
    ours = kernels(knobs)
    flex = compiled_flex()
    gen = torch.Generator().manual_seed(0)
    lengths_n = [16384] if args.quick else [8192, 32768, 65536]
    for d in (128, 64):
        for n in lengths_n:
            b = TOKENS // n
            q, k, v = (torch.randn(b, H, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            ids, doc_lengths = document_ids(n, gen)
            for kind in SPECS:
                if kind == "document":
                    def keep(i, j):
                        return (ids[i] == ids[j]) & (j <= i)

                    def flex_mask(b_, h_, i, j):
                        return (ids[i] == ids[j]) & (j <= i)
                    buffers = {"document_id": ids}
                else:
                    def keep(i, j):
                        return (j <= i) | (j < PREFIX)

                    def flex_mask(b_, h_, i, j):
                        return (j <= i) | (j < PREFIX)
                    buffers = {}
                flops = 4 * b * H * kept_pairs(kind, n, doc_lengths) * d
                workload = f"mask-{kind} d={d} n={n} b={b} h={H}"
                kernel = ours[kind, d]
                if args.profile:  # where the time of a whole call goes, launch by launch
                    for name, grid, ms in kernel.profile(q, k, v, **buffers):
                        print(f"{workload:<40} {name:<20} grid {str(grid):<16} {ms:8.3f} ms")
                    continue
                block_mask = create_block_mask(flex_mask, None, None, n, n, device="cuda")
                tiles = kernel.block_mask(q, k, v, **buffers)
                ours_impl = tessera_impl(knobs)
                impls = {ours_impl: lambda: kernel(q, k, v, block_mask=tiles, **buffers),
                         ours_impl + "+classify": lambda: kernel(q, k, v, **buffers),
                         "flex": lambda: flex(q, k, v, block_mask=block_mask)}
                for impl, fn in impls.items():
                    row = measure_tflops(fn, lambda out: tail_error(out, q, k, v, keep), flops,
                                         20, workload, impl, run_info)
                    if row:
                        write_row(args.out, row)

if __name__ == "__main__":
    main()
