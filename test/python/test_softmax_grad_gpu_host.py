"""The GPU softmax backward's host side, without a GPU: the gradient image's launch record
(Δ workspace, three grids), how GpuKernel.grad packs its arguments, its errors, and torch
autograd through the kernel's op, with host tensors standing in for CUDA ones and the
launches recorded instead of run (test/gpu/test_softmax_grad_gpu.py runs the kernels)."""
import json

import pytest

torch = pytest.importorskip("torch")

import tessera  # noqa: E402
from tessera import checks, gpu, launch  # noqa: E402

DOC = tessera.Buffer("doc")
BIAS = tessera.Buffer("bias", dtype="float32", rank=1)
GPU = dict(head_dim=64, dtype="bfloat16", target="cuda")


@pytest.fixture
def launches(monkeypatch):
    """Host tensors pass the CUDA checks; each launch records (kernel, grid, parameters)."""
    recorded = []

    def dtype_only(t, name, dtype, device, vector_rows=True):
        if t.dtype != dtype:
            raise TypeError(f"{name} has dtype {t.dtype}; this kernel takes {dtype}")
    monkeypatch.setattr(checks, "check_cuda_tensor", dtype_only)
    monkeypatch.setattr(gpu, "check_cuda_tensor", dtype_only)

    def run(self, device_index, grids, params, first=0, last=None):
        for kernel, grid in list(zip(self.kernels, grids))[first:last]:
            recorded.append((kernel, grid, list(params)))
    monkeypatch.setattr(launch.KernelImage, "_run", run)
    return recorded


def _bf16(*shape):
    return torch.randn(*shape).to(torch.bfloat16)


