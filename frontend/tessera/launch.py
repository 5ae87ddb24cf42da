"""Launching GPU kernels: the compiled image of a module (PTX and its launch record, from
the compiler or the on-disk cache), loaded per device and launched on torch's current
stream with its workspaces.

The compiler (MLIR) may be absent: on a machine with only the runtime, kernels come from
the cache, keyed by (spec IR, tuning config, architecture, compiler version), that a
machine with the compiler filled (scripts/gpu_precompile.py).
"""
from __future__ import annotations

import os
import warnings

from . import _runtime
from .checks import torch_module
from .core import require_core
from .errors import CompileError
from .fingerprint import compiler_fingerprint

COMPILER_VERSION = compiler_fingerprint()
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
            compiler = require_core()
        except CompileError as e:
            raise CompileError(
                f"kernel {entry!r} for {chip} is not in the cache ({directory}) and this "
                f"machine has no Tessera compiler; compile it where MLIR is installed "
                f"(scripts/gpu_precompile.py) and copy the cache") from e
        try:
            ptx, launches = compiler.compile_gpu(module, entry, chip, **config.as_kwargs())
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


_WORKSPACE_DTYPES = {"i32": "int32", "f32": "float32", "bf16": "bfloat16", "f16": "float16"}


class KernelImage:
    """The compiled kernels of one module, loaded per device and launched on torch's
    current stream; the launch record (runtime/LaunchRecord.h) gives their grids, the
    workspaces (buffers between its grids, allocated per call) and the parameters (a
    memref descriptor per argument, then per workspace, then the TMA descriptors, encoded
    per call from the runtime's descriptor cache); persistent grids read the SM count."""

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
        self._has_tensor_maps = bool(record.tensor_maps)
        self._sm_counts = {} if record.uses_sm_count else None

    def workspace_dtypes(self) -> list:
        if self._workspace_dtypes is None:
            torch = torch_module()
            self._workspace_dtypes = [getattr(torch, _WORKSPACE_DTYPES[d])
                                      for d in self.record.workspace_dtypes]
        return self._workspace_dtypes

    def _sm_count(self, device_index) -> int:
        """The SM count persistent grids are planned for: 0 where no grid reads it; 1 where
        no device is named (workspace shapes never read it: fake tensors ask for those)."""
        if self._sm_counts is None:
            return 0
        if device_index is None:
            return 1
        if device_index not in self._sm_counts:
            self._sm_counts[device_index] = _runtime.multiprocessor_count(device_index)
        return self._sm_counts[device_index]

    def plan(self, shapes, cache: bool = True, device_index=None):
        """(workspace shapes, grid per launch) for arguments of `shapes` on a device,
        worked out once per set of shapes: a call then only allocates and launches.
        cache=False for symbolic shapes (torch.compile's fake tensors)."""
        sms = self._sm_count(device_index)
        if not cache:
            return self.record.plan_symbolic([list(s) for s in shapes], sms)
        key = (shapes, sms) if sms else shapes
        plan = self._plans.get(key)
        if plan is None:
            plan = self.record.plan(shapes, sms)
            if len(self._plans) > 4096:  # shapes that keep changing: do not grow forever
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _kernels(self, device_index: int):
        if device_index not in self._loaded:
            module = _runtime.Module(self.ptx, device_index)
            self._loaded[device_index] = (module, [module.kernel(k) for k in self.kernels])
        return self._loaded[device_index][1]

    def launch(self, args, workspaces=None, first: int = 0, last=None):
        """Launches kernels [first, last) on `args` and the workspaces (allocated here
        unless given); returns the workspaces."""
        torch = torch_module()
        device = args[0].device
        index = device.index or 0
        workspace_shapes, grids = self.plan(tuple(tuple(t.shape) for t in args),
                                            device_index=index)
        if workspaces is None:
            workspaces = [torch.empty(s, device=device, dtype=d)
                          for s, d in zip(workspace_shapes, self.workspace_dtypes())]
        tensors = [*args, *workspaces]
        params, _ = self.record.pack(tensors)
        if self._has_tensor_maps:  # encoded per call: the runtime's cache makes repeats free
            self._run(index, grids, params, first, last,
                      tensor_maps=self.record.encode_tensor_maps(tensors))
        else:
            self._run(index, grids, params, first, last)
        return workspaces

    def launcher(self, args):
        """A function launching every kernel on tensors laid out as `args` (shapes,
        strides, device), as launch() does: the grids, the workspaces' shapes and the
        parameters are worked out here once; each call fills in the data pointers,
        allocates the workspaces and launches."""
        torch = torch_module()
        device = args[0].device
        index = device.index or 0
        workspace_shapes, grids = self.plan(tuple(tuple(t.shape) for t in args),
                                            device_index=index)
        dtypes = self.workspace_dtypes()
        laid_out = [torch.empty(s, device="meta", dtype=d)  # the workspaces' strides
                    for s, d in zip(workspace_shapes, dtypes)]
        template, slots = self.record.pack([*args, *laid_out])
        encode = self.record.encode_tensor_maps if self._has_tensor_maps else None

        def launch(tensors):
            workspaces = [torch.empty(s, device=device, dtype=d)
                          for s, d in zip(workspace_shapes, dtypes)]
            params = template.copy()
            everything = (*tensors, *workspaces)
            for slot, t in zip(slots, everything):
                params[slot] = params[slot + 1] = t.data_ptr()
            if encode is None:
                self._run(index, grids, params)
            else:
                self._run(index, grids, params, tensor_maps=encode(everything))
        return launch

    def _run(self, device_index: int, grids, params, first: int = 0, last=None,
             tensor_maps=None):
        """Launches kernels [first, last) with these grids and parameters (then the TMA
        descriptors, where the kernels take any) on torch's current stream (a capture's,
        inside CUDA graph capture; the raw handle costs a fraction of a µs,
        torch.cuda.current_stream a few)."""
        torch = torch_module()
        stream = torch._C._cuda_getCurrentRawStream(device_index)
        kernels = self._kernels(device_index)
        for (block, smem), kernel, grid in list(zip(self._launch_shapes, kernels,
                                                    grids))[first:last]:
            if min(grid) == 0:
                continue
            if tensor_maps is None:
                kernel.launch(grid, block, smem, stream, params)
            else:
                kernel.launch(grid, block, smem, stream, params, tensor_maps)

    def profile(self, args, repeat: int):
        """(kernel, grid, ms) per launch: each launched alone after the ones before it
        ran, timed by CUDA events, the best of `repeat`."""
        torch = torch_module()
        workspaces = self.launch(args)
        torch.cuda.synchronize()
        _, grids = self.plan(tuple(tuple(t.shape) for t in args),
                             device_index=args[0].device.index or 0)
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
