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
