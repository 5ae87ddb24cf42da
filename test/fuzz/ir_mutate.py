"""IR mutation fuzzing of tessera-opt over the lit corpus.

Each input of test/ (split at `// -----`) is mutated a few tokens at a time (integers,
static dims, element types, attributes, operands, lines) and run through parse/verify,
attn -> tile, the CPU pipeline and the GPU pipeline. A mutant may be rejected with
diagnostics (exit 1); it must never kill tessera-opt with a signal, hit an LLVM fatal
error or assertion, or run past the time limit. Seeded: the same seed replays the same
mutants; a failure prints the command that reproduces it.

    python3 test/fuzz/ir_mutate.py --seed 1 --count 200 [--jobs 2] [--out DIR]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIRS = ("test/dialect", "test/passes", "test/pipelines", "test/seeds")
FATAL = ("LLVM ERROR", "PLEASE submit a bug report", "Stack dump", "Assertion `",
         "UNREACHABLE executed", "Segmentation fault")

INTERESTING_INTS = ["0", "1", "-1", "2", "3", "7", "17", "100", "255", "4096", "65536",
                    "2147483647", "2147483648", "-2147483648", "4294967296",
                    "9223372036854775807", "-9223372036854775808"]
DIMS = ["1", "2", "3", "5", "8", "16", "24", "48", "96", "100", "130", "1024", "4096",
        "65536", "2147483648", "?"]
ELEMENT_TYPES = ["f32", "f16", "bf16", "i32", "i1", "i64", "f64", "index"]
PIPELINES_ATTN = ["", "tessera-to-tile", "tessera-cpu", "tessera-gpu{chip=sm_90a}",
                  "tessera-gpu{chip=sm_80 block-m=64 block-n=32}"]
PIPELINES_TILE = ["", "tessera-tile-to-cpu", "tessera-tile-to-ptx{chip=sm_90a}",
                  "tessera-tile-to-ptx{chip=sm_80}"]


def corpus() -> list:
    """(name, text) of every split input of the lit corpus, in a fixed order."""
    items = []
    for d in CORPUS_DIRS:
        for path in sorted((ROOT / d).rglob("*.mlir")):
            pieces = path.read_text().split("\n// -----\n")
            for i, piece in enumerate(pieces):
                body = "\n".join(line for line in piece.splitlines()
                                 if not line.lstrip().startswith("// RUN"))
                if "func.func" in body:
                    items.append((f"{path.relative_to(ROOT)}#{i}", body))
    return items


# Mutations: each takes (rng, text) and returns the new text (or the same, if none fits).
def _replace_match(rng, text, pattern, choices, group=0):
    matches = list(re.finditer(pattern, text))
    if not matches:
        return text
    m = rng.choice(matches)
    start, end = m.span(group)
    return text[:start] + rng.choice(choices) + text[end:]


def mutate_integer(rng, text):
    return _replace_match(rng, text, r"(?<![\w%#.x])-?\d+(?![\w.x])", INTERESTING_INTS)


def mutate_index_constant(rng, text):
    """An index constant (a dim number, a loop bound, an offset) negative, huge or past
    a rank: verifies, may be undefined at run time, must not crash a pass."""
    return _replace_match(rng, text, r"(?<=arith\.constant )-?\d+(?= : index)",
                          ["-1", "-2", "2", "3", "4", "-9223372036854775808",
                           "9223372036854775807", "2147483648"])


def _everywhere_or_once(rng, text, before, token, after, choices):
    """Mostly one value of `token` (between lookarounds `before` and `after`) replaced
    everywhere, so types stay consistent; else one occurrence."""
    found = sorted(set(re.findall(rf"(?<={before})({token})(?={after})", text)))
    if found and rng.random() < 0.7:
        old, new = rng.choice(found), rng.choice(choices)
        return re.sub(rf"(?<={before}){re.escape(old)}(?={after})", new, text)
    return _replace_match(rng, text, rf"(?<={before})({token})(?={after})", choices, 1)


def mutate_dim(rng, text):
    """A static size (a head dim of 80, or of 2^31) or a '?'."""
    return _everywhere_or_once(rng, text, "[<x]", r"\d+|\?", "x", DIMS)


def mutate_element_type(rng, text):
    return _everywhere_or_once(rng, text, "x", "f32|f16|bf16|i32|i1|f64|i64", ">",
                               ELEMENT_TYPES)


def mutate_operand(rng, text):
    names = sorted(set(re.findall(r"%[\w]+", text)))
    if len(names) < 2:
        return text
    return _replace_match(rng, text, r"(?<=[ ,(\[])%[\w]+(?=[ ,)\]:])", names)


def mutate_line(rng, text):
    lines = text.splitlines()
    body = [i for i, l in enumerate(lines) if l.strip() and not l.strip().startswith("//")]
    if not body:
        return text
    i = rng.choice(body)
    action = rng.randrange(3)
    if action == 0:
        del lines[i]
    elif action == 1:
        lines.insert(rng.choice(body), lines[i])
    else:
        j = rng.choice(body)
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def mutate_attribute(rng, text):
    choice = rng.randrange(4)
    if choice == 0:  # drop or add a unit attribute
        for unit in ("causal", "include_current", "group_heads", "normalize"):
            if unit in text and rng.random() < 0.5:
                return text.replace(unit + ", ", "", 1).replace(", " + unit, "", 1)
        return text.replace("{", "{causal, ", 1) if "attn." in text else text
    if choice == 1:
        return _replace_match(rng, text, r"(?<== )-?\d+(?= : i64)", INTERESTING_INTS)
    if choice == 2:
        return _replace_match(rng, text, r"(?<=\w = )-?[\d.e+-]+(?= : f32)",
                              ["0.0", "-1.0", "1.0e+30", "0x7FC00000", "0x7F800000", "1.0e-30"])
    return _replace_match(rng, text, r"(block_m|block_n|num_warps|num_stages|split) = \d+",
                          [f"{k} = {v}" for k in ("block_m", "block_n", "num_warps",
                                                  "num_stages", "split")
                           for v in ("0", "1", "3", "16", "128", "512", "4096")])


def mutate_arith(rng, text):
    ops = ["arith.addi", "arith.subi", "arith.muli", "arith.divsi", "arith.remsi",
           "arith.floordivsi", "arith.ceildivsi", "arith.divui", "arith.remui",
           "arith.shli", "arith.shrsi", "arith.andi", "arith.maxsi", "arith.minsi"]
    text = _replace_match(rng, text, r"arith\.(addi|subi|muli|divsi|remsi|floordivsi|"
                                     r"ceildivsi|andi|ori|maxsi|minsi|shli|shrsi)", ops)
    return _replace_match(rng, text, r"arith\.(addf|subf|mulf|divf|maximumf|minimumf)",
                          ["arith.addf", "arith.subf", "arith.mulf", "arith.divf",
                           "arith.maximumf", "arith.minimumf", "arith.remf"])


MUTATIONS = [mutate_integer, mutate_index_constant, mutate_dim, mutate_dim, mutate_element_type,
             mutate_operand, mutate_line, mutate_attribute, mutate_attribute, mutate_arith]


def mutant(seed: int, index: int, items: list):
    """The index-th mutant of a run: (source name, pipeline, text). Reproducible."""
    rng = random.Random(f"{seed}:{index}")
    valid = [item for item in items if "expected-error" not in item[1]]
    name, text = rng.choice(valid if rng.random() < 0.85 else items)
    for _ in range(rng.choice((1, 1, 2, 3))):
        text = rng.choice(MUTATIONS)(rng, text)
    pipelines = PIPELINES_TILE if "tile.grid" in text and "attn." not in text else PIPELINES_ATTN
    return name, rng.choice(pipelines), text


def run_one(opt: str, path: str, pipeline: str, timeout: float):
    """None when tessera-opt behaved, else a description of what went wrong."""
    cmd = [opt, path, "-o", os.devnull] + ([f"--pass-pipeline=builtin.module({pipeline})"]
                                            if pipeline else [])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    fatal = [f for f in FATAL if f in p.stderr]
    if p.returncode < 0 or p.returncode >= 128 or fatal or p.returncode not in (0, 1):
        tail = "\n".join(p.stderr.strip().splitlines()[-6:])
        return f"exit {p.returncode} {fatal}\n{tail}"
    return None


def reproducer(opt: str, path: str, pipeline: str) -> str:
    option = f" --pass-pipeline='builtin.module({pipeline})'" if pipeline else ""
    return f"{opt} {path}{option}"


def fuzz(seed: int, count: int, jobs: int, out: str, opt: str, timeout: float,
         budget: float = float("inf")):
    """Runs mutants seed:0 .. seed:count-1 (stopping when `budget` seconds are spent).
    Returns (tried, failures as (index, source, reproducer, what))."""
    items = corpus()
    os.makedirs(out, exist_ok=True)
    start, tried, failures = time.monotonic(), 0, []

    def task(index):
        name, pipeline, text = mutant(seed, index, items)
        path = os.path.join(out, f"mutant-{seed}-{index}.mlir")
        with open(path, "w") as f:
            f.write(f"// mutant {seed}:{index} of {name}\n{text}\n")
        what = run_one(opt, path, pipeline, timeout)
        if what is None:
            os.remove(path)
            return None
        return index, name, reproducer(opt, path, pipeline), what

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        pending, index = set(), 0
        while index < count or pending:
            while index < count and len(pending) < 2 * jobs and time.monotonic() - start < budget:
                pending.add(pool.submit(task, index))
                index += 1
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending, return_when="FIRST_COMPLETED")
            for fut in done:
                tried += 1
                if fut.result():
                    failures.append(fut.result())
    return tried, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--budget", type=float, default=float("inf"), help="seconds")
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="tessera-fuzz-"))
    parser.add_argument("--opt", default=os.environ.get("TESSERA_OPT",
                                                        str(ROOT / "build/bin/tessera-opt")))
    args = parser.parse_args(argv)
    tried, failures = fuzz(args.seed, args.count, args.jobs, args.out, args.opt,
                           args.timeout, args.budget)
    for index, name, repro, what in failures:
        print(f"mutant {args.seed}:{index} of {name}: {what}\n  reproduce: {repro}\n")
    print(f"ir fuzz seed {args.seed}: {tried} mutants tried, {len(failures)} crashes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
