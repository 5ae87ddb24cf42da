"""NSA's selected-block branch on the GPU: Tessera beside fla's parallel_nsa, in one run.
One JSON line per measurement (bench/report.py makes the table).

Every token picks TOPK blocks of 64 keys at random among the blocks at or before its own
(all of them while fewer exist; fla's benchmark does the same), shared by the 16 query
heads of its KV head's group; each query sees the keys of its blocks up to itself.
TFLOP/s count the pairs actually kept: 4 · pairs · heads · D.

Tessera runs it as plain attention over the group's (token, head) rows: q in fla's
[B, T, HQ, D] layout viewed as [B, 1, T·HQ, D] is one sequence whose query block of HQ
rows is one token, so the token's list is that block's list (block_sparse=(HQ, 64)) and
the causal bound is the mask j <= i // HQ. fla is not part of Tessera: fetch it into the
git-ignored .peers/ (fla/, einops/) and carry that folder.

    python3 bench/nsa_gpu.py [--quick] [--out FILE]
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / ".peers")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import bench_setup, measure_best, measure_tflops, write_row  # noqa: E402

GROUP, D, BLOCK, TOPK = 16, 128, 64, 16
SPEC = tessera.attention(mask_mod=lambda b, h, i, j: j <= i // GROUP,
                         block_sparse=(GROUP, BLOCK))
# One warp per token (its 16 heads are one mma m-tile), as fla's kernel; the table
# reports the fastest. At 97a92b8 16 x 64 tiles with two stages ran at a third of
# 16 x 32's rate; at 68e47fa capping registers for more warps per SM (16 x 16 at 128
# registers: 16 warps, min_blocks=16, one stage) gained nothing (81 vs 85 TFLOP/s).
CONFIGS = [tessera.Config(block_m=16, block_n=bn, num_warps=1, num_stages=2)
           for bn in (16, 32)]


def kernels():
    """The Tessera kernels the benchmark runs (also used by scripts/gpu_precompile.py)."""
    return [tessera.compile(SPEC, head_dim=D, dtype="bfloat16", target="cuda", config=c)
            for c in CONFIGS]


def selections(b, t, generator):
    """[B, T, 1, TOPK] int32: each token's blocks (ascending, -1 padded) and the number
    of (token, key) pairs they keep."""
    import torch
    blocks = -(-t // BLOCK)
    own = torch.arange(t, device="cuda") // BLOCK
    scores = torch.rand(b, t, blocks, device="cuda", generator=generator)
    scores = scores.masked_fill(torch.arange(blocks, device="cuda")[None, :] > own[:, None], -1)
    picked = scores.topk(min(TOPK, blocks), dim=-1)
    chosen = picked.indices.masked_fill(picked.values < 0, blocks).sort(-1).values
    kept = torch.where(chosen < own[:, None], BLOCK,
                       torch.where(chosen == own[:, None], (torch.arange(t, device="cuda")
                                                            % BLOCK + 1)[:, None], 0))
    lists = chosen.masked_fill(chosen == blocks, -1).int()
    if lists.shape[-1] < TOPK:
        pad = torch.full((*lists.shape[:-1], TOPK - lists.shape[-1]), -1, device="cuda",
                         dtype=torch.int32)
        lists = torch.cat([lists, pad], -1)
    return lists[:, :, None, :].contiguous(), int(kept.sum())


def tail_error(out, q, k, v, lists, tokens=32):
    """Relative error against float64 on the last `tokens` tokens (all heads) of batch 0;
    out and q are [B, T, HQ, D], k and v [B, T, 1, D]."""
    import torch
    t = q.shape[1]
    errs = []
    for i in range(t - tokens, t):
        blocks = lists[0, i, 0]
        blocks = blocks[blocks >= 0].long()
        keys = (blocks[:, None] * BLOCK + torch.arange(BLOCK, device="cuda")).flatten()
        keys = keys[keys <= i]
        s = q[0, i].double() @ k[0, keys, 0].double().T * D ** -0.5
        ref = torch.softmax(s, -1) @ v[0, keys, 0].double()
        errs.append(float((out[0, i].double() - ref).norm() / ref.norm()))
    return max(errs)


def main():
    import torch
    args, run_info = bench_setup(__file__)
    ours = kernels()
    try:
        from fla.ops.nsa.parallel import parallel_nsa
    except Exception as e:
        parallel_nsa = None
        print(f"fla unavailable: {type(e).__name__}: {e}")
    generator = torch.Generator(device="cuda").manual_seed(0)
    for t in ([16384] if args.quick else [16384, 65536]):
        b = 65536 // t
        q = torch.randn(b, t, GROUP, D, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(b, t, 1, D, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        lists, pairs = selections(b, t, generator)
        flops = 4 * pairs * GROUP * D
        workload = f"nsa-selected d={D} n={t} b={b} hq={GROUP} h=1 block={BLOCK} k={TOPK}"
        rows_q = q.view(b, 1, t * GROUP, D)
        keys, values = k.transpose(1, 2), v.transpose(1, 2)
        block_lists = lists.view(b, 1, t, TOPK)
        error = lambda out: tail_error(out, q, k, v, lists)  # noqa: E731
        candidates = [(c, lambda kern=kern: kern(rows_q, keys, values,
                                                 block_indices=block_lists).view(b, t, GROUP, D))
                      for c, kern in zip(CONFIGS, ours)]
        rows = [measure_best(candidates, error, flops, 10, workload, run_info)]
        if parallel_nsa is not None:
            long_lists = lists.long()
            rows.append(measure_tflops(
                lambda: parallel_nsa(q, k, v, block_indices=long_lists, block_counts=TOPK,
                                     block_size=BLOCK),
                error, flops, 10, workload, "fla-parallel_nsa", run_info))
        for row in rows:
            if row:
                write_row(args.out, row)


if __name__ == "__main__":
    main()
