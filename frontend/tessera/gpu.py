"""GPU kernels: PTX from the compiler (or the on-disk cache), launched by the runtime.

The compiler (MLIR) may be absent: on a machine with only the runtime, kernels come from
the cache, keyed by (spec IR, tuning config, architecture, compiler version), that a
machine with the compiler filled (scripts/gpu_precompile.py).
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Optional

from . import _runtime
from .errors import CompileError
from .fingerprint import compiler_fingerprint
from .table_bounds import check_table_extents
from .trace import SpecError

COMPILER_VERSION = compiler_fingerprint()
_TORCH_DTYPES = {"bfloat16": "bfloat16", "float16": "float16"}
_REJECTED = b"rejected by the compiler\n"  # a cache entry holding a compile error


def cache_dir() -> str:
    return os.environ.get("TESSERA_CACHE_DIR") or _runtime.cache_default_dir()


def _tuning_text(config) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(config.as_kwargs().items()))


def _parse_entry(blob: bytes):
    """(launch record, ptx) of a cache entry, None when its payload is not one: an entry can
    carry a valid checksum and still be unusable (written before records had a version,
    by another version, edited)."""
    header, newline, ptx = blob.partition(b"\n")
    if not newline:
        return None
    try:
        return _runtime.LaunchRecord.parse(header), ptx
    except _runtime.LaunchRecordError:
        return None


def _cache_put(directory: str, key: str, blob: bytes) -> None:
    """Stores an entry; a cache that cannot be written (read-only, not a folder) costs
    the next process a compile, never this one its kernel."""
    try:
        _runtime.cache_put(directory, key, blob)
    except (RuntimeError, OSError, ValueError) as e:
        warnings.warn(f"tessera: kernel cache {directory} is not writable ({e}); "
                      f"continuing without caching", RuntimeWarning, stacklevel=3)


def load_image(module: str, entry: str, config, chip: str):
    """(launch record, ptx bytes) for `entry` of `module`, compiling on a cache miss (or an
    entry whose payload is damaged or of an older record version, which is then replaced);
    the record (docs/LAUNCH_RECORD.md) holds the launches and the workspaces."""
    key = _runtime.cache_key(module, _tuning_text(config), chip, COMPILER_VERSION)
    directory = cache_dir()
    blob = _runtime.cache_get(directory, key)
    if blob is not None and not blob.startswith(_REJECTED) and _parse_entry(blob) is None:
        blob = None  # damaged: compile again and overwrite
    if blob is None:
        try:
            from . import _core
        except ImportError as e:
            raise CompileError(
                f"kernel {entry!r} for {chip} is not in the cache ({directory}) and this "
                f"machine has no Tessera compiler; compile it where MLIR is installed "
                f"(scripts/gpu_precompile.py) and copy the cache") from e
        try:
            ptx, launches = _core.compile_gpu(module, entry, chip, **config.as_kwargs())
        except CompileError as e:
            # Rejections are cached too: a machine without the compiler (the tuner on
            # the GPU machine) then reports the compiler's reason, not a cache miss.
            _cache_put(directory, key, _REJECTED + str(e).encode())
            raise
        record = _runtime.LaunchRecord.parse(launches)  # the facade's own: errors surface
        _cache_put(directory, key, launches.encode() + b"\n" + ptx)
        return record, ptx
    if blob.startswith(_REJECTED):
        raise CompileError(blob[len(_REJECTED):].decode(errors="replace"))
    return _parse_entry(blob)


def _check_gpu_layout(t, name: str) -> None:
    """Kernels read rows with 16-byte vector loads: the last dimension must be contiguous
    and every row must start 16-byte aligned."""
    if any(s < 0 for s in t.stride()):
        raise ValueError(f"{name} has negative strides")
    if t.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous in its last dimension (stride 1), got "
                         f"strides {tuple(t.stride())}; pass {name}.contiguous()")
    item = t.element_size()
    if t.data_ptr() % 16 or any((s * item) % 16 for s in t.stride()[:-1]):
        raise ValueError(f"{name} rows must start at 16-byte boundaries (data pointer and "
                         f"strides multiples of 16 bytes); pass {name}.contiguous()")


def torch_module():
    """torch, which GPU kernels take their tensors (and stream) from."""
    try:
        import torch
    except ImportError as e:
        raise RuntimeError("GPU kernels run on torch CUDA tensors, and torch is not "
                           "installed here") from e
    return torch


def _check_cuda_tensor(t, name: str, dtype, device, vector_rows: bool = True) -> None:
    """A kernel input: a torch tensor of `dtype` on `device`, rows 16-byte aligned where
    the kernel reads them with vector copies (vector_rows; a row vector such as lse is
    read element by element and only needs its last dimension contiguous)."""
    torch = torch_module()
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor on a CUDA device, got {type(t).__name__}")
    if not t.is_cuda:
        raise ValueError(f"{name} is on {t.device}; this kernel runs on the GPU")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but q is on {device}")
    if t.dtype != dtype:
        raise TypeError(f"{name} has dtype {t.dtype}; this kernel takes {dtype}")
    if vector_rows:
        _check_gpu_layout(t, name)
    elif any(s < 0 for s in t.stride()) or t.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous in its last dimension with no negative "
                         f"strides, got strides {tuple(t.stride())}; pass {name}.contiguous()")


def check_qkv_tensors(q, k, v, dtype: str):
    """q, k, v as a kernel takes them: rank-4 CUDA tensors of `dtype` on q's device; returns
    the torch dtype."""
    want = getattr(torch_module(), _TORCH_DTYPES[dtype])
    for t, n in ((q, "q"), (k, "k"), (v, "v")):
        _check_cuda_tensor(t, n, want, getattr(q, "device", None))
        if t.dim() != 4:
            raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got {tuple(t.shape)}")
    return want


def _output_tensor(given, shape, dtype, device, name: str):
    """A caller's output tensor (checked) or a new one."""
    import torch
    if given is None:
        return torch.empty(shape, dtype=dtype, device=device)
    if (not isinstance(given, torch.Tensor) or tuple(given.shape) != tuple(shape)
            or given.dtype != dtype or given.device != device):
        raise ValueError(f"{name} must be {dtype} of shape {tuple(shape)} on {device}")
    if given.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous in its last dimension")
    return given


