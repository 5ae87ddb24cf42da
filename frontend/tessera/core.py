"""The compiler module (tessera._core), which a GPU machine with only the runtime lacks:
its kernels then come from the on-disk cache (launch.py)."""
from __future__ import annotations

from .errors import CompileError

try:
    from . import _core
    _CORE_IMPORT_ERROR = None
except ImportError as e:
    _core = None
    _CORE_IMPORT_ERROR = e


def require_core():
    """The compiler module, or an error saying why it is missing."""
    if _core is None:
        raise CompileError(f"the Tessera compiler (tessera._core) is not available here: "
                           f"{_CORE_IMPORT_ERROR}")
    return _core


class IRStages:
    """What a compiled kernel shows of itself (its attn `module` and `config`; a GPU
    kernel's `chip` and `ptx` too): `ir(stage)` — "attn", "tile", "tgpu" (the GPU layouts,
    copies into shared buffers and loop schedule; a GPU kernel's own chip, else
    sm_90a's), "tgpu-sm_80", "llvm"
    (CPU), "ptx" (a GPU kernel's) — and the tessera-opt command reproducing it."""

    def _stage(self, stage: str) -> str:
        return "tgpu-sm_80" if stage == "tgpu" and getattr(self, "chip", None) == "sm_80" else stage

    def ir(self, stage: str = "attn", after: str | None = None) -> str:
        """The IR at `stage`; with `after` (a pass's tessera-opt flag without dashes, e.g.
        "tessera-tgpu-copy-staged-loads"), the IR right after that pass's first run in
        the kernel's whole pipeline (its chip's GPU pipeline, or the CPU one) instead."""
        if after is not None:
            return require_core().ir_after(self.module, self.pipeline(self._whole()), after)
        if stage == "ptx" and hasattr(self, "ptx"):
            return self.ptx.decode() if isinstance(self.ptx, bytes) else self.ptx
        return require_core().lower(self.module, self._stage(stage), **self.config.as_kwargs())

    def _whole(self) -> str:
        return "ptx" if hasattr(self, "chip") else "llvm"

    def pipeline(self, stage: str = "llvm") -> str:
        if stage == "ptx" and hasattr(self, "chip"):
            return require_core().gpu_pipeline(self.chip, **self.config.as_kwargs())
        return require_core().pipeline(self._stage(stage), **self.config.as_kwargs())

    def replay_command(self, stage: str = "llvm", path: str = "spec.mlir",
                       after: str | None = None) -> str:
        """The tessera-opt command that reproduces `ir(stage)` (or `ir(after=...)`, printed
        after each run of the pass) from the attn module."""
        if after is not None:
            return (f"tessera-opt {path} --pass-pipeline='{self.pipeline(self._whole())}' "
                    f"--mlir-print-ir-after={after} -o /dev/null")
        return f"tessera-opt {path} --pass-pipeline='{self.pipeline(stage)}'"
