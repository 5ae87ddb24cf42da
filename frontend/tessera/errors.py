"""The one error type for "no kernel could be produced", with or without the compiler."""
try:
    from ._core import CompileError
except ImportError:  # a GPU machine with only the runtime
    class CompileError(RuntimeError):
        """No kernel could be produced or found for a spec."""