_WORKSPACE_DTYPES = {"i32": "int32", "f32": "float32", "bf16": "bfloat16", "f16": "float16"}


class _Image:
    """The compiled kernels of one module, loaded per device and launched on torch's
    current stream; the launch record (runtime/LaunchRecord.h) gives their grids, the
    workspaces (buffers between its grids, allocated per call) and the parameters (a
    memref descriptor per argument, then per workspace)."""

    def __init__(self, module: str, entry: str, config, chip: str) -> None:
        self.record, self.ptx = load_image(module, entry, config, chip)
        self._describe()

    def _describe(self) -> None:
        """What a launch needs of the record, kept as Python values for the per-call path."""
        record = self.record
        self.kernels = record.kernels
        self._launch_shapes = [((block, 1, 1), smem)
                               for block, smem in zip(record.blocks, record.shared_bytes)]
        self._loaded = {}
        self._plans = {}
        self._workspace_dtypes = None

    def workspace_dtypes(self) -> list:
        if self._workspace_dtypes is None:
            torch = torch_module()
            self._workspace_dtypes = [getattr(torch, _WORKSPACE_DTYPES[d])
                                      for d in self.record.workspace_dtypes]
        return self._workspace_dtypes

    def plan(self, shapes, cache: bool = True):
        """(workspace shapes, grid per launch) for arguments of `shapes`, worked out once
        per set of shapes: a call then only allocates and launches. cache=False for
        symbolic shapes (torch.compile's fake tensors)."""
        if not cache:
            return self.record.plan_symbolic([list(s) for s in shapes])
        plan = self._plans.get(shapes)
        if plan is None:
            plan = self.record.plan(shapes)
            if len(self._plans) > 4096:  # shapes that keep changing: do not grow forever
                self._plans.clear()
            self._plans[shapes] = plan
        return plan

    def _kernels(self, device_index: int):
        if device_index not in self._loaded:
            module = _runtime.Module(self.ptx, device_index)
            self._loaded[device_index] = (module, [module.kernel(k) for k in self.kernels])
        return self._loaded[device_index][1]

    def launch(self, args, workspaces=None, first: int = 0, last=None):
        """Launches kernels [first, last) on `args` and the workspaces (allocated here
        unless given); returns the workspaces."""
        import torch
        device = args[0].device
        workspace_shapes, grids = self.plan(tuple(tuple(t.shape) for t in args))
        if workspaces is None:
            workspaces = [torch.empty(s, device=device, dtype=d)
                          for s, d in zip(workspace_shapes, self.workspace_dtypes())]
        params, _ = self.record.pack([*args, *workspaces])
        self._run(device.index or 0, grids, params, first, last)
        return workspaces

    def launcher(self, args):
        """A function launching every kernel on tensors laid out as `args` (shapes,
        strides, device), as launch() does: the grids, the workspaces' shapes and the
        parameters are worked out here once; each call fills in the data pointers,
        allocates the workspaces and launches."""
        import torch
        device = args[0].device
        workspace_shapes, grids = self.plan(tuple(tuple(t.shape) for t in args))
        dtypes = self.workspace_dtypes()
        laid_out = [torch.empty(s, device="meta", dtype=d)  # the workspaces' strides
                    for s, d in zip(workspace_shapes, dtypes)]
        template, slots = self.record.pack([*args, *laid_out])

        def launch(tensors):
            workspaces = [torch.empty(s, device=device, dtype=d)
                          for s, d in zip(workspace_shapes, dtypes)]
            params = template.copy()
            for slot, t in zip(slots, (*tensors, *workspaces)):
                params[slot] = params[slot + 1] = t.data_ptr()
            self._run(device.index or 0, grids, params)
        return launch

    def _run(self, device_index: int, grids, params, first: int = 0, last=None):
        """Launches kernels [first, last) with these grids and parameters on torch's
        current stream (a capture's, inside CUDA graph capture; the raw handle costs a
        fraction of a µs, torch.cuda.current_stream a few)."""
        import torch
        stream = torch._C._cuda_getCurrentRawStream(device_index)
        kernels = self._kernels(device_index)
        for (block, smem), kernel, grid in list(zip(self._launch_shapes, kernels,
                                                    grids))[first:last]:
            if min(grid) == 0:
                continue
            kernel.launch(grid, block, smem, stream, params)

    def profile(self, args, repeat: int):
        """(kernel, grid, ms) per launch: each launched alone after the ones before it
        ran, timed by CUDA events, the best of `repeat`."""
        import torch
        workspaces = self.launch(args)
        torch.cuda.synchronize()
        _, grids = self.plan(tuple(tuple(t.shape) for t in args))
        out = []
        for i, name in enumerate(self.kernels):
            best = float("inf")
            for _ in range(repeat):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                self.launch(args, workspaces, i, i + 1)
                end.record()
                end.synchronize()
                best = min(best, start.elapsed_time(end))
            out.append((name, list(grids[i]), best))
        return out


