"""Proves that a compiler change leaves the GPU kernels alone, or says where it does not.

    python3 scripts/ptx_equivalence.py collect OUT [--tessera DIR] [--only MODS] [--chips ...]
    python3 scripts/ptx_equivalence.py compare BASE NEW

`collect` compiles every kernel of scripts/gpu_precompile.py's set (or the sets of the
modules named by --only, e.g. `cases,softmax_gpu`) for each chip (sm_90a and sm_80), with the
tessera package found in DIR (default: this tree's frontend/; a wheel installed with
`pip install --target DIR` gives a baseline that later rebuilds do not touch), and writes
each PTX file plus OUT/summary.json: per kernel function, ptxas registers, spills and
static shared memory, the launch's threads and dynamic shared memory, and counts of the
instructions that decide speed.

`compare` passes a kernel when its PTX is byte-identical, or when it differs but no
function spills more, fits fewer blocks per SM, has its wgmma serialized by ptxas where it
had not, or issues more of any counted instruction kind (issue 23's rule for a change that should not move the kernels). Exit status 1 when
anything is worse or missing.
"""
import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTXAS = os.environ.get("PTXAS", "/usr/local/cuda/bin/ptxas")
COUNTED = {  # instruction kinds whose count must not grow
    "wgmma": r"\bwgmma\.mma_async",
    "mma": r"\bmma\.sync",
    "cp.async": r"\bcp\.async\.(?:ca|cg)\b",
    "ld.shared": r"\bld\.shared",
    "st.shared": r"\bst\.shared",
    "bar.sync": r"\b(?:bar|barrier)\.sync",
    "atom/red": r"\b(?:atom|red)\.",
}
SHARED_PER_SM = {"sm_90a": 228 * 1024, "sm_90": 228 * 1024, "sm_80": 164 * 1024}


def record_compiles(only):
    """(module, entry, chip, config kwargs) of every compile the kernel sets ask for,
    in order, without duplicates: the compiler entry point is wrapped while an empty
    kernel cache makes every kernel compile."""
    os.environ["TESSERA_CACHE_DIR"] = tempfile.mkdtemp(prefix="ptx-eq-cache-")
    import tessera
    from tessera import _core
    sys.path[:0] = [str(ROOT / "scripts")]
    saved_argv, sys.argv = sys.argv, [sys.argv[0]]
    try:
        import gpu_precompile
    finally:
        sys.argv = saved_argv
    calls, seen = [], set()
    real = _core.compile_gpu

    def recording(module, entry, chip, **config):
        key = (module, entry, json.dumps(config, sort_keys=True))
        if key not in seen:
            seen.add(key)
            calls.append((module, entry, config))
        return real(module, entry, chip, **config)

    _core.compile_gpu = recording
    try:
        for kernels in gpu_precompile.kernel_sets(only):
            kernels()
    finally:
        _core.compile_gpu = real
    print(f"{len(calls)} kernels from {tessera.__file__}", flush=True)
    return real, calls


def split_functions(ptx: str):
    """{entry name: its PTX text}."""
    parts = re.split(r"(?=^\.(?:visible\s+)?\.entry\s)", ptx, flags=re.M)
    out = {}
    for part in parts[1:]:
        name = re.match(r"\.(?:visible\s+)?\.entry\s+(\w+)", part).group(1)
        out[name] = part
    return out


