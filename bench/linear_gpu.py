"""Lightning Attention-2 (decayed causal linear attention) on the GPU: Tessera beside fla's
chunk_simple_gla (g_gamma = log λ, scale = 1) and OpenNLPLab's lightning_attn2, in one run.
H = 16, D = Dv = 128, bf16, B·N = 65536 (B = 1 past that). Mtok/s = B·N per second.

The peers are not part of Tessera: fetch their repositories into the git-ignored .peers/
(fla/, lightning_attn/, einops/) and carry that folder to the GPU machine.

    python3 bench/linear_gpu.py [--quick] [--out FILE] [--profile]

--profile prints, per N, each launch of the forward and the gradient (split 2 and the
split a kernel compiled without a config picks), timed alone, instead of the table.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / ".peers")]
# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(ROOT / "frontend"))
import tessera  # noqa: E402
from _common import bench_setup, time_ms, write_row  # noqa: E402

H, D, TOKENS = 16, 128, 65536
# Bytes a forward pass must move per token: q, k, v read and o written once, bf16.
BYTES_PER_TOKEN = 4 * 2 * H * D
SPEC = tessera.linear_attention(decay=True)
# `split` programs per (head, batch): two pieces of 64 value columns (each piece's state
# carried as Sᵀ, so that all four products are wgmma), the rest sequence chunks (each
# chunk's own state goes through a workspace, the chunks after it start from their
# decayed sum): 2 pieces alone, or × 2 ... 132 chunks for when batch × heads is small.
# The benchmark times each and reports the fastest as "tessera" (the config is in the
# row). One stage and 128-token blocks over two warpgroups never won (bench/results/
# linear_2a093b7.jsonl) and are left out.
CONFIGS = {f"split={sp} stages=2":
           tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=2, split=sp)
           for sp in (2, 4, 6, 8, 16, 32, 68, 132, 264)}


def kernels():
    """The Tessera kernels the benchmark runs, forward and gradient (also used by
    scripts/gpu_precompile.py)."""
    out = {name: tessera.compile(SPEC, head_dim=D, dtype="bfloat16", target="cuda", config=c)
           for name, c in CONFIGS.items()}
    for kernel in out.values():
        kernel.grad_image()
    return out


def default_split(b, n):
    """The split a kernel compiled without a config runs at this shape (its split-2 base
    kernel is CONFIGS' first, so it comes from the cache), on GPU 0."""
    default = tessera.compile(SPEC, head_dim=D, dtype="bfloat16", target="cuda")
    return default.split_for(b * H, n, 0)


def prefix_error(out, q, k, v, lam, rows=1024):
    """Relative error against float64 on the first `rows` tokens of heads 0 and H-1 of
    batch 0 (a causal output depends only on its prefix); `out` is [B, H, N, Dv]."""
    import torch
    errs = []
    for h in (0, H - 1):
        n = min(rows, q.shape[2])
        qh, kh, vh = (x[0, h, :n].double() for x in (q, k, v))
        t = torch.arange(n, device=q.device, dtype=torch.float64)
        diff = t[:, None] - t[None, :]
        m = torch.where(diff >= 0, float(lam[h]) ** diff.clamp(min=0), torch.zeros_like(diff))
        ref = ((qh @ kh.T) * m) @ vh
        errs.append(((out[0, h, :n].double() - ref).norm() / ref.norm()).item())
    return max(errs)


def profile(ours, lam, lengths):
    """Where the time goes: each launch of the forward and gradient images alone."""
    import torch
    for n in lengths:
        b = max(1, TOKENS // n)
        q, k, v, g = (torch.randn(b, H, n, D, device="cuda", dtype=torch.bfloat16)
                      for _ in range(4))
        extras = [torch.empty(b, H, n, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
        default = default_split(b, n)
        for name in dict.fromkeys(("split=2 stages=2", f"split={default} stages=2")):
            kernel = ours[name]
            state = torch.empty(b, H, D, D, device="cuda")
            out = torch.empty_like(v)
            images = (("fwd", kernel._image, [q, k, v, lam, out, state]),
                      ("grad", kernel.grad_image(), [q, k, v, g, lam, *extras]))
            for kind, image, args in images:
                for launch, grid, ms in image.profile(args, 5):
                    print(f"n={n} b={b} {name} {kind}: {launch:<32} grid {str(grid):<14} "
                          f"{ms:8.3f} ms", flush=True)


def main():
    import torch
    args, run_info = bench_setup(__file__, profile=True)
    ours = kernels()
    lam = torch.from_numpy(tessera.alibi_decay(H)).cuda()
    if args.profile:
        profile(ours, lam, [1024, 65536] if args.quick else [1024, 16384, 65536])
        return
    peers = {}
    try:
        from fla.ops.simple_gla import chunk_simple_gla
        peers["fla"] = chunk_simple_gla
    except Exception as e:
        print(f"fla unavailable: {type(e).__name__}: {e}")
    try:
        from lightning_attn.ops import lightning_attn2
        peers["lightning_attn2"] = lightning_attn2
    except Exception as e:
        print(f"lightning_attn2 unavailable: {type(e).__name__}: {e}")
    lengths = [1024, 16384, 262144] if args.quick else [1024, 4096, 16384, 65536, 262144]
    for n in lengths:
        b = max(1, TOKENS // n)
        tokens = b * n
        # Unit rows scaled by D^-1/2, as a model feeds them.
        q, k = ((torch.randn(b, H, n, D, device="cuda") * D ** -0.5).bfloat16() for _ in range(2))
        v = torch.randn(b, H, n, D, device="cuda", dtype=torch.bfloat16)
        # The fastest config for this shape (each timed once here, then again below).
        forward_ms = {c: time_ms(lambda c=c: ours[c](q, k, v, decay=lam), 5) for c in ours}
        best = min(forward_ms, key=forward_ms.get)
        # fwd+bwd through torch autograd (the gradient kernel), as the peers run it; its
        # own fastest config.
        qg, kg, vg = (x.detach().clone().requires_grad_() for x in (q, k, v))
        grad = torch.randn_like(v)
        train_ms = {c: time_ms(lambda c=c: ours[c](qg, kg, vg, decay=lam)[0].backward(grad), 3)
                    for c in ours}
        best_train = min(train_ms, key=train_ms.get)
        # Every config's time (what a default split for the shape should follow).
        default = default_split(b, n)
        print(f"n={n} b={b} default split={default}; configs, fwd ms: "
              + ", ".join(f"{c} {ms:.3f}" for c, ms in forward_ms.items())
              + "; fwd+bwd ms: " + ", ".join(f"{c} {ms:.3f}" for c, ms in train_ms.items()),
              flush=True)
        impls = {"tessera": (lambda: ours[best](q, k, v, decay=lam)[0],
                             lambda: ours[best_train](qg, kg, vg, decay=lam)[0])}
        if "fla" in peers:
            # fla's layout is [B, T, H, D]: transposed copies, made outside the timing.
            qt, kt, vt = (x.transpose(1, 2).contiguous().requires_grad_() for x in (q, k, v))
            g_gamma = torch.log(lam)

            def fla_fwd():
                return peers["fla"](qt, kt, vt, g_gamma=g_gamma, scale=1.0,
                                    output_final_state=True)[0]
            impls["fla"] = (lambda: fla_fwd().transpose(1, 2), fla_fwd)
        if "lightning_attn2" in peers:
            slopes = (-torch.log(lam)).reshape(H, 1, 1)
            ql, kl, vl = (x.detach().clone().requires_grad_() for x in (q, k, v))
            la = lambda: peers["lightning_attn2"](ql, kl, vl, slopes)  # noqa: E731
            impls["lightning_attn2"] = (la, la)
        for impl, (fwd, train) in impls.items():
            passes = [("fwd", fwd)]
            if train is not None:
                grad = torch.randn(b, n, H, D, device="cuda", dtype=torch.bfloat16) \
                    if impl == "fla" else torch.randn_like(v)
                passes.append(("fwd+bwd", lambda train=train, grad=grad: train().backward(grad)))
            for kind, fn in passes:
                try:
                    err = prefix_error(fwd().detach(), q, k, v, lam) if kind == "fwd" else None
                    ms = time_ms(fn, 10 if tokens <= 65536 else 5)
                except Exception as e:  # a peer that cannot run this shape
                    print(f"{impl} {kind} n={n}: {type(e).__name__}: {e}"[:300])
                    continue
                rate = tokens / ms / 1e3
                write_row(args.out, {
                    "workload": f"linear-la2-{kind} d={D} n={n} b={b} h={H}", "impl": impl,
                    "ms": round(ms, 4), "rate": round(rate, 2), "rate_unit": "Mtok/s",
                    "rel_err": None if err is None else round(err, 6),
                    "byte_floor_fraction": round(rate / (4.24e12 / BYTES_PER_TOKEN / 1e6), 3)
                    if kind == "fwd" else None,
                    "config": (best if kind == "fwd" else best_train) if impl == "tessera"
                    else None,
                    **run_info})


if __name__ == "__main__":
    main()
