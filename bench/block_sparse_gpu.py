"""Block-sparse softmax attention (a causal block top-k mask, as MoBA / NSA selection
produce) on the GPU: Tessera's block-list kernel beside FlexAttention with the equivalent
BlockMask, in one run. One JSON line per measurement (bench/report.py makes the table).

Each head's query block of 128 keeps its own diagonal block plus TOPK - 1 past key blocks
of 128 picked at random (all of them while fewer exist). FlexAttention gets the same
blocks as a BlockMask built from the lists: the diagonal as a partial block under the
causal mask_mod, the rest as full blocks (its fastest form). TFLOP/s count the pairs
actually kept: 4 · pairs · D.

    python3 bench/block_sparse_gpu.py [--quick] [--out FILE]
"""
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import (bench_setup, compiled_flex, knobs_of, measure_best,  # noqa: E402
                     measure_tflops, tail_error, tessera_impl, write_row)

H, TOKENS, BLOCK, TOPK = 16, 65536, 128, 16
SPEC = tessera.attention(causal=True, block_sparse=(BLOCK, BLOCK))


def _config(block_m, block_n, num_warps, num_stages):
    return tessera.Config(block_m=block_m, block_n=block_n, num_warps=num_warps,
                          num_stages=num_stages)


# Candidates per head dim; the table reports the fastest (its config in the row).
CONFIGS = {128: [_config(64, 64, 4, 1), _config(64, 64, 4, 2), _config(128, 128, 8, 2)],
           64: [_config(128, 64, 8, 2), _config(64, 64, 4, 2), _config(128, 128, 8, 2)]}


def kernels(knobs=None):
    """Every Tessera kernel the benchmark runs (also used by scripts/gpu_precompile.py),
    with the boolean Config `knobs` on (the candidates they apply to)."""
    knobs = knobs or {}
    return {(d, i): tessera.compile(SPEC, head_dim=d, dtype="bfloat16", target="cuda",
                                    config=dataclasses.replace(config, **knobs))
            for d, configs in CONFIGS.items() for i, config in enumerate(configs)
            # pingpong takes turns between two consumer warpgroups: 8-warp candidates only
            if not (knobs.get("pingpong") and config.num_warps != 8)}


def block_lists(b, n, generator):
    """(diagonal, past): [B, H, Nq/128] diagonal blocks and [B, H, Nq/128, TOPK - 1] past
    blocks (-1 padded, ascending)."""
    import torch
    blocks = n // BLOCK
    qb = torch.arange(blocks, device="cuda")
    scores = torch.rand(b, H, blocks, blocks, device="cuda", generator=generator)
    scores = scores.masked_fill(qb[None, :] >= qb[:, None], -1.0)  # past blocks only
    picked = scores.topk(min(TOPK - 1, blocks), dim=-1)
    missing = blocks  # sorts after every block, then becomes -1
    past = picked.indices.masked_fill(picked.values < 0, missing).sort(-1).values
    past = past.masked_fill(past == missing, -1).int()
    diagonal = qb.int().expand(b, H, blocks).contiguous()
    return diagonal, past


def flex_block_mask(diagonal, past, n):
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    def causal(b, h, i, j):
        return j <= i

    # Flex's index tensors span every key block (its dense form is [..., Q, KV] blocks):
    # listed blocks first, the rest padding.
    blocks = n // BLOCK

    def padded(listed):
        out = torch.zeros(*listed.shape[:3], blocks, dtype=torch.int32, device=listed.device)
        out[..., :listed.shape[-1]] = listed.clamp_min(0)
        return out

    return BlockMask.from_kv_blocks(torch.ones_like(diagonal), padded(diagonal[..., None]),
                                    (past >= 0).sum(-1).int(), padded(past), BLOCK_SIZE=BLOCK,
                                    mask_mod=causal, seq_lengths=(n, n))


def kept_pairs(past):
    full = int((past >= 0).sum())
    return full * BLOCK * BLOCK + past.shape[0] * past.shape[1] * past.shape[2] * BLOCK * (BLOCK + 1) // 2


def slice_error(out, q, k, v, lists):
    """Error on the last query block of heads 0 and 1 of batch 0."""
    import torch
    n = q.shape[2]
    listed = torch.zeros(2, n // BLOCK, dtype=torch.bool, device=q.device)
    entries = lists[0, :2, -1].long()
    listed.scatter_(1, entries.clamp_min(0), entries >= 0)
    listed = listed.repeat_interleave(BLOCK, 1)[:, None, :]
    return tail_error(out, q, k, v, lambda i, j: listed & (j <= i), rows=BLOCK)


def main():
    import torch

    args, run_info = bench_setup(__file__)
    knobs = knobs_of(args)
    ours = kernels(knobs)
    flex = compiled_flex()
    gen = torch.Generator(device="cuda").manual_seed(0)
    lengths = [8192, 65536] if args.quick else [4096, 16384, 65536]
    for d in (128, 64):
        for n in lengths:
            b = TOKENS // n
            q, k, v = (torch.randn(b, H, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            diagonal, past = block_lists(b, n, gen)
            # Ascending with the -1 padding last, as a top-k selection gives them.
            lists = torch.cat([past, diagonal[..., None]], -1)
            lists = lists.masked_fill(lists < 0, n).sort(-1).values
            lists = lists.masked_fill(lists == n, -1).contiguous()
            flops = 4 * kept_pairs(past) * d
            workload = f"block-topk d={d} n={n} b={b} h={H} block={BLOCK} k={TOPK}"
            error = lambda out: slice_error(out, q, k, v, lists)  # noqa: E731
            best = measure_best([(CONFIGS[d][i], lambda kern=kern: kern(q, k, v, block_indices=lists))
                                 for (dd, i), kern in ours.items() if dd == d],
                                error, flops, 20, workload, run_info)
            if best:
                write_row(args.out, dict(best, impl=tessera_impl(knobs)))
            mask = flex_block_mask(diagonal, past, n)
            row = measure_tflops(lambda: flex(q, k, v, block_mask=mask), error, flops, 20,
                                 workload, "flex", run_info)
            if row:
                write_row(args.out, row)


if __name__ == "__main__":
    main()
