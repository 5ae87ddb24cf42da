"""The softmax backward on the GPU (issue 24): dQ, dK, dV of the generated gradient
kernels against a float64 backward (torch autograd of the float64 forward, on the GPU),
beside torch SDPA's own gradient error (bf16, autograd) on the same inputs; torch autograd
through the kernel; the same bits every run. Skipped where there is no GPU."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))
import cases  # noqa: E402
import grad_cases  # noqa: E402
import tessera  # noqa: E402
from tessera.reference import relative_error  # noqa: E402
from tessera.reference_grad import attention_grad  # noqa: E402
from test_block_sparse_gpu import listed_keys, random_lists  # noqa: E402

FLOOR = 2e-3   # bf16 rounding of the gradients themselves
FIXED = 1e-2   # where SDPA cannot express the case exactly
ZERO = 1e-3    # absolute, where the float64 gradient is 0 (one key: dS = 0)


def keep_mask(name, nq, nk, tables, lists):
    """[B or 1, H or 1, Nq, Nk] bool: the pairs the case keeps (None: all)."""
    _, ref = grad_cases.SPECS[name]
    i = torch.arange(nq, device="cuda")[:, None]
    j = torch.arange(nk, device="cuda")[None, :]
    keep = torch.ones(nq, nk, dtype=torch.bool, device="cuda")
    if ref.get("causal"):
        keep &= j <= i + nk - nq
    if ref.get("window"):
        keep &= j > i + nk - nq - ref["window"]
    if "mask" in ref:
        keep &= ref["mask"](i, j, tables)
    keep = keep[None, None]
    if lists is not None:
        keep = keep & listed_keys(lists, grad_cases.BLOCKS, nq, nk)
    return keep


def reference(name, q, k, v, grad_out, keep, tables):
    """(o, lse, dq, dk, dv) in float64: torch autograd of the float64 forward; rows with
    no kept key give o = 0 and zero gradients."""
    q, k, v = (x.double().requires_grad_() for x in (q, k, v))
    H, Hk, D = q.shape[1], k.shape[1], q.shape[3]
    k2, v2 = (x.repeat_interleave(H // Hk, dim=1) for x in (k, v))  # autograd sums groups
    s = (q @ k2.transpose(-1, -2)) * D ** -0.5
    score_mod = grad_cases.SPECS[name][1].get("score_mod")
    if score_mod is not None:
        h = torch.arange(H, device="cuda")[:, None, None]
        i = torch.arange(q.shape[2], device="cuda")[:, None]
        j = torch.arange(k.shape[2], device="cuda")[None, :]
        s = score_mod(s, h, i, j, tables)
    keep = keep.expand_as(s)
    rows = keep.any(-1, keepdim=True)
    s = torch.where(rows, s.masked_fill(~keep, float("-inf")), 0.0)
    o = torch.softmax(s, -1) * rows @ v2
    o.backward(grad_out.double())
    lse = torch.where(rows[..., 0], s.logsumexp(-1), float("nan")).detach()
    return o.detach(), lse, q.grad, k.grad, v.grad


def error(x, ref):
    """Relative error in the 2-norm; absolute where the reference is 0."""
    x = x.double()
    if not torch.isfinite(x).all():
        return float("inf")
    norm = ref.norm().item()
    return ((x - ref).norm() / (norm if norm > 0 else 1.0)).item()


def sdpa_errors(name, q, k, v, grad_out, keep, tables, refs):
    """SDPA's (dq, dk, dv) errors in bf16 on the same inputs, the case given as a mask
    (ALiBi as a bf16 bias: not exact); None where it cannot express the case or gives NaN
    (rows with no kept key)."""
    if name == "softcap":
        return None
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    H, Hk = q.shape[1], k.shape[1]
    k2, v2 = (x.repeat_interleave(H // Hk, dim=1) for x in (k, v))
    mask = keep
    if name == "alibi":
        i = torch.arange(q.shape[2], device="cuda")[:, None]
        j = torch.arange(k.shape[2], device="cuda")[None, :]
        bias = tables["slopes"][:, None, None] * (j - i)
        mask = bias[None].masked_fill(~keep, float("-inf")).to(q.dtype)
    o = torch.nn.functional.scaled_dot_product_attention(q, k2, v2, attn_mask=mask)
    o.backward(grad_out)
    errs = [error(x.grad, r) for x, r in zip((q, k, v), refs)]
    return None if any(e == float("inf") for e in errs) else errs


SHAPES = [  # nq, nk, heads, key heads
    (1, 1, 4, 4), (17, 17, 4, 2), (1000, 1000, 4, 1), (4097, 4097, 4, 2),
    (100, 300, 4, 4), (300, 100, 4, 2)]


@pytest.mark.parametrize("dq_atomic", [False, True])
@pytest.mark.parametrize("name", list(grad_cases.SPECS))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,h,hk", SHAPES)
def test_matches_float64(name, d, nq, nk, h, hk, dq_atomic):
    """Every spec and shape (ragged, Nq != Nk, GQA), with the dQ grid and with dQ summed
    by the dK / dV grid (grad_dq_atomic)."""
    check_matches_float64(name, d, nq, nk, h, hk, grad_cases.kernel(name, d, dq_atomic),
                          " dq_atomic" if dq_atomic else "")


@pytest.mark.parametrize("name", grad_cases.ONE_STAGE_LISTS)
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,h,hk", [(17, 17, 4, 2), (1000, 1000, 4, 1)])
def test_one_stage_lists(name, d, nq, nk, h, hk):
    """The backward's list walks at one stage: nothing is prefetched, so each list
    entry is read an iteration early and carried (tessera-tgpu-read-ahead)."""
    check_matches_float64(name, d, nq, nk, h, hk, grad_cases.one_stage_kernel(name, d),
                          " one stage")


def check_matches_float64(name, d, nq, nk, h, hk, kernel, label):
    """`kernel`'s gradients (outputs poisoned first) against float64, within SDPA's own
    error where SDPA expresses the case exactly."""
    torch.manual_seed(nq * 7 + nk + d)
    B = 2 if nq * nk < 10 ** 6 else 1
    q = torch.randn(B, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(B, hk, nk, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    grad_out = torch.randn(B, h, nq, d, device="cuda", dtype=torch.bfloat16)
    tables = grad_cases.tables_for(name, h, max(nq, nk), "cuda")
    lists = None
    if name == "blocks":
        gen = torch.Generator().manual_seed(nq + d)
        lists = random_lists(gen, B, h, nq, nk, grad_cases.BLOCKS, 4, ascending=nq == 1000)
        tables = {"block_indices": lists}
    o, lse = kernel(q, k, v, return_lse=True, **tables)
    out = tuple(torch.full_like(x, float("nan")) for x in (q, k, v))  # poisoned
    got = kernel.grad(q, k, v, o, lse, grad_out, out=out, **tables)
    torch.cuda.synchronize()
    assert all(a is b for a, b in zip(got, out))
    keep = keep_mask(name, nq, nk, tables, lists)
    ref_o, ref_lse, *refs = reference(name, q, k, v, grad_out, keep, tables)
    rows = torch.isfinite(ref_lse)
    lse_err = (lse[rows].double() - ref_lse[rows]).abs().max().item() if rows.any() else 0.0
    ours = [error(x, r) for x, r in zip(got, refs)]
    peer = sdpa_errors(name, q, k, v, grad_out, keep, tables, refs)
    print(f"{name}{label} d={d} nq={nq} nk={nk} h={h}/{hk}: "
          f"dq dk dv tessera "
          f"{' '.join(f'{e:.2e}' for e in ours)} sdpa "
          f"{' '.join(f'{e:.2e}' for e in peer) if peer else None} (lse {lse_err:.1e}, "
          f"o {error(o, ref_o):.1e})")
    assert lse_err <= 1e-2, f"lse off by {lse_err:.2e} (the backward recomputes P from it)"
    exact = peer is not None and name != "alibi"
    for what, e, r, p in zip(("dq", "dk", "dv"), ours, refs, peer or (None,) * 3):
        bound = ZERO if r.norm() == 0 else max(FLOOR, 1.5 * p) if exact else FIXED
        assert e <= bound, f"{what}: error {e:.3e} > {bound:.3e} (sdpa {p})"


TABLE_SHAPES = [(1, 1, 4, 4), (17, 17, 4, 2), (100, 300, 4, 4), (300, 100, 4, 2),
                (1000, 1000, 4, 1)]


def table_reference(name, q, k, v, grad_out, table, o):
    """(dq, dk, dv, dtable) in float64 (numpy, tessera.reference_grad): dtable sums the
    reference's dS' ∘ ∂score_mod/∂table at the entries each pair reads. Δ comes from the
    kernel's bf16 `o`, as the kernel takes it: the slopes' sums cancel enough that O's
    rounding alone moves them 5-19 % (N = 100-1000)."""
    t = table.double().cpu().numpy()
    qn, kn, vn, gn = (x.double().cpu().numpy() for x in (q, k, v, grad_out))
    i, j = np.arange(q.shape[2])[:, None], np.arange(k.shape[2])[None, :]
    full = np.broadcast(i, j).shape
    if name == "bias":
        def score_mod(s, b, h, i, j):
            return s + t[h, i - j + grad_cases.MAX_REL - 1]
        entries = lambda h: (np.full(full, h), np.broadcast_to(i - j + grad_cases.MAX_REL - 1, full))
        slope = 1.0
    else:
        def score_mod(s, b, h, i, j):
            return s + t[h] * (j - i)
        entries = lambda h: (np.full(full, h),)
        slope = (j - i).astype(np.float64)
    dt = np.zeros(t.shape)

    def collect(b, h, ds_modified):
        np.add.at(dt, entries(h), ds_modified * slope)

    dq, dk, dv = attention_grad(qn, kn, vn, gn, causal=True, score_mod=score_mod,
                                score_mod_grad=lambda s, b, h, i, j: 1.0,
                                on_score_grad=collect, o=o.double().cpu().numpy())
    return dq, dk, dv, dt


def poisoned_empty(shape):
    """Leaves a NaN block of this size in torch's caching allocator, which the next
    float32 allocation of the size takes: a table gradient the zeroing grid misses
    shows up as NaN."""
    torch.full(shape, float("nan"), device="cuda")


@pytest.mark.parametrize("dq_atomic", [False, True])
@pytest.mark.parametrize("name", list(grad_cases.TABLE_SPECS))
@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("nq,nk,h,hk", TABLE_SHAPES)
def test_table_gradient_matches_float64(name, d, nq, nk, h, hk, dq_atomic):
    """kernel.grad(grad_tables=...) on the GPU: the table's gradient (atomic sums in the
    dQ grid) and dq, dk, dv against float64 (a relative-position bias, ALiBi slopes)."""
    torch.manual_seed(nq * 5 + nk + d)
    B = 2 if nq * nk < 10 ** 6 else 1
    q = torch.randn(B, h, nq, d, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(B, hk, nk, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    grad_out = torch.randn(B, h, nq, d, device="cuda", dtype=torch.bfloat16)
    spec, table_name = grad_cases.TABLE_SPECS[name]
    if name == "bias":
        table = 0.5 * torch.randn(h, 2 * grad_cases.MAX_REL - 1, device="cuda")
    else:
        table = grad_cases.tables_for("alibi", h, nk, "cuda")["slopes"]
    kernel = grad_cases.table_kernel(name, d, dq_atomic)
    o, lse = kernel(q, k, v, return_lse=True, **{table_name: table})
    out = tuple(torch.full_like(x, float("nan")) for x in (q, k, v))  # poisoned
    poisoned_empty(table.shape)
    *got, dtable = kernel.grad(q, k, v, o, lse, grad_out, out=out, grad_tables=(table_name,),
                               **{table_name: table})
    torch.cuda.synchronize()
    assert dtable.shape == table.shape and dtable.dtype == torch.float32
    refs = table_reference(name, q, k, v, grad_out, table, o)
    errs = [relative_error(x.double().cpu().numpy(), r) for x, r in zip((*got, dtable), refs)]
    print(f"table {name} d={d} nq={nq} nk={nk} h={h}/{hk}: dq dk dv d{table_name} "
          f"{' '.join(f'{e:.2e}' for e in errs)}")
    for what, e in zip(("dq", "dk", "dv", "d" + table_name), errs):
        assert e <= FIXED, f"{what}: error {e:.3e}"


@pytest.mark.parametrize("name", list(grad_cases.TABLE_SPECS))
def test_table_gradient_through_torch_autograd(name):
    """A CUDA table that requires grad gets .grad through the kernel's torch op: kernel.grad's
    table gradient up to the order of the atomic sums (not the same bits every run);
    q's gradient, which has no atomics, the same bits."""
    torch.manual_seed(11)
    B, H, N, D = 2, 4, 333, 128
    q = torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k, v = (torch.randn(B, H, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    spec, table_name = grad_cases.TABLE_SPECS[name]
    if name == "bias":
        table = 0.5 * torch.randn(H, 2 * grad_cases.MAX_REL - 1, device="cuda")
    else:
        table = grad_cases.tables_for("alibi", H, N, "cuda")["slopes"]
    learnable = table.clone().requires_grad_()
    kernel = grad_cases.table_kernel(name, D)
    weight = torch.randn(B, H, N, D, device="cuda")
    (kernel(q, k, v, **{table_name: learnable}).float() * weight).sum().backward()
    o, lse = kernel(q.detach(), k, v, return_lse=True, **{table_name: table})
    dq, _, _, dtable = kernel.grad(q.detach(), k, v, o, lse, weight.to(torch.bfloat16),
                                   grad_tables=(table_name,), **{table_name: table})
    assert torch.equal(q.grad, dq)
    assert learnable.grad.shape == table.shape
    err = relative_error(learnable.grad.double().cpu().numpy(), dtable.double().cpu().numpy())
    print(f"autograd table {name}: d{table_name} vs kernel.grad {err:.2e}")
    assert err <= 1e-4  # f32 sums in another order


@pytest.mark.parametrize("name", ["causal", "document", "alibi"])
def test_torch_autograd(name):
    """loss.backward() through the kernel (its torch op) runs the gradient kernels: the
    same bits as kernel.grad on the saved o and lse, and near the float64 gradients; a
    reused block mask (document) differentiates the same."""
    torch.manual_seed(3)
    kernel = grad_cases.kernel(name, 128)
    B, H, Hk, N = 2, 4, 2, 777
    q = torch.randn(B, H, N, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k, v = (torch.randn(B, Hk, N, 128, device="cuda", dtype=torch.bfloat16,
                        requires_grad=True) for _ in range(2))
    tables = grad_cases.tables_for(name, H, N, "cuda")
    weight = torch.randn(B, H, N, 128, device="cuda")
    out = kernel(q, k, v, **tables)
    (out.float() * weight).sum().backward()
    grad_out = weight.to(torch.bfloat16)
    o, lse = kernel(q.detach(), k.detach(), v.detach(), return_lse=True, **tables)
    direct = kernel.grad(q.detach(), k.detach(), v.detach(), o, lse, grad_out, **tables)
    assert all(torch.equal(x.grad, g) for x, g in zip((q, k, v), direct))
    refs = reference(name, q.detach(), k.detach(), v.detach(), grad_out,
                     keep_mask(name, N, N, tables, None), tables)[2:]
    errs = [error(x.grad, r) for x, r in zip((q, k, v), refs)]
    print(f"autograd {name}: {' '.join(f'{e:.2e}' for e in errs)}")
    assert max(errs) <= FIXED
    if name == "document":
        op = tessera.torch_op(kernel)
        mask = op.block_mask(q.detach(), k.detach(), v.detach(), **tables)
        grads = [x.grad for x in (q, k, v)]
        for x in (q, k, v):
            x.grad = None
        (op(q, k, v, block_mask=mask, **tables).float() * weight).sum().backward()
        assert all(torch.equal(x.grad, g) for x, g in zip((q, k, v), grads))


@pytest.mark.parametrize("name", ["causal", "softcap", "blocks"])
def test_deterministic(name):
    """dQ has a pass of its own and dK / dV are written once per key tile: the same bits
    every run (FlashAttention-3's deterministic mode). Not so with grad_dq_atomic (its dQ
    sums land in any order), which this test leaves out."""
    torch.manual_seed(5)
    B, H, N = 2, 4, 1000
    q, k, v, g = (torch.randn(B, H, N, 128, device="cuda", dtype=torch.bfloat16)
                  for _ in range(4))
    tables = grad_cases.tables_for(name, H, N, "cuda")
    if name == "blocks":
        tables = {"block_indices": random_lists(torch.Generator().manual_seed(1), B, H, N, N,
                                                grad_cases.BLOCKS, 4)}
    kernel = grad_cases.kernel(name, 128)
    o, lse = kernel(q, k, v, return_lse=True, **tables)
    first = kernel.grad(q, k, v, o, lse, g, **tables)
    second = kernel.grad(q, k, v, o, lse, g, **tables)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("d", cases.HEAD_DIMS)
@pytest.mark.parametrize("n,docs", [(4096, 40), (4000, 300)])
def test_many_documents_long(d, n, docs):
    """Document masking with many documents at long N (most tile pairs empty, ragged
    N): the backward walks the classified tile lists (per key tile, the query tiles
    that see it; per query tile, its key tiles) and matches float64 as SDPA does."""
    torch.manual_seed(n + docs + d)
    cuts = torch.randperm(n - 1)[: docs - 1].sort().values + 1
    doc = torch.zeros(n, dtype=torch.int32)
    doc[cuts] = 1
    tables = {"document_id": doc.cumsum(0).int().cuda()}
    h, hk = 4, 2
    q = torch.randn(1, h, n, d, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, hk, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    grad_out = torch.randn(1, h, n, d, device="cuda", dtype=torch.bfloat16)
    kernel = grad_cases.kernel("document", d)
    o, lse = kernel(q, k, v, return_lse=True, **tables)
    out = tuple(torch.full_like(x, float("nan")) for x in (q, k, v))  # poisoned
    got = kernel.grad(q, k, v, o, lse, grad_out, out=out, **tables)
    torch.cuda.synchronize()
    keep = keep_mask("document", n, n, tables, None)
    _, _, *refs = reference("document", q, k, v, grad_out, keep, tables)
    ours = [error(x, r) for x, r in zip(got, refs)]
    peer = sdpa_errors("document", q, k, v, grad_out, keep, tables, refs)
    print(f"document n={n} docs={docs} d={d}: dq dk dv tessera "
          f"{' '.join(f'{e:.2e}' for e in ours)} sdpa {peer}")
    for what, e, p in zip(("dq", "dk", "dv"), ours, peer or (None,) * 3):
        bound = max(FLOOR, 1.5 * p) if p is not None else FIXED
        assert e <= bound, f"{what}: error {e:.3e} > {bound:.3e} (sdpa {p})"
