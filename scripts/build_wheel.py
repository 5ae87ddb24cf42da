#!/usr/bin/env python3
"""Builds dist/tessera-<version>-py3-none-linux_x86_64.whl from the CMake build in build/.

The wheel holds the Python package, libtessera-compiler.so (LLVM and MLIR inside, nothing
beyond glibc, libstdc++, libm and libgcc_s needed), the pybind11 layers built for this
Python, and their sources (tessera/_src) so that any other Python builds its own in
seconds on first import (tessera/_native.py). It needs no MLIR where it is installed.

    python3 scripts/build_wheel.py [--out dist]     # prints the wheel's path and size
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"
TAG = "py3-none-linux_x86_64"
# Headers the layers' sources include beyond the sources' own (paths from the repository root).
EXTRA_HEADERS = ["compiler/Compiler.h"]


def load_module(name: str, path: Path):
    """A frontend module loaded alone (importing the package would import the dev build)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def binding_sources(native) -> list:
    """What another Python needs to build the layers: the sources _native.py compiles (its
    list is the one place they are named), each one's header beside it, and EXTRA_HEADERS."""
    files = []
    for sources, _ in native.MODULES.values():
        for rel in sources:
            files.append(rel)
            header = Path(rel).with_suffix(".h")
            if (ROOT / header).is_file():
                files.append(str(header))
    return sorted(set(files + EXTRA_HEADERS))


def stage(package: Path) -> float:
    """Fills `package` (the wheel's tessera/); returns the seconds the layers took."""
    source = ROOT / "frontend" / "tessera"
    package.mkdir(parents=True)
    for path in sorted(source.glob("*.py")):
        shutil.copy2(path, package / path.name)
    shutil.copy2(ROOT / "build" / "lib" / "libtessera-compiler.so", package)
    native = load_module("tessera_native", source / "_native.py")
    for rel in binding_sources(native):
        (package / "_src" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, package / "_src" / rel)
    fingerprint = load_module("tessera_fingerprint", source / "fingerprint.py")
    (package / "_build_info.py").write_text(
        '"""Written by scripts/build_wheel.py."""\n'
        f"COMPILER_FINGERPRINT = {fingerprint.source_fingerprint(ROOT)!r}\n")
    return native.build(package, package / "_src", package)


def record_line(root: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(root).as_posix()},sha256={digest},{len(data)}"


def write_wheel(staging: Path, out_dir: Path) -> Path:
    info = staging / f"tessera-{VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tessera\nVersion: {VERSION}\n"
        "Summary: A compiler for attention kernels on MLIR\nRequires-Python: >=3.9\n"
        "Requires-Dist: numpy\nRequires-Dist: pybind11\n")
    (info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nGenerator: tessera scripts/build_wheel.py\n"
        f"Root-Is-Purelib: false\nTag: {TAG}\n")
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    record = [record_line(staging, p) for p in files] + [f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"tessera-{VERSION}-{TAG}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for path in files + [info / "RECORD"]:
            z.write(path, path.relative_to(staging).as_posix())
    return wheel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output folder")
    args = parser.parse_args()
    if not (ROOT / "build" / "build.ninja").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "build.sh")], check=True)
    subprocess.run(["ninja", "-C", str(ROOT / "build"), "tessera-compiler"], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = stage(Path(tmp) / "tessera")
        wheel = write_wheel(Path(tmp), Path(args.out))
    print(f"layers for Python {sys.version.split()[0]} built in {seconds:.1f} s")
    print(f"{wheel} ({wheel.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
