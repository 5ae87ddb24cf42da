"""GPU softmax kernels: a spec compiled to PTX (launch.py loads and launches it), with
its backward and the mask_mod tile classification reused across calls (TileMask)."""
from __future__ import annotations

from typing import Optional

from .checks import (TORCH_DTYPES, check_block_lists, check_cuda_tensor, check_names,
                     check_qkv_shapes, check_qkv_tensors, output_tensor, torch_module)
from .config import Config
from .core import IRStages
# Where the kernel cache and launching live; named here too, as scripts and benches use them.
from .launch import COMPILER_VERSION, KernelImage, cache_dir, load_image  # noqa: F401
from .softmax_grad import GRAD_SHARED_BUDGET, check_grad_tables, grad_mlir, grad_shared_bytes
from .table_bounds import check_table_extents
from .torch_ops import differentiable_call, wants_torch_grad
from .trace import SpecError


class TileMask:
    """A mask_mod spec's classified tiles for one set of shapes and tables (what
    FlexAttention's create_block_mask builds): made once by `GpuKernel.block_mask`,
    reused by every call with `block_mask=`."""

    def __init__(self, kernel, shapes, workspaces) -> None:
        self.kernel, self.shapes, self.workspaces = kernel, shapes, workspaces


class GpuKernel(IRStages):
    """A spec compiled to PTX for one element type, head dims and config; any B, H, N."""

    def __init__(self, spec, dtype: str, head_dim: int, value_dim: int, config,
                 chip: str = "sm_90a") -> None:
        if dtype not in TORCH_DTYPES:
            raise SpecError(f"GPU kernels take bfloat16 or float16, got {dtype!r}")
        self.spec, self.dtype, self.config, self.chip = spec, dtype, config, chip
        self.head_dim, self.value_dim = head_dim, value_dim
        self.grad_config = None  # the backward's Config; None: default_grad_config
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self._image = KernelImage(self.module, spec.name, config, chip)
        self.ptx = self._image.ptx

    def _arguments(self, q, k, v, out, lse_out, buffers):
        """The kernel's arguments, checked: q, k, v, block lists, tables, out, lse."""
        inputs = self._inputs(q, k, v, buffers)
        B, H, Nq, _ = q.shape
        out = output_tensor(out, (B, H, Nq, self.value_dim), q.dtype, q.device, "out")
        lse_out = output_tensor(lse_out, (B, H, Nq), torch_module().float32, q.device,
                                "lse_out")
        return [*inputs, out, lse_out]

    def _inputs(self, q, k, v, buffers):
        """q, k, v, block lists and tables, checked, in the order of the forward's and the
        gradient's arguments."""
        torch = torch_module()
        check_qkv_tensors(q, k, v, self.dtype)
        B, H, Nq, _ = q.shape
        check_qkv_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), self.head_dim,
                         self.value_dim)
        buffers = dict(buffers)
        blocks = []
        if self.spec.block_sparse is not None:
            if "block_indices" not in buffers:
                raise TypeError("this spec is block-sparse: pass block_indices=")
            lists = buffers.pop("block_indices")
            if not isinstance(lists, torch.Tensor) or lists.device != q.device:
                raise TypeError(f"block_indices must be an int32 tensor on {q.device}")
            check_block_lists(tuple(lists.shape), str(lists.dtype), self.spec.block_sparse[0],
                              B, H, Nq)
            blocks.append(lists)
        check_names("buffers", self.spec.buffers, buffers)
        tables = []
        for table in self.spec.tables:
            name, t = table.name, buffers[table.name]
            if (not isinstance(t, torch.Tensor) or t.dim() != table.rank or t.device != q.device
                    or t.dtype != getattr(torch, table.dtype)):
                raise TypeError(f"buffer {name!r} must be {table.describe()} tensor on {q.device}")
            if t.stride(-1) != 1:
                raise ValueError(f"{name} must be contiguous in its last dimension")
            tables.append(t)
        check_table_extents(self.spec, B, H, Nq, k.shape[2],
                            {t.name: tuple(a.shape) for t, a in zip(self.spec.tables, tables)})
        return [q, k, v, *blocks, *tables]

    def _classifies(self) -> bool:
        return self.spec.mask_mod is not None and self.spec.block_sparse is None

    def block_mask(self, q, k, v, **buffers) -> TileMask:
        """Classifies the tiles of a mask_mod spec once (its first kernel) for these
        shapes and tables; pass the result as `block_mask=` to later calls with the same
        shapes and tables (their contents are not re-read), as with FlexAttention's
        create_block_mask."""
        if not self._classifies():
            raise SpecError("block_mask() is for specs with a mask_mod (and no block_sparse)")
        args = self._arguments(q, k, v, None, None, buffers)
        workspaces = self._image.launch(args, last=len(self._image.kernels) - 1)
        return self.tile_mask((tuple(q.shape), tuple(k.shape)), workspaces)

    def tile_mask(self, shapes, workspaces) -> TileMask:
        """A TileMask of this kernel from tensors block_mask() made earlier (the torch op
        passes them as a list): `shapes` = (q's shape, k's shape) they were made for."""
        return TileMask(self, shapes, workspaces)

    def profile(self, q, k, v, repeat: int = 3, **buffers):
        """Times each launch of the kernel on these inputs (the classification grids of a
        mask_mod spec, then attention): a list of (kernel, grid, milliseconds)."""
        return self._image.profile(self._arguments(q, k, v, None, None, buffers), repeat)

    def __call__(self, q, k, v, *, return_lse: bool = False, out=None, lse_out=None,
                 block_mask: Optional[TileMask] = None, **buffers):
        if wants_torch_grad(q, k, v, *buffers.values()):
            return differentiable_call(self, q, k, v, return_lse, out, lse_out, block_mask,
                                       buffers)
        args = self._arguments(q, k, v, out, lse_out, buffers)
        if block_mask is None:
            self._image.launch(args)
        else:
            if not isinstance(block_mask, TileMask) or block_mask.kernel is not self:
                raise ValueError("block_mask must come from this kernel's block_mask()")
            if block_mask.shapes != (tuple(q.shape), tuple(k.shape)):
                raise ValueError(f"block_mask was made for q, k of shapes {block_mask.shapes}, "
                                 f"not {(tuple(q.shape), tuple(k.shape))}")
            self._image.launch(args, block_mask.workspaces, first=len(self._image.kernels) - 1)
        out, lse_out = args[-2], args[-1]
        return (out, lse_out) if return_lse else out

    def grad(self, q, k, v, o, lse, grad_out, *, out=None, grad_tables=(), **buffers):
        """(dq, dk, dv) of o = self(q, k, v, **buffers) for the upstream gradient
        `grad_out` (o's shape and dtype), given o and lse (return_lse=True) of that call,
        in q's dtype as FlashAttention returns them (accumulated in f32 on chip); dk and dv
        sum over each group's query heads; written into `out` = (dq, dk, dv) when given.
        Then the gradient of each table named in `grad_tables` (float32 tables the
        score_mod reads), float32 of the table's shape, in that order.
        The gradient kernels (Δ = rowsum(dO ∘ O), then dK / dV per key tile, dQ per query
        tile: the same bits every run) are compiled, or found in the cache, on first use.
        Table gradients are not bit-deterministic: the dQ grid adds each pair's share
        with atomic reductions (red.global.add.f32), in whatever order they land (the
        CPU target sums in a fixed order)."""
        grad_tables = check_grad_tables(self.spec, grad_tables)
        args = self._inputs(q, k, v, dict(buffers))
        B, H, Nq, _ = q.shape
        o_shape = (B, H, Nq, self.value_dim)
        for t, n, dtype, shape in ((o, "o", q.dtype, o_shape),
                                   (lse, "lse", torch_module().float32, (B, H, Nq)),
                                   (grad_out, "grad_out", q.dtype, o_shape)):
            check_cuda_tensor(t, n, dtype, q.device, vector_rows=n != "lse")
            if tuple(t.shape) != shape:
                raise ValueError(f"{n} must have shape {shape}, got {tuple(t.shape)}")
        if out is not None and (not isinstance(out, (tuple, list)) or len(out) != 3):
            raise TypeError("out must be a tuple (dq, dk, dv)")
        grads = [output_tensor(out[i] if out is not None else None, tuple(x.shape), x.dtype,
                                q.device, n) for i, (x, n) in enumerate(((q, "dq"), (k, "dk"),
                                                                         (v, "dv")))]
        # Float32 sums the gradient's first grid zeroes on every call.
        table_grads = [torch_module().empty(tuple(buffers[n].shape), dtype=torch_module().float32,
                                            device=q.device) for n in grad_tables]
        self.grad_image(grad_tables).launch([*args[:3], o, lse, grad_out, *args[3:], *grads,
                                             *table_grads])
        return (*grads, *table_grads)

    def grad_image(self, grad_tables=()) -> KernelImage:
        """The gradient module's image (three grids and the Δ workspace; with
        `grad_tables`, first a grid zeroing each table's gradient), compiled with
        `grad_config` (the backward's own; see default_grad_config) on first use."""
        config = getattr(self, "grad_config", None) or default_grad_config(
            self.head_dim, self.value_dim, self.chip)
        if config.persistent:  # the backward's grids are not made persistent (yet)
            raise SpecError("Config.persistent applies to the softmax forward; the "
                            "backward's grad_config must leave it off")
        grad_tables = tuple(grad_tables)
        images = self.__dict__.setdefault("_grad_images", {})
        if (grad_tables, config) not in images:
            module = grad_mlir(self.spec, self.dtype, self.head_dim, self.value_dim, grad_tables)
            images[grad_tables, config] = KernelImage(module, self.spec.name + "_grad", config,
                                                      self.chip)
        return images[grad_tables, config]


