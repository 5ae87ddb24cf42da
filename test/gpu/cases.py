"""The GPU test cases, shared by the tests and by scripts/gpu_precompile.py (which fills
the kernel cache on a machine with the compiler, for a GPU machine without it)."""
import dataclasses
import functools

import tessera

WINDOW = 256
SOFTCAP = 30.0
PREFIX = 64
DOC = tessera.Buffer("document_id")


def softcap(s, b, h, i, j):
    return SOFTCAP * tessera.tanh(s / SOFTCAP)


# name -> (spec, reference keyword arguments)
SPECS = {
    "full": (tessera.attention(), {}),
    "causal": (tessera.attention(causal=True), {"causal": True}),
    "window": (tessera.attention(causal=True, window=WINDOW), {"causal": True, "window": WINDOW}),
    "softcap": (tessera.attention(score_mod=softcap),
                {"score_mod": lambda s, b, h, i, j: SOFTCAP * __import__("numpy").tanh(s / SOFTCAP)}),
    # Two 16-row m-tiles per warp (block_m = 2 x 16 x num_warps): mma.sync on every chip.
    "causal-2m": (tessera.attention(causal=True), {"causal": True}),
    # Two warpgroups, 128-key tiles double-buffered (the benchmark's wgmma shape).
    "causal-2wg": (tessera.attention(causal=True), {"causal": True}),
    # One stage: operands copied and used in the same iteration.
    "full-1stage": (tessera.attention(), {}),
    # mask_mod: classified into per-query-tile lists of kept tiles, then walked.
    "prefix-lm": (tessera.attention(mask_mod=lambda b, h, i, j: (j <= i) | (j < PREFIX)),
                  {"mask_mod": lambda i, j: (j <= i) | (j < PREFIX)}),
    "document": (tessera.attention(causal=True,
                                   mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
                 {"causal": True, "mask_mod": lambda i, j, document_id: document_id[i] == document_id[j]}),
}


def buffers_for(name, n, device):
    """The run-time tables a case takes: document ids for `n` tokens (five documents of
    uneven lengths)."""
    if name != "document":
        return {}
    import torch
    ends = torch.tensor([97, 400, 1500, 3000], device=device)
    return {"document_id": torch.bucketize(torch.arange(n, device=device), ends,
                                           right=True).int()}

HEAD_DIMS = (64, 128)
DTYPE = "bfloat16"


def config_for(head_dim, name=""):
    if name.endswith("-2wg"):
        return tessera.Config(block_m=128, block_n=128, num_warps=8, num_stages=2)
    block_m = 128 if name.endswith("-2m") else 64
    return tessera.Config(block_m=block_m, block_n=64 if head_dim <= 128 else 32, num_warps=4,
                          num_stages=1 if name.endswith("-1stage") else 2)


def kernels():
    """Every (name, head_dim) kernel the GPU tests use, compiled (or loaded from cache)."""
    out = {}
    for name, (spec, _) in SPECS.items():
        for d in HEAD_DIMS:
            out[name, d] = tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                           config=config_for(d, name))
    return out


# Linear attention: name -> (spec, config by head dim). Lightning Attention-2 is the
# decayed causal form; D = 128 splits the value columns over 4 programs (the shape that
# fits registers and shared memory), D = 64 runs whole and split.
LINEAR_SPECS = {
    "la2": tessera.linear_attention(decay=True),
    "la2-split": tessera.linear_attention(decay=True),
    "causal": tessera.linear_attention(),
    "elu": tessera.linear_attention(feature_map="elu_plus_one", scale=0.5),
    "la2-init": tessera.linear_attention(decay=True, initial_state=True),
    "noncausal": tessera.linear_attention(causal=False),
    # 128-token blocks over 8 warps, one stage.
    "la2-8w": tessera.linear_attention(decay=True),
    # 4 sequence chunks per value piece, each recomputing its starting state.
    "la2-chunks": tessera.linear_attention(decay=True, initial_state=True),
}


def linear_config(head_dim, name):
    if name.endswith("-8w"):
        return tessera.Config(block_m=128, block_n=64, num_warps=8, num_stages=1, split=8)
    if name.endswith("-chunks"):  # value pieces of 16 columns x 4 chunks
        return tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=2,
                              split=4 * head_dim // 16)
    split = 4 if head_dim == 128 or name.endswith("-split") else 1
    return tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=2, split=split)


def linear_kernels():
    out = {}
    for name, spec in LINEAR_SPECS.items():
        for d in HEAD_DIMS:
            if name.endswith("-8w") and d < 128:
                continue  # a D = 64 state does not spread over 8 warps of 16 rows
            out[name, d] = tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                           config=linear_config(d, name))
    return out


# Gradients on the GPU (autograd through the gradient kernel) for these specs.
LINEAR_GRAD_NAMES = ("la2", "elu", "la2-init", "la2-chunks")


