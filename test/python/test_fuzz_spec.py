"""Spec fuzzing (test/fuzz/spec_fuzz.py), bounded for the test suite: random modifier
trees, configs, shapes and table sizes compiled for the CPU against float64, with a fixed
seed and count (TESSERA_FUZZ_SEED / TESSERA_FUZZ_SPEC_COUNT widen it)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test" / "fuzz"))
import spec_fuzz  # noqa: E402


def test_random_specs_match_float64():
    seed = int(os.environ.get("TESSERA_FUZZ_SEED", "31"))
    count = int(os.environ.get("TESSERA_FUZZ_SPEC_COUNT", "30"))
    tried, counts, failures = spec_fuzz.fuzz(seed, count, budget=150)
    print(f"spec fuzz seed {seed}: {tried} specs tried ({counts['ok']} compared, "
          f"{counts['rejected']} refused by the table check), {len(failures)} failures")
    assert tried >= min(count, 10)
    assert not failures, "\n".join(
        f"case {seed}:{i}: {error}\n  {text}\n  reproduce: python3 test/fuzz/spec_fuzz.py "
        f"--seed {seed} --only {i}" for i, text, error in failures)
