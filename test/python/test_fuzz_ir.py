"""IR mutation fuzzing of tessera-opt (test/fuzz/ir_mutate.py), bounded for the test
suite: a fixed seed and count (TESSERA_FUZZ_SEED / TESSERA_FUZZ_IR_COUNT widen it).
No mutant may kill tessera-opt with a signal, an LLVM fatal error or a time-out."""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test" / "fuzz"))
import ir_mutate  # noqa: E402


def test_ir_mutants_never_crash_tessera_opt():
    seed = int(os.environ.get("TESSERA_FUZZ_SEED", "31"))
    count = int(os.environ.get("TESSERA_FUZZ_IR_COUNT", "400"))
    opt = os.environ.get("TESSERA_OPT", str(ROOT / "build/bin/tessera-opt"))
    out = tempfile.mkdtemp(prefix="tessera-ir-fuzz-")
    tried, failures = ir_mutate.fuzz(seed, count, jobs=2, out=out, opt=opt, timeout=60,
                                     budget=240)
    print(f"ir fuzz seed {seed}: {tried} mutants tried, {len(failures)} crashes")
    assert tried >= min(count, 100)
    assert not failures, "\n".join(f"mutant {seed}:{i} of {name}: {what}\n  reproduce: {repro}"
                                   for i, name, repro, what in failures)
