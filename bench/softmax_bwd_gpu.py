"""Softmax attention forward + backward on the GPU (issue 24): Tessera's generated
backward beside torch SDPA (cuDNN and FlashAttention-2 backends, full and causal only) and
FlexAttention with the same mods, each through torch autograd (a forward on inputs that
require grad, then torch.autograd.grad with a fixed upstream gradient). One JSON line
per measurement to bench/results/softmax_bwd.jsonl (bench/report.py makes the table).

TFLOP/s = 3.5 · 4 · B · H · kept pairs · D / time (the backward counted as 2.5 forwards,
as FlashAttention counts it). rel_err: the forward output's last 128 rows against float64
(a backward reference at N = 64k costs more than the run).

    python3 bench/softmax_bwd_gpu.py [--quick]     # --quick: D = 128 full and causal, N 4096, 16384
    python3 bench/softmax_bwd_gpu.py --grad-query-tiles 16,32   # also rows "tessera-gq16", ...
    python3 bench/softmax_bwd_gpu.py --dims 128 --kinds alibi,window --lengths 4096

--grad-query-tiles: besides the default backward, the same kernel with its backward's dK / dV
grid walking that many queries per tile (Config.grad_query_tile), one row each.
--grad-dq-atomic: also the default backward with Config.grad_dq_atomic (dQ summed by the
dK / dV grid with f32 atomics, no dQ grid), row "tessera-dqatomic".
"""
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import bench_setup, compiled_flex, measure_tflops, write_row  # noqa: E402
from mask_mod_gpu import document_ids  # noqa: E402
from tessera.gpu import default_grad_config  # noqa: E402

