"""The GPU test cases, shared by the tests and by scripts/gpu_precompile.py (which fills
the kernel cache on a machine with the compiler, for a GPU machine without it)."""
import tessera

WINDOW = 256
SOFTCAP = 30.0


def softcap(s, b, h, i, j):
    return SOFTCAP * tessera.tanh(s / SOFTCAP)


# name -> (spec, reference keyword arguments)
SPECS = {
    "full": (tessera.attention(), {}),
    "causal": (tessera.attention(causal=True), {"causal": True}),
    "window": (tessera.attention(causal=True, window=WINDOW), {"causal": True, "window": WINDOW}),
    "softcap": (tessera.attention(score_mod=softcap),
                {"score_mod": lambda s, b, h, i, j: SOFTCAP * __import__("numpy").tanh(s / SOFTCAP)}),
    # Two 16-row m-tiles per warp (block_m = 2 x 16 x num_warps).
    "causal-2m": (tessera.attention(causal=True), {"causal": True}),
}

HEAD_DIMS = (64, 128)
DTYPE = "bfloat16"


def config_for(head_dim, name=""):
    block_m = 128 if name.endswith("-2m") else 64
    return tessera.Config(block_m=block_m, block_n=64 if head_dim <= 128 else 32, num_warps=4)


def kernels():
    """Every (name, head_dim) kernel the GPU tests use, compiled (or loaded from cache)."""
    out = {}
    for name, (spec, _) in SPECS.items():
        for d in HEAD_DIMS:
            out[name, d] = tessera.compile(spec, head_dim=d, dtype=DTYPE, target="cuda",
                                           config=config_for(d, name))
    return out
