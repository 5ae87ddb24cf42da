"""Makes `import tessera` work from a source checkout (frontend/ on sys.path)."""
import sys
from pathlib import Path

try:
    import tessera  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "frontend"))
