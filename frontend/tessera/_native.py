"""The two native modules of an installed Tessera, built for the running Python on demand.

A wheel carries the compiler as one Python-independent library (libtessera-compiler.so:
LLVM and MLIR linked in, only the Compiler.h facade exported) and the thin pybind11 layers
as sources (tessera/_src). Its prebuilt `_core` / `_runtime` serve the Python it was built
with; under another Python (the GPU machine's 3.12), `ensure()` compiles the two layers
with g++ and pybind11 against that library — seconds, no network, no MLIR.
A source checkout has no _src: its modules come from the CMake build.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOURCES = PACKAGE / "_src"
COMPILER_LIBRARY = "libtessera-compiler.so"

# Each module: its sources (relative to _src) and whether it links the compiler library.
MODULES = {
    "_core": (["frontend/bindings/CoreModule.cpp"], True),
    "_runtime": (["frontend/bindings/RuntimeModule.cpp", "runtime/CudaDriver.cpp",
                  "runtime/KernelCache.cpp", "runtime/LaunchRecord.cpp",
                  "runtime/Module.cpp", "runtime/TensorMap.cpp"], False),
}


class NativeBuildError(ImportError):
    """The native layer could not be built for this Python; says what is missing."""


def extension_suffix() -> str:
    return sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def build_command(name: str, out_dir: Path, sources_dir: Path, library_dir: Path) -> list:
    """The g++ command that builds module `name` into out_dir for the running Python."""
    try:
        import pybind11
    except ImportError as e:
        raise NativeBuildError(
            f"building tessera.{name} for Python {sys.version.split()[0]} needs pybind11 "
            f"(pip install pybind11)") from e
    sources, links_compiler = MODULES[name]
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        raise NativeBuildError(f"building tessera.{name} needs Python's headers "
                               f"({include}/Python.h is missing: install python3-dev)")
    cmd = [os.environ.get("CXX", "g++"), "-O2", "-std=c++17", "-shared", "-fPIC",
           "-fvisibility=hidden", "-fexceptions", "-frtti", f"-I{include}",
           f"-I{pybind11.get_include()}", f"-I{sources_dir}"]
    cmd += [str(sources_dir / s) for s in sources]
    cmd += ["-o", str(out_dir / f"{name}{extension_suffix()}")]
    if links_compiler:
        # $ORIGIN first: a module built into the package finds the library beside it.
        cmd += [f"-L{library_dir}", "-l:" + COMPILER_LIBRARY,
                "-Wl,-rpath,$ORIGIN", f"-Wl,-rpath,{library_dir}"]
    return cmd + ["-ldl"]


def build(out_dir: Path, sources_dir: Path = SOURCES, library_dir: Path = PACKAGE,
          verbose: bool = False) -> float:
    """Builds both modules into out_dir (in parallel); returns the seconds it took."""
    out_dir.mkdir(parents=True, exist_ok=True)
    commands = [build_command(n, out_dir, sources_dir, library_dir) for n in MODULES]
    start = time.perf_counter()

    def run(cmd):
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        return subprocess.run(cmd, capture_output=True, text=True)

    try:
        with ThreadPoolExecutor(len(commands)) as pool:
            results = list(pool.map(run, commands))
    except FileNotFoundError as e:
        raise NativeBuildError(f"building Tessera's native layer needs a C++ compiler "
                               f"(g++): {e}") from e
    for name, result in zip(MODULES, results):
        if result.returncode != 0:
            raise NativeBuildError(f"building tessera.{name} failed:\n{result.stderr[-4000:]}")
    return time.perf_counter() - start


def _build_dir() -> Path:
    """Where this Python's modules go: the package itself if writable, else a cache."""
    if os.access(PACKAGE, os.W_OK):
        return PACKAGE
    root = os.environ.get("TESSERA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tessera")
    return Path(root) / "native" / extension_suffix().strip(".")


def ensure(package_path: list) -> None:
    """Makes tessera._core and tessera._runtime importable under the running Python,
    building them first where an installed wheel lacks them (package_path: the package's
    __path__). No-op in a source checkout."""
    if not SOURCES.is_dir():
        return
    suffix = extension_suffix()
    if all((PACKAGE / f"{n}{suffix}").exists() for n in MODULES):
        return
    directory = _build_dir()
    if not all((directory / f"{n}{suffix}").exists() for n in MODULES):
        print(f"tessera: building the native layer for Python {sys.version.split()[0]} "
              f"into {directory} (once)", file=sys.stderr)
        # Build beside, then move into place, so a concurrent import never sees half a file.
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            seconds = build(Path(tmp))
            for n in MODULES:
                os.replace(Path(tmp) / f"{n}{suffix}", directory / f"{n}{suffix}")
        print(f"tessera: native layer built in {seconds:.1f} s", file=sys.stderr)
    if directory != PACKAGE and str(directory) not in package_path:
        package_path.append(str(directory))  # submodules may live anywhere on it
