"""The compiler's fingerprint: part of every kernel-cache and tuning-store key, so kernels
from another compiler are never reused. No native import: the wheel builder uses it."""
from __future__ import annotations

import hashlib
from pathlib import Path

_SOURCE_FOLDERS = ("dialect", "passes", "codegen", "compiler")


def source_fingerprint(root: Path) -> str:
    """A hash of the compiler's sources under a checkout's root."""
    h = hashlib.sha256()
    for folder in (root / d for d in _SOURCE_FOLDERS):
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".cpp", ".h", ".td", ".txt"):
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return "tessera-0.1.0+" + h.hexdigest()[:16]


def compiler_fingerprint() -> str:
    """From a source checkout (the developer flow, and the GPU machine given a copy of the
    tree), the hash of its sources, so both machines agree; from an installed wheel, the
    hash recorded when it was built (tessera/_build_info.py)."""
    root = Path(__file__).resolve().parents[2]
    if all((root / d).is_dir() for d in _SOURCE_FOLDERS):
        return source_fingerprint(root)
    try:
        from ._build_info import COMPILER_FINGERPRINT
        return COMPILER_FINGERPRINT
    except ImportError:
        return "tessera-0.1.0"
