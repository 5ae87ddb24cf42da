"""Argument checks shared by every kernel: host arrays (numpy or DLPack) for CPU kernels,
torch CUDA tensors for GPU kernels, and the shape rules both follow. Each names the
argument at fault."""
from __future__ import annotations

import numpy as np

_DLPACK_CPU = 1
# The GPU kernels' element types, by the torch dtype's name.
TORCH_DTYPES = {"bfloat16": "bfloat16", "float16": "float16"}

# ------------------------------------------------------------------ shapes (CPU and GPU)


def check_qkv_shapes(q, k, v, head_dim: int, value_dim: int, same_length: bool = False):
    """Shape agreement of q [B, H, Nq, D], k [B, Hk, Nk, D], v [B, Hk, Nk, Dv], shared by
    every kernel (CPU and GPU)."""
    B, H, Nq, D = q
    Bk, Hk, Nk, Dk = k
    if D != head_dim or Dk != head_dim:
        raise ValueError(f"q and k head dims must be {head_dim}, got {D} and {Dk}")
    if tuple(v[:3]) != tuple(k[:3]) or v[3] != value_dim:
        raise ValueError(f"v must have shape [{Bk}, {Hk}, {Nk}, {value_dim}], got {tuple(v)}")
    if Bk != B:
        raise ValueError(f"q has batch {B} but k has batch {Bk}")
    if same_length and Nk != Nq:
        raise ValueError(f"q and k must have the same length, got {Nq} and {Nk}")
    if Hk == 0 or H % Hk:
        raise ValueError(f"query heads ({H}) must be a multiple of key/value heads ({Hk})")
    if Nk == 0 and Nq > 0:
        raise ValueError("k and v must hold at least one key")


def check_names(what: str, expected, given) -> None:
    """Keyword inputs a kernel takes by name: none missing, none unexpected."""
    missing = [n for n in expected if n not in given]
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise TypeError(f"{what}: missing {missing}, unexpected {extra}")


def check_block_lists(shape, dtype: str, block_q: int, B: int, H: int, Nq: int) -> None:
    """block_indices of a block-sparse spec: int32 [B, 1 or H, ceil(Nq / block_q), K]."""
    blocks_q = -(-Nq // block_q)
    if (len(shape) != 4 or dtype not in ("int32", "torch.int32") or shape[0] != B
            or shape[1] not in (1, H) or shape[2] != blocks_q or shape[3] < 1):
        raise ValueError(f"block_indices must be int32 of shape ({B}, 1 or {H}, {blocks_q}, K), "
                         f"got {dtype} {tuple(shape)}")

# ------------------------------------------------------------------ host arrays (CPU kernels)


def as_array(x, what: str) -> np.ndarray:
    """A zero-copy numpy view of a host tensor (numpy, or anything with DLPack)."""
    if isinstance(x, np.ndarray):
        return x
    device = getattr(x, "__dlpack_device__", None)
    if device is not None:
        kind, index = device()
        if int(kind) != _DLPACK_CPU:
            raise ValueError(f"{what} is on a device (DLPack device type {int(kind)}:{index}); "
                             f"this kernel was compiled for the CPU and needs host tensors")
        try:
            return np.from_dlpack(x)
        except (BufferError, RuntimeError) as e:  # torch: bfloat16, sparse, requires_grad
            raise TypeError(f"{what} cannot be read as a host array: {e}") from None
    raise TypeError(f"{what} must be a numpy array or a DLPack tensor, got {type(x).__name__}")


def check_strides(a: np.ndarray, what: str) -> None:
    if any(s < 0 for s in a.strides):
        raise ValueError(f"{what} has negative strides {a.strides}; pass a copy")
    if any(s % a.itemsize for s in a.strides):
        raise ValueError(f"{what} has strides {a.strides} that are not whole elements")


def output_array(given, shape, dtype, what) -> np.ndarray:
    """A caller's output buffer (checked) or a new one."""
    if given is None:
        return np.empty(shape, dtype)
    a = as_array(given, what)
    if a.shape != shape or a.dtype != dtype:
        raise ValueError(f"{what} must be {dtype} of shape {shape}, got {a.dtype} {a.shape}")
    if not a.flags.writeable:
        raise ValueError(f"{what} is read-only")
    check_strides(a, what)
    return a

# ------------------------------------------------------------------ torch tensors (GPU kernels)


def torch_module():
    """torch, which GPU kernels take their tensors (and stream) from."""
    try:
        import torch  # optional: imported on first use, never by `import tessera`
    except ImportError as e:
        raise RuntimeError("GPU kernels run on torch CUDA tensors, and torch is not "
                           "installed here") from e
    return torch


def check_gpu_layout(t, name: str) -> None:
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


def check_cuda_tensor(t, name: str, dtype, device, vector_rows: bool = True) -> None:
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
        check_gpu_layout(t, name)
    elif any(s < 0 for s in t.stride()) or t.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous in its last dimension with no negative "
                         f"strides, got strides {tuple(t.stride())}; pass {name}.contiguous()")


def check_qkv_tensors(q, k, v, dtype: str):
    """q, k, v as a kernel takes them: rank-4 CUDA tensors of `dtype` on q's device; returns
    the torch dtype."""
    want = getattr(torch_module(), TORCH_DTYPES[dtype])
    for t, n in ((q, "q"), (k, "k"), (v, "v")):
        check_cuda_tensor(t, n, want, getattr(q, "device", None))
        if t.dim() != 4:
            raise ValueError(f"{n} must have rank 4 [batch, heads, seq, dim], got {tuple(t.shape)}")
    return want


def output_tensor(given, shape, dtype, device, name: str):
    """A caller's output tensor (checked) or a new one."""
    torch = torch_module()
    if given is None:
        return torch.empty(shape, dtype=dtype, device=device)
    if (not isinstance(given, torch.Tensor) or tuple(given.shape) != tuple(shape)
            or given.dtype != dtype or given.device != device):
        raise ValueError(f"{name} must be {dtype} of shape {tuple(shape)} on {device}")
    if given.stride(-1) != 1:
        raise ValueError(f"{name} must be contiguous in its last dimension")
    return given


_CHECKED_DECAYS = None  # decay tensor -> the version of it checked


def check_decay(decay) -> None:
    """Checks that a GPU decay tensor's values lie in (0, 1], once per tensor version (the
    check waits for the GPU): calls with a checked tensor neither check nor synchronise,
    so a CUDA graph can capture them. Call it before capturing a graph (or run one call
    first); a replay does not see values written into the tensor later."""
    global _CHECKED_DECAYS
    torch = torch_module()
    if _CHECKED_DECAYS is None:
        from torch.utils.weak import WeakIdKeyDictionary  # torch: imported on first use
        _CHECKED_DECAYS = WeakIdKeyDictionary()
    if _CHECKED_DECAYS.get(decay) == decay._version:
        return
    if torch.cuda.is_current_stream_capturing():
        raise ValueError("decay was not checked before this CUDA graph capture (the check "
                         "waits for the GPU): call tessera.linear.check_decay(decay), or run "
                         "one call, before capturing")
    if not bool(((decay > 0) & (decay <= 1)).all()):
        raise ValueError("decay values must lie in (0, 1]")
    _CHECKED_DECAYS[decay] = decay._version
