"""HyperAttention at long N on the GPU against Tessera's own dense kernels, in one run.
One JSON line per measurement (bench/report.py makes the table).

Non-causal: examples/hyperattention.py's program (LSH sort with 7 Gray-ordered bits,
blocks of 256 in sorted order, 256 uniform column samples weighted N / m, merged through
L, un-sorted) beside dense non-causal attention. Causal: its recursion on halves down to
4096 tokens (exact causal there), each off-diagonal quadrant one non-causal program,
merged into its rows, beside dense causal attention. Rates are speedups (dense time /
HyperAttention time) — the issue's bars are ≥ 10× non-causal and ≥ 2× causal; errors
are HyperAttention's own (an approximation) against float64 exact attention on the last
128 queries of two heads.

    python3 bench/hyper_gpu.py [--quick] [--out FILE] [--profile]
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
sys.path.append(str(ROOT / "examples"))
import tessera  # noqa: E402
from _common import bench_setup, tail_error, time_ms, write_row  # noqa: E402

H, D, N = 16, 128, 131072
BLOCK, SAMPLES, BITS, MIN_SEQ_LEN = 256, 256, 7, 4096
DENSE = tessera.Config(block_m=128, block_n=128, num_warps=8, num_stages=2)


def _hyper(n):
    import hyperattention
    return tessera.compile(hyperattention.hyper_spec(n, n, block=BLOCK, samples=SAMPLES,
                                                     bits=BITS),
                           head_dim=D, dtype="bfloat16", target="cuda")


def _merge():
    import hyperattention
    return tessera.compile(hyperattention.merge_spec(), head_dim=D, dtype="bfloat16",
                           target="cuda")


def _lengths(n=N):
    """The HyperAttention program sizes: n for the non-causal run, then the causal
    recursion's quadrants (halves of n down to MIN_SEQ_LEN)."""
    out = [n]
    while n > MIN_SEQ_LEN:
        n //= 2
        out.append(n)
    return out


def kernels():
    """Every Tessera kernel the benchmark runs (also used by scripts/gpu_precompile.py)."""
    out = {("hyper", n): _hyper(n) for n in _lengths()}
    out["merge"] = _merge()
    for causal in (False, True):
        out["dense", causal] = tessera.compile(tessera.attention(causal=causal), head_dim=D,
                                               dtype="bfloat16", target="cuda", config=DENSE)
    return out


def causal_hyper(ours, q, k, v, projection, samples):
    """(O, L) of causal HyperAttention on GPU tensors: examples/hyperattention.py's
    recursion with the GPU kernels."""
    import hyperattention
    import torch
    return hyperattention.causal_recursion(
        q, k, v, samples, min_seq_len=MIN_SEQ_LEN,
        exact=lambda q, k, v: ours["dense", True](q, k, v, return_lse=True),
        cross=lambda q, k, v, s: ours["hyper", q.shape[2]](q, k, v, projection, s),
        merge=ours["merge"], concat=lambda a, b: torch.cat([a, b], 2))


def main():
    import torch
    args, run_info = bench_setup(__file__, profile=True)
    ours = kernels()
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    projection = torch.randn(D, BITS, device="cuda")
    # Sampled columns index the sorted keys: [0, N) for the whole sequence, [0, N / 2^(d+1))
    # for the recursion's quadrants at depth d.
    full_samples = torch.randint(0, N, (SAMPLES,), device="cuda", dtype=torch.int32)
    samples = [torch.randint(0, N >> (depth + 1), (SAMPLES,), device="cuda",
                             dtype=torch.int32) for depth in range(len(_lengths()))]
    if args.profile:  # where the non-causal program's time goes, launch by launch
        for kernel, grid, ms in ours["hyper", N].profile(q, k, v, projection, full_samples):
            print(f"{kernel:<32} grid {str(grid):<18} {ms:8.3f} ms")
        return
    iters = 2 if args.quick else 5
    for causal in (False, True):
        keep = (lambda i, j: j <= i) if causal else (lambda i, j: j >= 0)
        if causal:
            hyper = lambda: causal_hyper(ours, q, k, v, projection, samples)[0]  # noqa: E731
        else:
            hyper = lambda: ours["hyper", N](q, k, v, projection, full_samples)[0]  # noqa: E731
        dense = lambda c=causal: ours["dense", c](q, k, v)  # noqa: E731
        workload = f"hyper-{'causal' if causal else 'full'} d={D} n={N} b=1 h={H}"
        dense_ms = time_ms(dense, iters)
        hyper_ms = time_ms(hyper, iters)
        for impl, ms, fn in (("dense", dense_ms, dense), ("hyperattention", hyper_ms, hyper)):
            write_row(args.out, {
                "workload": workload, "impl": impl, "ms": round(ms, 4),
                "rate": round(dense_ms / ms, 2), "rate_unit": "× dense",
                "rel_err": round(tail_error(fn(), q, k, v, keep), 6),
                "config": f"block={BLOCK} samples={SAMPLES} bits={BITS}"
                          + (f" min_seq_len={MIN_SEQ_LEN}" if causal else ""),
                **run_info})


if __name__ == "__main__":
    main()