H, TOKENS, WINDOW = 16, 65536, 1024
SLOPES = tessera.Buffer("slopes", "float32")
DOC = tessera.Buffer("document_id")
SPECS = {
    "full": tessera.attention(),
    "causal": tessera.attention(causal=True),
    "alibi": tessera.attention(causal=True, score_mod=lambda s, b, h, i, j:
                               s + SLOPES[h] * (j - i).float()),
    "document": tessera.attention(causal=True, mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
    "window": tessera.attention(causal=True, window=WINDOW),
}


def kernels():
    """Every Tessera kernel the benchmark runs, with its gradient image (also used by
    scripts/gpu_precompile.py); the GPU default config, forward and backward."""
    out = {}
    for kind, spec in SPECS.items():
        for d in (64, 128):
            out[kind, d] = tessera.compile(spec, head_dim=d, dtype="bfloat16", target="cuda")
            out[kind, d].grad_image()
            # --grad-dq-atomic's variant (the same forward), for scripts/gpu_precompile.py.
            atomic = tessera.compile(spec, head_dim=d, dtype="bfloat16", target="cuda")
            atomic.grad_config = default_grad_config(d, d, atomic.chip, dq_atomic=True)
            out[kind, d, "dq_atomic"] = atomic
            atomic.grad_image()
    return out


def causal_mask(b, h, i, j):
    return j <= i


def window_mask(b, h, i, j):
    return (j <= i) & (j > i - WINDOW)


def document_mask(doc):
    def same_document(b, h, i, j):
        return (j <= i) & (doc[i] == doc[j])
    return same_document


def kept_pairs(kind, n, lengths):
    if kind == "document":
        return int((lengths * (lengths + 1) // 2).sum())
    if kind == "window":
        return sum(min(i + 1, WINDOW) for i in range(n))
    if kind == "full":
        return n * n
    return n * (n + 1) // 2


def tail_error(out, q, k, v, keep, bias, rows=128):
    """Relative error of the output's last `rows` queries (heads 0, 1 of batch 0) against
    float64, `bias(h, i, j)` added to the scores."""
    import torch
    i = torch.arange(q.shape[2] - rows, q.shape[2], device=q.device)[:, None]
    j = torch.arange(k.shape[2], device=q.device)[None, :]
    s = (q[0, :2, -rows:].double() @ k[0, :2].double().transpose(-1, -2)) * q.shape[-1] ** -0.5
    s = s + bias(torch.arange(2, device=q.device)[:, None, None], i, j)
    ref = torch.softmax(s.masked_fill(~keep(i, j), float("-inf")), -1) @ v[0, :2].double()
    return float((out[0, :2, -rows:].double() - ref).norm() / ref.norm())


def main():
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask

    def options(ap):
        ap.add_argument("--grad-query-tiles", default="", help="comma-separated, e.g. 16,32")
        ap.add_argument("--grad-dq-atomic", action="store_true",
                        help="also time the backward with Config.grad_dq_atomic")
        ap.add_argument("--dims", default="", help="head dims, e.g. 128 (default 64,128)")
        ap.add_argument("--lengths", default="", help="sequence lengths, e.g. 4096,16384")
        ap.add_argument("--kinds", default="", help=f"any of {','.join(SPECS)}")

    args, run_info = bench_setup(__file__, options=options)
    query_tiles = [int(t) for t in args.grad_query_tiles.split(",") if t]
    variants = {f"tessera-gq{t}": {"grad_query_tile": t} for t in query_tiles}
    ours = kernels()
    flex = compiled_flex()
    gen = torch.Generator().manual_seed(0)
    dims = (128,) if args.quick else (64, 128)
    lengths = [4096, 16384] if args.quick else [1024, 4096, 16384, 65536]
    kinds = ("full", "causal") if args.quick else tuple(SPECS)
    dims = [int(d) for d in args.dims.split(",")] if args.dims else dims
    lengths = [int(n) for n in args.lengths.split(",")] if args.lengths else lengths
    kinds = args.kinds.split(",") if args.kinds else kinds
    unknown = [k for k in kinds if k not in SPECS] + [n for n in lengths if TOKENS % n]
    if unknown:
        sys.exit(f"softmax_bwd_gpu.py: unknown kind or a length not dividing {TOKENS}: {unknown}")
    for d in dims:
        for n in lengths:
            b = TOKENS // n
            q, k, v = (torch.randn(b, H, n, d, device="cuda", dtype=torch.bfloat16,
                                   requires_grad=True) for _ in range(3))
            grad_out = torch.randn(b, H, n, d, device="cuda", dtype=torch.bfloat16)
            slopes = -(2.0 ** (-8.0 * torch.arange(1, H + 1, device="cuda") / H))
            doc, lengths_of = document_ids(n, gen)
            for kind in kinds:
                tables = {"slopes": slopes} if kind == "alibi" else \
                    {"document_id": doc} if kind == "document" else {}
                keep = {"document": lambda i, j: (j <= i) & (doc[i] == doc[j]),
                        "window": lambda i, j: (j <= i) & (j > i - WINDOW),
                        "full": lambda i, j: (j >= 0) & (i >= 0)}.get(
                            kind, lambda i, j: j <= i)
                bias = (lambda h, i, j: slopes[h].double() * (j - i)) if kind == "alibi" \
                    else (lambda h, i, j: 0.0)

                def alibi_mod(score, b_, h, i, j):
                    return score + slopes[h] * (j - i)

                def step(attend):
                    out = attend()
                    torch.autograd.grad(out, (q, k, v), grad_out)
                    return out.detach()

                kernel = ours[kind, d]
                impls = {"tessera": lambda: step(lambda: kernel(q, k, v, **tables))}
                base = default_grad_config(d, d, kernel.chip)
                configs = {row: dataclasses.replace(base, **knobs)
                           for row, knobs in variants.items()}
                if args.grad_dq_atomic:
                    configs["tessera-dqatomic"] = default_grad_config(d, d, kernel.chip,
                                                                      dq_atomic=True)
                for row, config in configs.items():
                    variant = tessera.compile(SPECS[kind], head_dim=d, dtype="bfloat16",
                                              target="cuda")
                    variant.grad_config = config
                    impls[row] = lambda variant=variant: step(
                        lambda: variant(q, k, v, **tables))
                if kind == "document":  # tiles classified once, as FlexAttention's block mask
                    op = tessera.torch_op(kernel)
                    tiles = op.block_mask(q.detach(), k.detach(), v.detach(), **tables)
                    impls["tessera"] = lambda op=op, tiles=tiles: step(
                        lambda: op(q, k, v, block_mask=tiles, **tables))
                if kind in ("causal", "full"):
                    for label, backend in (("sdpa-flash2", SDPBackend.FLASH_ATTENTION),
                                           ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION)):
                        def sdpa(backend=backend):
                            with sdpa_kernel([backend]):
                                return torch.nn.functional.scaled_dot_product_attention(
                                    q, k, v, is_causal=kind == "causal")
                        impls[label] = lambda sdpa=sdpa: step(sdpa)
                # One function (code object) per mask: compiled FlexAttention keyed its
                # graphs on the mask_mod's code, so one closure serving every kind
                # reused the causal graph for the window and document runs.
                mask_mod = {"causal": causal_mask, "alibi": causal_mask, "window": window_mask,
                            "document": document_mask(doc)}.get(kind)
                bm = mask_mod and create_block_mask(mask_mod, None, None, n, n, device="cuda")
                score_mod = alibi_mod if kind == "alibi" else None
                impls["flex"] = lambda bm=bm, sm=score_mod: step(
                    lambda: flex(q, k, v, score_mod=sm, block_mask=bm))
                flops = 3.5 * 4 * b * H * kept_pairs(kind, n, lengths_of) * d
                iters = 5 if flops > 5e13 else 20
                workload = f"bwd-softmax-{kind} d={d} n={n} b={b} h={H}"
                for impl, fn in impls.items():
                    row = measure_tflops(fn, lambda out: tail_error(out, q, k, v, keep, bias),
                                         flops, iters, workload, impl, run_info)
                    if row:
                        write_row(args.out, row)


if __name__ == "__main__":
    main()
