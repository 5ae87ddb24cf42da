"""The autotuner's persistent store: one JSON file of tuned configs, shared by processes.

    $TESSERA_CACHE_DIR/tuning.json   (else ~/.cache/tessera/tuning.json)

    {"format": "tessera-tuning", "version": 1,
     "entries": {"<key text>": {"key": {...}, "compiler": "...", "config": {...},
                                "ms": 0.41, "tuned_at": "...", ...}}}

Writers take an exclusive flock on `tuning.json.lock` around read-modify-write and replace
the file atomically (temp file in the same folder, fsync, os.replace), so readers never see
a half-written file and concurrent writers never lose each other's entries. A file that
does not parse or has the wrong schema is reported as corrupt by `lookup` and replaced by
the next write (its bytes are kept once as `tuning.json.corrupt`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

try:
    import fcntl
except ImportError:  # not POSIX: single-writer only
    fcntl = None

from .config import BOOLEAN_KNOBS

FORMAT = "tessera-tuning"
VERSION = 1
KNOBS = ("block_m", "block_n", "num_warps", "num_stages", "split", "min_blocks",
         "grad_query_tile") + BOOLEAN_KNOBS
# Knobs added after a store may have been written: an entry without one takes the default
# (boolean knobs are also left out where off: Config.as_kwargs).
_LATER_KNOBS = {"min_blocks", "grad_query_tile", *BOOLEAN_KNOBS}
# Knobs that are on / off rather than integers.
BOOL_KNOBS = set(BOOLEAN_KNOBS)


def cache_dir() -> Path:
    """$TESSERA_CACHE_DIR, else ~/.cache/tessera (the GPU kernel cache's folder too)."""
    env = os.environ.get("TESSERA_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "tessera"


@dataclasses.dataclass(frozen=True)
class TuningKey:
    """What a tuned config is valid for. The compiler version is not part of the text
    (it is stored with the entry and compared on lookup), so that a config tuned by an
    older compiler is found, reported stale and overwritten rather than left behind."""

    spec: str    # sha256 of the spec's attn module (float32, head dims 64)
    shape: str   # head dims and size buckets: "D=64,Dv=64,N=256,BH=2"
    dtype: str
    target: str  # "cpu" or "cuda:<chip>"
    device: str  # CPU model or torch.cuda.get_device_name()

    def text(self) -> str:
        return "|".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self))


@dataclasses.dataclass
class Lookup:
    """status: "hit", "miss", "stale" (another compiler tuned it) or "corrupt" (the file
    or this entry is unreadable); entry is set for "hit" and "stale"."""

    status: str
    entry: Optional[Dict[str, Any]] = None
    detail: str = ""


def _entry_problem(entry: Any) -> Optional[str]:
    if not isinstance(entry, dict):
        return "entry is not an object"
    config = entry.get("config")
    if (not isinstance(config, dict) or not set(config) <= set(KNOBS)
            or not set(KNOBS) - _LATER_KNOBS <= set(config)):
        return f"config must have exactly the keys {list(KNOBS)}"
    for k, v in config.items():
        if k in BOOL_KNOBS:
            if not isinstance(v, bool):
                return f"config {k} is not true or false: {v!r}"
        elif isinstance(v, bool) or not isinstance(v, int):
            return f"config {k} is not an integer: {v!r}"
    ms = entry.get("ms")
    if ms is not None and (isinstance(ms, bool) or not isinstance(ms, (int, float))
                           or not math.isfinite(ms) or ms < 0):
        return f"ms is not a finite time: {ms!r}"  # JSON as Python writes it holds NaN
    if not isinstance(entry.get("compiler"), str):
        return "compiler version missing"
    return None


class TuningStore:
    def __init__(self, path: Union[str, os.PathLike, None] = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "tuning.json"
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"TuningStore({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------
    def load(self) -> Tuple[Dict[str, Any], Optional[str]]:
        """(entries, problem): problem names why the file is unusable (then entries is
        empty); a missing file is an empty store, not a problem."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}, None
        except OSError as e:  # a directory, no permission
            return {}, f"{self.path} cannot be read ({e.strerror or e})"
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return {}, f"{self.path} does not parse as JSON ({e})"
        except RecursionError:
            return {}, f"{self.path} is nested too deeply to be a {FORMAT} file"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}, f"{self.path} is not a {FORMAT} file"
        if data.get("version") != VERSION:
            return {}, f"{self.path} has version {data.get('version')!r}, expected {VERSION}"
        if not isinstance(data.get("entries"), dict):
            return {}, f"{self.path} has no 'entries' object"
        return data["entries"], None

    def entries(self) -> Dict[str, Any]:
        return self.load()[0]

    def lookup(self, key: Union[TuningKey, str], compiler: Optional[str] = None) -> Lookup:
        """The entry for `key`; "stale" when `compiler` is given and differs from the
        version that tuned it."""
        entries, problem = self.load()
        if problem:
            return Lookup("corrupt", detail=problem)
        text = key.text() if isinstance(key, TuningKey) else key
        if text not in entries:
            return Lookup("miss")
        entry = entries[text]
        problem = _entry_problem(entry)
        if problem:
            return Lookup("corrupt", detail=f"entry {text!r}: {problem}")
        if compiler is not None and entry["compiler"] != compiler:
            return Lookup("stale", entry, f"tuned by compiler {entry['compiler']}, this is {compiler}")
        return Lookup("hit", entry)

    # -- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _write(self, entries: Dict[str, Any]) -> None:
        text = json.dumps({"format": FORMAT, "version": VERSION, "entries": entries},
                          indent=1, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".tuning-", suffix=".tmp", dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(str(self.path.parent), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def _update(self, change) -> None:
        with self._locked():
            entries, problem = self.load()
            if problem and self.path.is_file():  # never move a folder in its way
                with contextlib.suppress(OSError):  # keep the bad bytes once, for a look
                    os.replace(self.path, self.path.with_name(self.path.name + ".corrupt"))
            entries = dict(entries)
            change(entries)
            self._write(entries)

    def put(self, key: Union[TuningKey, str], entry: Dict[str, Any]) -> None:
        """Stores `entry` (must have config, compiler; ms optional) under `key`."""
        problem = _entry_problem(entry)
        if problem:
            raise ValueError(f"not a valid tuning entry: {problem}")
        text = key.text() if isinstance(key, TuningKey) else key
        entry = dict(entry)
        if isinstance(key, TuningKey):
            entry.setdefault("key", dataclasses.asdict(key))
        entry.setdefault("tuned_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))

        def change(entries):
            entries[text] = entry
        self._update(change)

    def remove(self, key: Union[TuningKey, str]) -> None:
        text = key.text() if isinstance(key, TuningKey) else key
        self._update(lambda entries: entries.pop(text, None))
