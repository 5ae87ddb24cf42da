"""Mask work of the softmax backward under document masking (issue 24), counted on the
host: how many (query, key) elements each grid evaluates the mask_mod on, beside the
product work of the kept tiles, with the tile lists (passes/SoftmaxGradClassification.cpp)
and without them (every causal tile pair evaluated in both gradient grids). The tiles
follow bench/softmax_bwd_gpu.py's document layout (mask_mod_gpu.document_ids: lengths
256-3840) and the default backward config (64 x 64 tiles; dK / dV query tiles
`--grad-query-tile`, 16 at D = 128 on sm_90a). Nothing runs on a GPU.

    python3 bench/grad_mask_work.py [--n 65536] [--heads 16] [--d 128] [--grad-query-tile 16]
"""
import argparse

import numpy as np


def document_ids(n, rng):
    lengths = rng.integers(256, 3841, size=n // 256)
    ends = np.cumsum(lengths)
    ends = ends[ends < n]
    return np.searchsorted(ends, np.arange(n), side="right")


def tile_classes(doc, rows, keys):
    """[query tiles, key tiles] classes of causal document masking: 0 empty, 1 partial,
    2 whole (every pair kept), from each tile's document ranges (docs ascend)."""
    n = len(doc)
    qt, kt = -(-n // rows), -(-n // keys)
    q_first = doc[np.minimum(np.arange(qt) * rows, n - 1)]
    q_last = doc[np.minimum(np.arange(qt) * rows + rows - 1, n - 1)]
    k_first = doc[np.minimum(np.arange(kt) * keys, n - 1)]
    k_last = doc[np.minimum(np.arange(kt) * keys + keys - 1, n - 1)]
    i0 = (np.arange(qt) * rows)[:, None]
    i1 = np.minimum(np.arange(qt) * rows + rows - 1, n - 1)[:, None]
    j0 = (np.arange(kt) * keys)[None, :]
    j1 = np.minimum(np.arange(kt) * keys + keys - 1, n - 1)[None, :]
    causal_any = j0 <= i1
    causal_all = j1 <= i0
    overlap = (q_first[:, None] <= k_last[None, :]) & (k_first[None, :] <= q_last[:, None])
    same_one = (q_first[:, None] == q_last[:, None]) & (k_first[None, :] == k_last[None, :]) & (
        q_first[:, None] == k_first[None, :])
    cls = np.where(causal_any & overlap, 1, 0)
    cls = np.where(causal_any & same_one & causal_all, 2, cls)
    # Tiles the documents' id ranges leave undecided (overlapping, not one document).
    undecided = causal_any & overlap & ~same_one
    return cls, causal_any, undecided


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=65536)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--grad-query-tile", type=int, default=16)
    ap.add_argument("--batch", type=int, default=0, help="default: 65536 // n")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    doc = document_ids(a.n, np.random.default_rng(a.seed))
    bm = bn = 64
    cls, causal, undecided = tile_classes(doc, bm, bn)
    kv_cls, _, _ = tile_classes(doc, a.grad_query_tile, bn)
    H, D, qk = a.heads * (a.batch or max(1, 65536 // a.n)), a.d, a.grad_query_tile
    # (H counts batch x heads: one document layout for the batch, as the benchmark.)
    # Classification: one table for every head (the mask reads neither batch nor head).
    # Each causal tile bounds doc over its rows and keys (two 64-entry gathers, counted as
    # 2 x 64 elements); only tiles those ranges leave undecided count element-wise.
    classify = int(causal.sum()) * 2 * max(bm, bn) + int(undecided.sum()) * bm * bn
    classify_before = int(causal.sum()) * bm * bn
    dkdv = int((kv_cls == 1).sum()) * qk * bn * H  # partial tiles only
    dq = int((cls == 1).sum()) * bm * bn * H
    before = 2 * int(causal.sum()) * bm * bn * H  # both grids, every causal tile pair
    kept = int((cls > 0).sum())
    # Executed products: S, dP, dV, dK in the dK / dV grid, S, dP, dQ again in the dQ grid.
    products = kept * bm * bn * D * 2 * 7 * H
    print(f"N = {a.n}, B x H = {H}, D = {D}, {doc.max() + 1} documents; 64 x 64 tiles: "
          f"{int(causal.sum())} causal, {kept} kept ({int((cls == 2).sum())} whole); "
          f"{int((kv_cls > 0).sum())} kept {qk} x 64 dK/dV tiles")
    print(f"mask elements evaluated: classification {classify:.3e} (element-wise on every "
          f"causal tile: {classify_before:.3e}), dK/dV walk {dkdv:.3e}, "
          f"dQ walk {dq:.3e}; total {classify + dkdv + dq:.3e} (before: {before:.3e}, "
          f"{before / (classify + dkdv + dq):.1f}x more)")
    print(f"product flops of kept tiles: {products:.3e} "
          f"({products / (classify + dkdv + dq):.0f} per mask element evaluated)")


if __name__ == "__main__":
    main()