class TileMask:
    """A mask_mod spec's classified tiles for one set of shapes and tables (what
    FlexAttention's create_block_mask builds): made once by `GpuKernel.block_mask`,
    reused by every call with `block_mask=`."""

    def __init__(self, kernel, shapes, workspaces) -> None:
        self.kernel, self.shapes, self.workspaces = kernel, shapes, workspaces


class GpuKernel:
    """A spec compiled to PTX for one element type, head dims and config; any B, H, N."""

    def __init__(self, spec, dtype: str, head_dim: int, value_dim: int, config,
                 chip: str = "sm_90a") -> None:
        if dtype not in _TORCH_DTYPES:
            raise SpecError(f"GPU kernels take bfloat16 or float16, got {dtype!r}")
        self.spec, self.dtype, self.config, self.chip = spec, dtype, config, chip
        self.head_dim, self.value_dim = head_dim, value_dim
        self.grad_config = None  # the backward's Config; None: default_grad_config
        self.module = spec.to_mlir(dtype, head_dim, value_dim)
        self._image = _Image(self.module, spec.name, config, chip)
        self.ptx = self._image.ptx

    def _arguments(self, q, k, v, out, lse_out, buffers):
        """The kernel's arguments, checked: q, k, v, block lists, tables, out, lse."""
        inputs = self._inputs(q, k, v, buffers)
        B, H, Nq, _ = q.shape
        out = _output_tensor(out, (B, H, Nq, self.value_dim), q.dtype, q.device, "out")
        lse_out = _output_tensor(lse_out, (B, H, Nq), torch_module().float32, q.device,
                                 "lse_out")
        return [*inputs, out, lse_out]

    def _inputs(self, q, k, v, buffers):
        """q, k, v, block lists and tables, checked, in the order of the forward's and the
        gradient's arguments."""
        torch = torch_module()
        check_qkv_tensors(q, k, v, self.dtype)
        from .kernel import check_block_lists, check_names, check_qkv_shapes
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
        return TileMask(self, (tuple(q.shape), tuple(k.shape)), workspaces)

    def profile(self, q, k, v, repeat: int = 3, **buffers):
        """Times each launch of the kernel on these inputs (the classification grids of a
        mask_mod spec, then attention): a list of (kernel, grid, milliseconds)."""
        return self._image.profile(self._arguments(q, k, v, None, None, buffers), repeat)

    def __call__(self, q, k, v, *, return_lse: bool = False, out=None, lse_out=None,
                 block_mask: Optional[TileMask] = None, **buffers):
        from .softmax_grad import differentiable_call, wants_torch_grad
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
        The gradient kernels (Δ = rowsum(dO ∘ O), then dK / dV per key tile, dQ per query
        tile: the same bits every run) are compiled, or found in the cache, on first use."""
        from .softmax_grad import check_grad_tables
        if check_grad_tables(self.spec, grad_tables):
            raise SpecError(f"grad_tables={tuple(grad_tables)}: table gradients are not "
                            f"lowered to the GPU yet (they are on the CPU target)")
        args = self._inputs(q, k, v, dict(buffers))
        B, H, Nq, _ = q.shape
        o_shape = (B, H, Nq, self.value_dim)
        for t, n, dtype, shape in ((o, "o", q.dtype, o_shape),
                                   (lse, "lse", torch_module().float32, (B, H, Nq)),
                                   (grad_out, "grad_out", q.dtype, o_shape)):
            _check_cuda_tensor(t, n, dtype, q.device, vector_rows=n != "lse")
            if tuple(t.shape) != shape:
                raise ValueError(f"{n} must have shape {shape}, got {tuple(t.shape)}")
        if out is not None and (not isinstance(out, (tuple, list)) or len(out) != 3):
            raise TypeError("out must be a tuple (dq, dk, dv)")
        grads = [_output_tensor(out[i] if out is not None else None, tuple(x.shape), x.dtype,
                                q.device, n) for i, (x, n) in enumerate(((q, "dq"), (k, "dk"),
                                                                         (v, "dv")))]
        self.grad_image().launch([*args[:3], o, lse, grad_out, *args[3:], *grads])
        return tuple(grads)

    def grad_image(self) -> _Image:
        """The gradient module's image (three grids and the Δ workspace), compiled with
        `grad_config` (the backward's own; see default_grad_config) on first use."""
        config = getattr(self, "grad_config", None) or default_grad_config(self.head_dim,
                                                                           self.value_dim)
        images = self.__dict__.setdefault("_grad_images", {})
        if config not in images:
            from .softmax_grad import grad_mlir
            module = grad_mlir(self.spec, self.dtype, self.head_dim, self.value_dim)
            images[config] = _Image(module, self.spec.name + "_grad", config, self.chip)
        return images[config]


def default_grad_config(head_dim: int, value_dim: int):
    """The softmax backward's config, apart from the forward's: its key tiles are also
    transposed operands, so both tile sizes must be multiples of 16 x num_warps (64 for 4
    warps; the forward's 32-key tiles past D = 128 do not compile), and one stage past
    D = 192 keeps shared memory within a block's 227 KiB. Set `kernel.grad_config` to
    another Config to tune it."""
    from .kernel import Config
    return Config(block_m=64, block_n=64, num_warps=4,
                  num_stages=2 if max(head_dim, value_dim) <= 192 else 1)