def ptxas_stats(ptx_file: Path, chip: str):
    """{function: {regs, spill_st, spill_ld, smem, wgmma_serialized}} from ptxas -v, or an
    error line. wgmma_serialized: ptxas issues the function's wgmma one at a time (C7512 /
    C7513: too few registers, or a register of one in flight written by another
    instruction), so nothing overlaps them."""
    run = subprocess.run([PTXAS, f"-arch={chip}", "-v", "-o", os.devnull, str(ptx_file)],
                         capture_output=True, text=True)
    if run.returncode:
        return {"error": run.stderr.strip().splitlines()[-1:]}
    stats, current, serialized = {}, None, set()
    for line in run.stderr.splitlines():
        m = re.search(r"wgmma\.mma_async instructions are serialized .* function '(\w+)'", line)
        if m:
            serialized.add(m.group(1))
            continue
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = stats.setdefault(m.group(1), {"regs": 0, "spill_st": 0, "spill_ld": 0,
                                                    "smem": 0})
            continue
        if current is None:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            current["spill_st"], current["spill_ld"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            current["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(s.group(1)) if s else 0
    for name in serialized & stats.keys():
        stats[name]["wgmma_serialized"] = True
    return stats


def collect(args):
    if args.tessera:
        sys.path.insert(0, str(Path(args.tessera).resolve()))
    else:
        sys.path.insert(0, str(ROOT / "frontend"))
    compile_gpu, calls = record_compiles(args.only.split(",") if args.only else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary, pending = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for module, entry, config in calls:
            digest = hashlib.sha1((module + config_text(config)).encode())
            for chip in args.chips.split(","):
                key = f"{entry}.{digest.hexdigest()[:12]}.{chip}"
                item = summary[key] = {"entry": entry, "chip": chip, "config": config}
                try:
                    ptx, launches = compile_gpu(module, entry, chip, **config)
                except Exception as error:  # a kernel this chip cannot take: record why
                    item["error"] = str(error).splitlines()[0][:200]
                    continue
                path = out / f"{key}.ptx"
                path.write_bytes(ptx)
                text = ptx.decode()
                item["sha1"] = hashlib.sha1(ptx).hexdigest()
                item["launches"] = {l["kernel"]: {"block": l["block"], "smem": l["smem"]}
                                    for l in json.loads(launches)["launches"]}
                item["counts"] = {name: {kind: len(re.findall(rx, body))
                                         for kind, rx in COUNTED.items()}
                                  for name, body in split_functions(text).items()}
                pending[key] = pool.submit(ptxas_stats, path, chip)
        for key, future in pending.items():
            summary[key]["ptxas"] = future.result()
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    errors = sum("error" in v or "error" in v.get("ptxas", {}) for v in summary.values())
    print(f"{len(summary)} compiles ({errors} errors) written to {out}")


def blocks_per_sm(stats, launch, chip):
    threads = max(1, launch["block"])
    warps = math.ceil(threads / 32)
    regs_per_warp = math.ceil(max(stats["regs"], 1) * 32 / 256) * 256
    by_regs = 65536 // (regs_per_warp * warps)
    shared = stats["smem"] + launch["smem"]
    by_shared = SHARED_PER_SM.get(chip, 164 * 1024) // (shared + 1024) if shared else 32
    return min(by_regs, by_shared, 2048 // threads, 32)


def judge(base, new):
    """(verdict, reasons) for one kernel compiled by both sides."""
    if "error" in base or "error" in new:
        same = base.get("error") == new.get("error")
        return ("identical" if same else "worse"), ([] if same else [
            f"error: {base.get('error')} -> {new.get('error')}"])
    if base["sha1"] == new["sha1"]:
        return "identical", []
    reasons = []
    for name, stats in new["ptxas"].items():
        if name == "error":
            return "worse", [f"ptxas: {stats}"]
        old = base["ptxas"].get(name)
        launch = new["launches"].get(name, {"block": 128, "smem": 0})
        if old is None:
            reasons.append(f"{name}: new function")
            continue
        old_launch = base["launches"].get(name, launch)
        spills, old_spills = stats["spill_st"] + stats["spill_ld"], old["spill_st"] + old["spill_ld"]
        if spills > old_spills:
            reasons.append(f"{name}: spills {old_spills} -> {spills} B")
        if stats.get("wgmma_serialized") and not old.get("wgmma_serialized"):
            reasons.append(f"{name}: ptxas serializes its wgmma (C7512 / C7513)")
        blocks, old_blocks = (blocks_per_sm(stats, launch, new["chip"]),
                              blocks_per_sm(old, old_launch, base["chip"]))
        if blocks < old_blocks:
            reasons.append(f"{name}: blocks/SM {old_blocks} -> {blocks} "
                           f"(regs {old['regs']} -> {stats['regs']})")
        counts, old_counts = new["counts"].get(name, {}), base["counts"].get(name, {})
        for kind, n in counts.items():
            if n > old_counts.get(kind, 0):
                reasons.append(f"{name}: {kind} {old_counts.get(kind, 0)} -> {n}")
    return ("worse" if reasons else "allowed"), reasons


def config_text(config):
    """A compile's options as text, knobs at their default (0, False, None) left out: a
    knob added to Config must not rename every kernel compiled without it."""
    return json.dumps({k: v for k, v in config.items() if v not in (0, False, None)},
                      sort_keys=True)


def pair_renamed(base, new):
    """Keys name a kernel by a hash of its module text, which a frontend change may alter
    (SSA names) without touching the kernel: unmatched kernels of the same entry, chip and
    config are paired, those with the same PTX first, the rest in key order."""
    def groups(summary, keys):
        out = {}
        for key in sorted(keys):
            item = summary[key]
            out.setdefault((item["entry"], item["chip"], config_text(item["config"])),
                           []).append(key)
        return out
    only_base, only_new = groups(base, set(base) - set(new)), groups(new, set(new) - set(base))
    base, new = dict(base), dict(new)
    for group, old_keys in only_base.items():
        new_keys = only_new.get(group, [])
        if len(new_keys) != len(old_keys):
            continue
        by_sha = {}
        for key in new_keys:
            by_sha.setdefault(new[key].get("sha1"), []).append(key)
        rest = []
        for key in old_keys:
            same = by_sha.get(base[key].get("sha1"))
            if same:
                new[key] = new.pop(same.pop(0))
            else:
                rest.append(key)
        for old_key, new_key in zip(rest, [k for ks in by_sha.values() for k in ks]):
            new[old_key] = new.pop(new_key)
    return base, new


def compare(args):
    base = json.loads(Path(args.base, "summary.json").read_text())
    new = json.loads(Path(args.new, "summary.json").read_text())
    tally = {"identical": 0, "allowed": 0, "worse": 0, "missing": 0, "new only": 0}
    base, new = pair_renamed(base, new)
    for key in sorted(set(base) | set(new)):
        if key not in new:
            tally["missing"] += 1
            print(f"MISSING  {key}")
            continue
        if key not in base:
            tally["new only"] += 1
            if args.verbose:
                print(f"NEW      {key}")
            continue
        verdict, reasons = judge(base[key], new[key])
        tally[verdict] += 1
        if verdict != "identical":
            print(f"{verdict.upper():8} {key}" + "".join(f"\n         {r}" for r in reasons))
    print(", ".join(f"{n} {k}" for k, n in tally.items()) + f" (of {len(set(base) | set(new))})")
    return 1 if tally["worse"] or tally["missing"] else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="compile every kernel and record PTX + ptxas stats")
    c.add_argument("out")
    c.add_argument("--tessera", help="directory holding the tessera package (default frontend/)")
    c.add_argument("--only", help="comma-separated modules whose kernel sets to compile")
    c.add_argument("--chips", default="sm_90a,sm_80")
    c.add_argument("--jobs", type=int, default=2, help="ptxas processes at once")
    p = sub.add_parser("compare", help="judge NEW against BASE")
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.command == "collect":
        collect(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
