"""The kernel cache and the tuning store under damage (issue 31): entries with a valid
checksum but a bad payload, a cache folder that cannot be written, a store that is a
folder, deeply nested or NaN-timed entries, and seeded random damage. Each must recompile
or re-tune (and replace the entry), or warn and go on; never raise from a compile that
succeeded, never stay broken."""
import json
import math
import random

import pytest

import tessera
from tessera import _runtime, launch
from tessera.autotune import autotune
from tessera.config import Config
from tessera.tuning_store import Lookup, TuningStore

MODULE = tessera.attention(causal=True).to_mlir("bfloat16", 64, 64)
CONFIG = Config()
RECORD = {"version": _runtime.LAUNCH_RECORD_VERSION, "arguments": [4, 4, 4, 4, 3],
          "workspaces": [],
          "launches": [{"kernel": "k0", "block": 128, "smem": 0,
                        "grid": [{"dim": [0, 2], "divide": [64]}, {"dim": [0, 1]},
                                 {"dim": [0, 0]}]}]}
# What entries held before records had a version: a miss now, never a crash.
UNVERSIONED = {"workspaces": [], "launches": [{"kernel": "k0", "block": 128, "smem": 0,
                                               "grid": [[0, 2, 64], [0, 1, 1], [0, 0, 1]]}]}


@pytest.fixture
def compiler(monkeypatch):
    """A stand-in for the GPU compiler (the cache layer is under test, not codegen):
    counts its calls."""
    calls = []

    def compile_gpu(module, entry, chip, **config):
        calls.append(entry)
        return b"// ptx\n.version 8.0\n", json.dumps(RECORD)

    import tessera._core as core
    monkeypatch.setattr(core, "compile_gpu", compile_gpu)
    return calls


def _key():
    return _runtime.cache_key(MODULE, launch._tuning_text(CONFIG), "sm_90a", launch.COMPILER_VERSION)


BAD_PAYLOADS = [b"", b"no newline at all", b"{not json}\nptx", b"[1, 2]\nptx", b"{}\nptx",
                b'{"launches": 3, "workspaces": []}\nptx',
                b'{"launches": [{"kernel": "k"}], "workspaces": []}\nptx',
                b"[" * 100000 + b"]" * 100000 + b"\nptx", b"\xff\xfe\x00\nptx",
                json.dumps(UNVERSIONED).encode() + b"\nptx",
                json.dumps(dict(RECORD, version=RECORD["version"] + 1)).encode() + b"\nptx"]


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=range(len(BAD_PAYLOADS)))
def test_bad_payload_with_valid_checksum_recompiles_and_replaces(tmp_path, monkeypatch,
                                                                  compiler, payload):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    _runtime.cache_put(str(tmp_path), _key(), payload)  # a valid checksum over bad bytes
    record, ptx = launch.load_image(MODULE, "attention", CONFIG, "sm_90a")
    assert json.loads(record.text) == RECORD and compiler == ["attention"]
    record, _ = launch.load_image(MODULE, "attention", CONFIG, "sm_90a")  # fixed, not broken
    assert json.loads(record.text) == RECORD and compiler == ["attention"]


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unwritable_cache_warns_and_returns_the_kernel(tmp_path, monkeypatch, compiler, where):
    if where == "file":  # the cache folder's path is a file: no folder can be made
        (tmp_path / "cache").write_text("")
        directory = tmp_path / "cache" / "sub"
    else:  # not writable even by root
        directory = "/proc/tessera-cache"
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(directory))
    with pytest.warns(RuntimeWarning, match="not writable"):
        record, _ = launch.load_image(MODULE, "attention", CONFIG, "sm_90a")
    assert json.loads(record.text) == RECORD


def test_random_damage_to_cache_entries(tmp_path, monkeypatch, compiler):
    """Seeded: random bytes flipped, cut or appended in the entry file (checksum broken)
    or in the payload (checksum valid); every load returns the compiled record."""
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    rng = random.Random(31)
    good = json.dumps(RECORD).encode() + b"\n// ptx\n"
    path = tmp_path / (_key() + ".kernel")
    for trial in range(200):
        _runtime.cache_put(str(tmp_path), _key(), good)
        in_file = rng.random() < 0.5  # else in the payload, under a valid checksum
        data = bytearray(path.read_bytes() if in_file else good)
        action = rng.randrange(3)
        if action == 0 and data:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 1:
            del data[rng.randrange(len(data) + 1):]
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        if in_file:
            path.write_bytes(bytes(data))
        else:
            _runtime.cache_put(str(tmp_path), _key(), bytes(data))
        record, _ = launch.load_image(MODULE, "attention", CONFIG, "sm_90a")
        # A damaged file is a miss; a payload may stay a valid (other) record.
        assert json.loads(record.text) == RECORD if in_file else launch._parse_entry(
            record.text.encode() + b"\n") is not None, f"trial {trial}"


# --------------------------------------------------------------------- tuning store

ENTRY = {"config": {"block_m": 64, "block_n": 64, "num_warps": 4, "num_stages": 2,
                    "split": 1, "min_blocks": 0}, "compiler": "v", "ms": 0.5}


def _store_text(entry):
    return json.dumps({"format": "tessera-tuning", "version": 1, "entries": {"k": entry}})


@pytest.mark.parametrize("text", [
    _store_text({**ENTRY, "ms": float("nan")}), _store_text({**ENTRY, "ms": float("inf")}),
    _store_text({**ENTRY, "ms": -1.0}), "[" * 100000 + "]" * 100000,
    '{"format": "tessera-tuning", "version": 1, "entries": ' + "{\"a\": " * 50000 + "1" +
    "}" * 50001, _store_text({**ENTRY, "config": {"block_m": [[[64]]]}}), "\xff", ""],
    ids=["nan", "inf", "negative", "nested-list", "nested-object", "nested-config",
         "bytes", "empty"])
def test_damaged_store_is_corrupt_then_replaced(tmp_path, text):
    store = TuningStore(tmp_path / "tuning.json")
    store.path.write_text(text, errors="surrogateescape")
    assert store.lookup("k", "v").status in ("corrupt", "miss")
    store.put("k", ENTRY)
    assert store.lookup("k", "v").status == "hit"


def test_nan_time_is_not_stored(tmp_path):
    store = TuningStore(tmp_path / "tuning.json")
    with pytest.raises(ValueError, match="finite"):
        store.put("k", {**ENTRY, "ms": math.nan})


def test_store_that_is_a_folder(tmp_path):
    store = TuningStore(tmp_path / "tuning.json")
    store.path.mkdir()
    found = store.lookup("k", "v")
    assert isinstance(found, Lookup) and found.status == "corrupt" and "cannot be read" in found.detail
    with pytest.raises(OSError):
        store.put("k", ENTRY)
    assert store.path.is_dir()  # not moved aside: it is not ours


def test_autotune_with_a_store_that_is_a_folder_warns_and_returns(tmp_path):
    (tmp_path / "tuning.json").mkdir()
    spec = tessera.attention(causal=True)
    with pytest.warns(RuntimeWarning, match="did not take the result"):
        result = autotune(spec, head_dim=16, key=(1, 1, 32), space={"block_m": [16], "block_n": [16],
                          "num_warps": [1], "num_stages": [1]}, workers=0, repeats=1,
                          store=tmp_path / "tuning.json", progress=False)
    assert result.kernel is not None and result.store_status == "corrupt"