def default_grad_config(head_dim: int, value_dim: int, chip: str = "sm_90a",
                        dq_atomic: bool = False):
    """The softmax backward's config, apart from the forward's: its key tiles are product
    rows too (dK and dV accumulate per key), so both tile sizes must be multiples of
    16 x num_warps (64 for 4 warps; the forward's 32-key tiles past D = 128 do not
    compile), two stages only where the staged tiles fit (one past D = 192). The rest is
    what keeps every D = 128 spec's backward spill-free (ptxas 13; test_softmax_grad_ptx):
    past D = 64 the dK / dV grid walks 16-query tiles ([key, query]; 32 spilled 36-272 B
    on sm_90a, timed within 1.5 % of 16 on an H100); sm_80 walks 16 at every head dim
    (K and V read per product by ldmatrix), with .minnctapersm 1 (without it: 1304 B on
    block lists) and one stage past D = 64 (two: ALiBi 28 B); sm_90a without
    .minnctapersm (with it: ALiBi 12 B). autotune(..., backward=True) tries the others;
    `kernel.grad_config` overrides it. `dq_atomic`: with grad_dq_atomic (dQ summed by the
    dK / dV grid), whose dQᵀ beside dK and dV takes 16-query tiles at D = 64 on sm_90a
    too (64 spilled 144-316 B, 32 up to 16 B)."""
    hopper, wide = chip == "sm_90a", max(head_dim, value_dim) > 64
    fits_two = grad_shared_bytes(Config(num_stages=2), head_dim, value_dim) <= GRAD_SHARED_BUDGET
    return Config(block_m=64, block_n=64, num_warps=4,
                  num_stages=2 if fits_two and (hopper or not wide) else 1,
                  min_blocks=0 if hopper else 1,
                  grad_query_tile=64 if hopper and not wide and not dq_atomic else 16,
                  grad_dq_atomic=dq_atomic)