def test_gradient_image_plans_delta_and_three_grids():
    kernel = tessera.compile(tessera.attention(causal=True), **GPU)
    image = kernel.grad_image()
    assert image.record.workspace_dtypes == ["f32"]
    B, H, Hk, Nq, Nk = 2, 8, 2, 100, 300
    q, k = (B, H, Nq, 64), (B, Hk, Nk, 64)
    shapes = (q, k, k, q, (B, H, Nq), q, q, k, k)
    workspaces, grids = image.plan(shapes)
    assert workspaces == [(B, H, Nq)]  # Δ = rowsum(dO ∘ O) per query row
    assert grids[1] == (-(-Nk // 64), Hk, B)  # dK / dV per key tile and key head
    assert grids[2] == (-(-Nq // 64), H, B)  # dQ per query tile
    assert kernel.grad_image() is image  # compiled once


@pytest.mark.parametrize("head_dim", [192, 256])
def test_backward_has_a_config_of_its_own(head_dim):
    """The forward's 32-key tiles past D = 128 cannot be transposed over 4 warps: the
    backward takes 64 x 64 tiles (one stage at D = 256, for shared memory) whatever the
    forward's config, and `grad_config` replaces it."""
    kernel = tessera.compile(tessera.attention(causal=True), **dict(GPU, head_dim=head_dim))
    assert kernel.config.block_n == 32
    image = kernel.grad_image()
    key_tiles = json.loads(image.record.text)["launches"][1]["grid"][0]
    assert key_tiles["divide"] == [64]  # key tiles of 64
    assert image.record.shared_bytes[1] <= 232448  # a block's shared memory
    kernel.grad_config = tessera.Config(block_m=64, block_n=64, num_warps=4, num_stages=1)
    assert kernel.grad_image() is not image or head_dim == 256


def test_arguments_are_packed_in_the_gradient_module_order(launches):
    kernel = tessera.compile(tessera.attention(causal=True,
                                               mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
                             **GPU)
    B, H, Hk, N = 1, 4, 2, 70
    q, k, v = _bf16(B, H, N, 64), _bf16(B, Hk, N, 64), _bf16(B, Hk, N, 64)
    o, g = _bf16(B, H, N, 64), _bf16(B, H, N, 64)
    lse, doc = torch.randn(B, H, N), torch.zeros(N, dtype=torch.int32)
    dq, dk, dv = kernel.grad(q, k, v, o, lse, g, doc=doc)
    assert [x.shape for x in (dq, dk, dv)] == [q.shape, k.shape, v.shape]
    assert {x.dtype for x in (dq, dk, dv)} == {torch.bfloat16}  # q's dtype, as FlashAttention
    assert [name for name, _, _ in launches] == kernel.grad_image().kernels
    params = launches[0][2]
    pointers, i = [], 0
    for t in (q, k, v, o, lse, g, doc, dq, dk, dv):  # then Δ
        assert params[i + 3:i + 3 + t.dim()] == list(t.shape)
        pointers.append(params[i])
        i += 3 + 2 * t.dim()
    assert pointers == [t.data_ptr() for t in (q, k, v, o, lse, g, doc, dq, dk, dv)]
    # Δ, then the mask_mod classification's workspaces: its class table, the per-key-tile
    # and per-query-tile lists (4-D) with their counts (3-D).
    assert params[i + 3:i + 6] == [B, H, N]
    assert len(params) == i + 9 + 3 * (3 + 2 * 4) + 2 * (3 + 2 * 3)


def test_out_receives_the_gradients(launches):
    kernel = tessera.compile(tessera.attention(), **GPU)
    q, o = _bf16(1, 2, 17, 64), _bf16(1, 2, 17, 64)
    given = tuple(torch.empty_like(q) for _ in range(3))
    got = kernel.grad(q, q, q, o, torch.zeros(1, 2, 17), o, out=given)
    assert all(a is b for a, b in zip(got, given))


def test_bad_gradient_inputs_are_named(launches):
    kernel = tessera.compile(tessera.attention(score_mod=lambda s, b, h, i, j: s + BIAS[h]),
                             **GPU)
    q, o, lse, bias = _bf16(1, 2, 9, 64), _bf16(1, 2, 9, 64), torch.zeros(1, 2, 9), torch.zeros(2)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 2, 9, 64\)"):
        kernel.grad(q, q, q, o, lse, o[:, :, :8], bias=bias)
    with pytest.raises(TypeError, match="grad_out has dtype"):
        kernel.grad(q, q, q, o, lse, o.float(), bias=bias)
    with pytest.raises(ValueError, match=r"lse must have shape \(1, 2, 9\)"):
        kernel.grad(q, q, q, o, lse[:, :1], o, bias=bias)
    with pytest.raises(tessera.SpecError, match="grad_tables: 'nope' is not a table"):
        kernel.grad(q, q, q, o, lse, o, grad_tables=("nope",), bias=bias)
    with pytest.raises(TypeError, match=r"out must be a tuple \(dq, dk, dv\)"):
        kernel.grad(q, q, q, o, lse, o, out=q, bias=bias)


def test_table_gradients_launch_a_zeroing_grid_first(launches):
    """grad_tables: a float32 gradient per table, the module's last arguments, zeroed by
    the image's first grid (zero tiles of 64 entries per row of a [H, 2N - 1] bias)
    before Δ, dK / dV and dQ (whose atomic adds sum into it)."""
    rel = tessera.Buffer("rel", dtype="float32", rank=2)
    spec = tessera.attention(causal=True, score_mod=lambda s, b, h, i, j: s + rel[h, i - j + 99])
    kernel = tessera.compile(spec, **GPU)
    B, H, N = 1, 2, 100
    q, o = _bf16(B, H, N, 64), _bf16(B, H, N, 64)
    lse, table = torch.zeros(B, H, N), torch.randn(H, 2 * N - 1)
    dq, dk, dv, dtable = kernel.grad(q, q, q, o, lse, o, grad_tables=("rel",), rel=table)
    assert dtable.shape == table.shape and dtable.dtype == torch.float32
    image = kernel.grad_image(("rel",))
    assert image is not kernel.grad_image() and len(image.kernels) == 4
    assert [name for name, _, _ in launches] == image.kernels
    zero_grid = launches[0][1]
    assert tuple(zero_grid)[:2] == (-(-(2 * N - 1) // 64), H)
    params = launches[0][2]
    pointers, i = [], 0
    for t in (q, q, q, o, lse, o, table, dq, dk, dv, dtable):
        pointers.append(params[i])
        i += 3 + 2 * t.dim()
    assert pointers[-4:] == [t.data_ptr() for t in (dq, dk, dv, dtable)]


def test_autograd_gives_a_table_that_requires_grad_its_gradient(launches):
    """A CUDA kernel's table that requires grad (a learnable bias) gets .grad from the
    gradient image with grad_tables, as on the CPU; q, k, v theirs."""
    kernel = tessera.compile(tessera.attention(score_mod=lambda s, b, h, i, j: s + BIAS[h]),
                             **GPU)
    q = _bf16(1, 2, 33, 64).requires_grad_()
    k, v = _bf16(1, 2, 33, 64), _bf16(1, 2, 33, 64)
    bias = torch.zeros(2, requires_grad=True)
    out = kernel(q, k, v, bias=bias)
    forward = len(launches)
    out.backward(torch.ones_like(out))
    assert [name for name, _, _ in launches[forward:]] == kernel.grad_image(("bias",)).kernels
    assert bias.grad is not None and bias.grad.shape == (2,) and bias.grad.dtype == torch.float32
    assert q.grad is not None and q.grad.shape == q.shape


@pytest.mark.parametrize("reuse_mask", [None, "op", "kernel"])
def test_autograd_runs_the_forward_then_the_gradient_kernels(launches, reuse_mask):
    """A call on tensors that require grad goes through the kernel's torch op; backward
    launches the gradient image on the saved q, k, v, o, lse and the upstream gradient."""
    kernel = tessera.compile(tessera.attention(causal=True,
                                               mask_mod=lambda b, h, i, j: DOC[i] == DOC[j]),
                             **GPU)
    q = _bf16(1, 2, 33, 64).requires_grad_()
    k, v, doc = _bf16(1, 2, 33, 64), _bf16(1, 2, 33, 64), torch.zeros(33, dtype=torch.int32)
    if reuse_mask == "op":
        mask = tessera.torch_op(kernel).block_mask(q.detach(), k, v, doc=doc)
        out = tessera.torch_op(kernel)(q, k, v, block_mask=mask, doc=doc)
    elif reuse_mask == "kernel":
        out = kernel(q, k, v, block_mask=kernel.block_mask(q.detach(), k, v, doc=doc), doc=doc)
    else:
        out = kernel(q, k, v, doc=doc)
    assert out.requires_grad and out.dtype == torch.bfloat16
    forward = len(launches)
    out.backward(torch.ones_like(out))
    grad_kernels = kernel.grad_image().kernels
    assert [name for name, _, _ in launches[forward:]] == grad_kernels
    assert q.grad is not None and q.grad.shape == q.shape and q.grad.dtype == torch.bfloat16
    params = launches[-1][2]
    assert params[0] == q.data_ptr()  # the saved q, not a copy


@pytest.mark.parametrize("chip", ["sm_90a", "sm_80"])
def test_dq_atomic_plans_an_f32_sum_and_no_dq_grid(launches, chip):
    """grad_dq_atomic: the image's workspaces are Δ and dQ's f32 sum [B, H, Nq, D]
    (zeroed by Δ's grid), its grids Δ, dK / dV (which add into the sum) and the
    conversion per query tile (no products: no shared memory, where the dQ grid stages
    its tiles); the gradients come out where asked. Table gradients are supported."""
    kernel = tessera.compile(tessera.attention(causal=True), **GPU)
    kernel.chip = chip
    plain = kernel.grad_image()
    kernel.grad_config = gpu.default_grad_config(64, 64, chip, dq_atomic=True)
    image = kernel.grad_image()
    assert image is not plain
    assert image.record.workspace_dtypes == ["f32", "f32"]
    B, H, Hk, Nq, Nk = 2, 8, 2, 100, 300
    q, k = (B, H, Nq, 64), (B, Hk, Nk, 64)
    shapes = (q, k, k, q, (B, H, Nq), q, q, k, k)
    workspaces, grids = image.plan(shapes)
    assert workspaces == [(B, H, Nq), (B, H, Nq, 64)]
    assert len(grids) == 3 and len(plain.kernels) == 3
    assert grids[1] == (-(-Nk // 64), Hk, B)  # dK / dV (and dQ's shares) per key tile
    assert grids[2] == (-(-Nq // 64), H, B)   # the conversion per query tile
    assert image.record.shared_bytes[2] == 0 < plain.record.shared_bytes[2]
    qt, kt, o = _bf16(1, 2, 70, 64), _bf16(1, 1, 90, 64), _bf16(1, 2, 70, 64)
    dq, dk, dv = kernel.grad(qt, kt, kt, o, torch.zeros(1, 2, 70), o)
    assert [name for name, _, _ in launches] == image.kernels
    rel = tessera.Buffer("rel", dtype="float32", rank=2)
    tables = tessera.compile(tessera.attention(causal=True, score_mod=lambda s, b, h, i, j:
                                               s + rel[h, i - j + 99]), **GPU)
    tables.chip = chip
    tables.grad_config = kernel.grad_config
    assert len(tables.grad_image(("rel",)).kernels) == 4  # the table's zeroing grid first