def linear_grad_kernels():
    kernels = linear_kernels()
    for name in LINEAR_GRAD_NAMES:
        for d in HEAD_DIMS:
            kernels[name, d].grad_image()
    return {(name, d): kernels[name, d] for name in LINEAR_GRAD_NAMES for d in HEAD_DIMS}


# A kernel compiled without a config picks its split per call from B·H and N: these
# (B, H, N) shapes take pieces alone, and pieces times sequence chunks.
SHAPED_LINEAR_SHAPES = [(2, 2, 1000), (1, 2, 3000), (1, 4, 9000)]


@functools.lru_cache(maxsize=None)
def linear_shaped_kernel():
    """(Lightning Attention-2 at D = 128 with no config, its kernel per test shape, forward
    and gradient compiled), made once for every test that asks."""
    kernel = tessera.compile(LINEAR_SPECS["la2"], head_dim=128, dtype=DTYPE, target="cuda")
    shaped = [kernel.for_shape(b * h, n) for b, h, n in SHAPED_LINEAR_SHAPES]
    for k in shaped:
        k.grad_image()
    return kernel, shaped


# Decode steps after a prefill by the spec of the same name without "-decode".
LINEAR_DECODE_SPECS = {
    "la2-decode": tessera.linear_decode(decay=True),
    "elu-decode": tessera.linear_decode(feature_map="elu_plus_one", scale=0.5),
}


def linear_decode_kernels():
    return {(name, d): tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                       config=linear_config(d, name))
            for name, spec in LINEAR_DECODE_SPECS.items() for d in HEAD_DIMS}


# Block-sparse softmax (key-block lists per query block, as a top-k selection or a
# FlexAttention BlockMask gives them): name -> (spec, config).
BLOCK_SPARSE = {
    # The benchmark's shape: 128 x 128 blocks, two warpgroups, wgmma.
    "blocks-causal": (tessera.attention(causal=True, block_sparse=(128, 128)),
                      tessera.Config(block_m=128, block_n=128, num_warps=8, num_stages=2)),
    # One stage (the benchmark's fastest at D = 128): list entries read a tile ahead.
    "blocks-1stage": (tessera.attention(causal=True, block_sparse=(128, 128)),
                      tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=1)),
    # Per-token lists (block_q = 1: MoBA / NSA selections): the union of a tile's lists
    # walked by a while loop, each block masked to the rows that listed it.
    "tokens-causal": (tessera.attention(causal=True, block_sparse=(1, 64)),
                      tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=1)),
    # Two key tiles per listed block, non-causal, one warpgroup.
    "blocks-2tiles": (tessera.attention(block_sparse=(64, 128)),
                      tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=2)),
}


def block_sparse_kernels():
    return {(name, d): tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                       config=config)
            for name, (spec, config) in BLOCK_SPARSE.items() for d in HEAD_DIMS}



# Warp specialisation (Config.warp_specialize with tma, issue 25): every softmax and
# block-list case. Those in NOT_SPLIT keep their kernel without a producer: causal-2m
# (mma.sync: no TMA) and tokens-causal (a while loop over per-token lists: cp.async, TMA
# does not copy there). Walks whose tiles are read only in branches (a mask_mod's
# classified tiles, block lists' skipped entries) are split: a skipped slot goes back
# once its fill has landed.
WARP_SPECIALIZED = list(SPECS) + list(BLOCK_SPARSE)
NOT_SPLIT = ("causal-2m", "tokens-causal")


def warp_specialized_config(name, head_dim):
    config = BLOCK_SPARSE[name][1] if name in BLOCK_SPARSE else config_for(head_dim, name)
    return dataclasses.replace(config, tma=True, warp_specialize=True)


def warp_specialized_kernels():
    out = {}
    for name in WARP_SPECIALIZED:
        spec = BLOCK_SPARSE[name][0] if name in BLOCK_SPARSE else SPECS[name][0]
        for d in HEAD_DIMS:
            out[name, d] = tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                           config=warp_specialized_config(name, d))
    return out

# Programs of several attn ops on the GPU (intermediates in workspaces):
# name -> (program spec, config).
def _split_merge(q, k1, v1, k2, v2):
    """Attention over two key sets, merged through L: attention over both."""
    o1, l1 = _ATTEND(q, k1, v1)
    o2, l2 = _ATTEND(q, k2, v2)
    return tessera.merge(o1, l1, o2, l2)[0]


def _permuted(q, k, v, perm):
    """Queries gathered by a permutation, attended, scattered back: plain attention."""
    o, _ = _ATTEND(tessera.gather_rows(q, perm), k, v)
    return tessera.scatter_rows(o, perm)


def _pooled(k):
    return tessera.compress(k, block=64)


