"""The GPU softmax-backward cases (issue 24), shared by test_softmax_grad_gpu.py and
scripts/gpu_precompile.py (which compiles their forward and gradient images for a GPU
machine without the compiler). Kernels take the GPU default config (tessera.compile's)."""
import dataclasses
import functools

import tessera
from tessera.gpu import default_grad_config

import cases

SLOPES = tessera.Buffer("slopes", "float32")
BLOCKS = (64, 64)
HEADS = 4


def alibi(s, b, h, i, j):
    return s + SLOPES[h] * (j - i).float()


# name -> (spec, reference keywords: causal, window, score_mod (torch, on [B, H, Nq, Nk]
# scores with h, i, j index tensors and the tables), mask (i, j, tables) -> bool)
SPECS = {
    "full": (tessera.attention(), {}),
    "causal": (tessera.attention(causal=True), {"causal": True}),
    "window": (tessera.attention(causal=True, window=cases.WINDOW),
               {"causal": True, "window": cases.WINDOW}),
    "alibi": (tessera.attention(causal=True, score_mod=alibi),
              {"causal": True,
               "score_mod": lambda s, h, i, j, t: s + t["slopes"].double()[h] * (j - i)}),
    "softcap": (tessera.attention(score_mod=cases.softcap),
                {"score_mod": lambda s, h, i, j, t:
                 cases.SOFTCAP * (s / cases.SOFTCAP).tanh()}),
    "document": (cases.SPECS["document"][0],
                 {"causal": True,
                  "mask": lambda i, j, t: t["document_id"][i] == t["document_id"][j]}),
    "blocks": (tessera.attention(block_sparse=BLOCKS), {}),
}


# Cases with a learnable table (the gradient module with grad_tables): a relative-position
# bias rel[h, i - j + MAX_REL - 1] (|i - j| < MAX_REL), and ALiBi's per-head slopes.
MAX_REL = 1024
REL = tessera.Buffer("rel", dtype="float32", rank=2)


def relative_bias(s, b, h, i, j):
    return s + REL[h, i - j + MAX_REL - 1]


TABLE_SPECS = {"bias": (tessera.attention(causal=True, score_mod=relative_bias), "rel"),
               "slopes": (SPECS["alibi"][0], "slopes")}


def tables_for(name, heads, n, device):
    """The run-time tables of a case (ALiBi's slopes, document ids)."""
    import torch
    if name == "alibi":
        return {"slopes": -(2.0 ** (-8.0 * torch.arange(1, heads + 1, device=device) / heads))}
    return cases.buffers_for(name, n, device)


def with_dq_atomic(k, dq_atomic):
    """`k` with its backward's default config, plus grad_dq_atomic where asked."""
    if dq_atomic:
        k.grad_config = default_grad_config(k.head_dim, k.value_dim, k.chip, dq_atomic=True)
    return k


@functools.lru_cache(maxsize=None)
def kernel(name, head_dim, dq_atomic=False):
    return with_dq_atomic(tessera.compile(SPECS[name][0], head_dim=head_dim,
                                          dtype=cases.DTYPE, target="cuda"), dq_atomic)


# List walks whose backward is also compiled at one stage (nothing prefetched: each
# list entry read an iteration early, tessera-tgpu-read-ahead).
ONE_STAGE_LISTS = ("blocks", "document")


@functools.lru_cache(maxsize=None)
def one_stage_kernel(name, head_dim):
    """`name`'s kernel with its backward at num_stages = 1."""
    k = tessera.compile(SPECS[name][0], head_dim=head_dim, dtype=cases.DTYPE, target="cuda")
    k.grad_config = dataclasses.replace(default_grad_config(k.head_dim, k.value_dim, k.chip),
                                        num_stages=1)
    return k


@functools.lru_cache(maxsize=None)
def table_kernel(name, head_dim, dq_atomic=False):
    if name == "slopes":
        return kernel("alibi", head_dim, dq_atomic)
    return with_dq_atomic(tessera.compile(TABLE_SPECS[name][0], head_dim=head_dim,
                                          dtype=cases.DTYPE, target="cuda"), dq_atomic)


def kernels():
    """Every case's kernel with its gradient image compiled (or found in the cache), and
    the table cases' gradient images with their table's gradient."""
    out = {}
    for atomic in (False, True):
        for name in SPECS:
            for d in cases.HEAD_DIMS:
                out[name, d, atomic] = kernel(name, d, atomic)
                out[name, d, atomic].grad_image()
        for name, (_, table) in TABLE_SPECS.items():
            for d in cases.HEAD_DIMS:
                out[name + "_table", d, atomic] = table_kernel(name, d, atomic)
                out[name + "_table", d, atomic].grad_image((table,))
    for name in ONE_STAGE_LISTS:
        for d in cases.HEAD_DIMS:
            out[name + "_one_stage", d] = one_stage_kernel(name, d)
            out[name + "_one_stage", d].grad_image()
    return out