_ATTEND = tessera.attention()
_PROGRAM_CONFIG = tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=2)
PROGRAMS = {
    "split-merge": tessera.program(_split_merge, q="B H N D", k1="B G M D", v1="B G M D",
                                   k2="B G M D", v2="B G M D"),
    "permuted": tessera.program(_permuted, q="B H N D", k="B G M D", v="B G M D",
                                perm=("N", "int32")),
    "pooled": tessera.program(_pooled, k="B G N D"),
}


def program_kernels():
    return {(name, d): tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                       config=_PROGRAM_CONFIG)
            for name, spec in PROGRAMS.items() for d in HEAD_DIMS}


def _compressed_branch(q, k, v):
    """NSA's compression branch: mean-pooled blocks of 64, each visible to the queries at
    or after its last key."""
    return _COMPRESSED(q, tessera.compress(k, block=64), tessera.compress(v, block=64))[0]


_COMPRESSED = tessera.attention(mask_mod=lambda b, h, i, j: j * 64 + 63 <= i)
PROGRAMS["nsa-compressed"] = tessera.program(_compressed_branch, q="B H N D", k="B G N D",
                                             v="B G N D")


_CAUSAL, _WINDOW = tessera.attention(causal=True), tessera.attention(causal=True, window=100)


def _gated(q, k, v, gates):
    """NSA's combination: per-token gates over three branches (here full, causal and
    windowed attention)."""
    return tessera.gate(gates, _ATTEND(q, k, v)[0], _CAUSAL(q, k, v)[0], _WINDOW(q, k, v)[0])


PROGRAMS["gated"] = tessera.program(_gated, q="B H N D", k="B G N D", v="B G N D",
                                    gates=("B H N 3", "float32"))


def _nsa(q, k, v, gates):
    """NSA whole (examples/nsa.py's shape): compression, top-16 selection of 64-blocks
    shared by the GQA group, a 128-token window, per-token gates."""
    k_cmp, v_cmp = tessera.compress(k, block=64), tessera.compress(v, block=64)
    o_cmp, _ = _COMPRESSED(q, k_cmp, v_cmp)
    chosen = tessera.block_topk(q, k_cmp, block_q=1, block_k=64, k=16, causal=True,
                                include_current=True, group_heads=True, score="softmax")
    o_slc, _ = _SELECTED(q, k, v, block_indices=chosen)
    o_win, _ = _WINDOW_128(q, k, v)
    return tessera.gate(gates, o_cmp, o_slc, o_win)


_SELECTED = tessera.attention(causal=True, block_sparse=(1, 64))
_WINDOW_128 = tessera.attention(causal=True, window=128)
PROGRAMS["nsa"] = tessera.program(_nsa, q="B H N D", k="B G N D", v="B G N D",
                                  gates=("B H N 3", "float32"))


def _moba(q, k, v):
    """MoBA whole: mean-pooled 64-blocks as gate keys, top-8 per token with the current
    block forced, selected-block attention."""
    chosen = tessera.block_topk(q, tessera.compress(k, block=64), block_q=1, block_k=64, k=8,
                                causal=True, include_current=True)
    return _SELECTED(q, k, v, block_indices=chosen)[0]


PROGRAMS["moba"] = tessera.program(_moba, q="B H N D", k="B G N D", v="B G N D")


# HyperAttention whole (examples/hyperattention.py): its geometry is fixed per length.
HYPER_BLOCK, HYPER_SAMPLES, HYPER_BITS = 128, 32, 7
HYPER_LENGTHS = (1, 17, 1000)


def hyperattention_example():
    import sys
    from pathlib import Path
    examples = str(Path(__file__).resolve().parents[2] / "examples")
    if examples not in sys.path:
        sys.path.append(examples)
    import hyperattention
    return hyperattention


def hyper_kernels(lengths=HYPER_LENGTHS, dims=HEAD_DIMS):
    hyperattention = hyperattention_example()
    return {(n, d): tessera.compile(hyperattention.hyper_spec(
                n, n, block=HYPER_BLOCK, samples=HYPER_SAMPLES, bits=HYPER_BITS),
                head_dim=d, dtype=DTYPE, target="cuda", config=_PROGRAM_CONFIG)
            for n in lengths for d in dims}


# Causal HyperAttention: N = 2000 halves evenly twice down to 500 (exact there).
HYPER_CAUSAL_N, HYPER_MIN_SEQ_LEN = 2000, 500


def hyper_causal_kernels(dims=HEAD_DIMS):
    """Per head dim: the non-causal program at each quadrant size, the exact causal
    kernel of the leaves and the merge."""
    merge = hyperattention_example().merge_spec()
    return {d: {**{n: k for (n, _), k in hyper_kernels((1000, 500), (d,)).items()},
                "exact": tessera.compile(tessera.attention(causal=True), head_dim=d,
                                         dtype=DTYPE, target="cuda"),
                "merge": tessera.compile(merge, head_dim=d, dtype=DTYPE, target="cuda")}
            for d in dims}
