#!/usr/bin/env python3
"""PTX instruction counts and ptxas registers of one softmax kernel per combination of the
Hopper knobs (issue 25), as a Markdown table. No GPU needed.

    PYTHONPATH=frontend python3 scripts/knob_ptx_counts.py [--kind causal] [--d 128]
                                                           [--block-n 128]
"""
import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "frontend"), str(ROOT / "test" / "python")]
import tessera  # noqa: E402
from tessera import _core  # noqa: E402
from ptxas_report import ptxas_report  # noqa: E402

COMBOS = [("default", {}), ("tma", {"tma": True}),
          ("tma + ws", {"tma": True, "warp_specialize": True}),
          ("tma + ws + overlap", {"tma": True, "warp_specialize": True,
                                  "intra_warpgroup_overlap": True}),
          ("tma + ws + pingpong", {"tma": True, "warp_specialize": True, "pingpong": True}),
          ("tma + ws + pingpong + overlap", {"tma": True, "warp_specialize": True,
                                             "pingpong": True, "intra_warpgroup_overlap": True}),
          ("persistent", {"persistent": True}),
          ("persistent + tma", {"persistent": True, "tma": True}),
          ("persistent + tma + ws", {"persistent": True, "tma": True, "warp_specialize": True}),
          ("persistent + tma + ws + pingpong + overlap",
           {"persistent": True, "tma": True, "warp_specialize": True, "pingpong": True,
            "intra_warpgroup_overlap": True})]
COUNTED = {"wgmma": r"wgmma\.mma_async", "wait_group 1": r"wgmma\.wait_group\.sync\.aligned \t1;",
           "cp.async": r"cp\.async\.(?:ca|cg)\b", "bulk.tensor": r"cp\.async\.bulk\.tensor",
           "try_wait": r"mbarrier\.try_wait", "expect_tx": r"arrive\.expect_tx",
           "bar.sync": r"\bbar\.sync", "bar.arrive": r"\bbar\.arrive", "setmaxnreg": r"setmaxnreg"}
SPECS = {"full": tessera.attention(), "causal": tessera.attention(causal=True),
         "window": tessera.attention(causal=True, window=1024)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=sorted(SPECS), default="causal")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--block-n", type=int, default=128)
    args = ap.parse_args()
    spec = SPECS[args.kind]
    print(f"{args.kind}, D = {args.d}, 128 x {args.block_n} tiles, 8 warps, 2 stages, sm_90a")
    print("| knobs | " + " | ".join(COUNTED) + " | registers entry / producer / consumer | spill bytes |")
    print("|---" * (len(COUNTED) + 3) + "|")
    for name, knobs in COMBOS:
        config = tessera.Config(block_m=128, block_n=args.block_n, num_warps=8, num_stages=2, **knobs)
        ptx, _ = _core.compile_gpu(spec.to_mlir("bfloat16", args.d, args.d), spec.name, "sm_90a",
                                   **config.as_kwargs())
        ptx = ptx.decode()
        kernel = ptx[ptx.rindex(".entry"):]
        counts = [str(len(re.findall(p, kernel))) for p in COUNTED.values()]
        with tempfile.TemporaryDirectory() as tmp:
            report = list(ptxas_report(ptx, "sm_90a", Path(tmp)).values())[-1]
        roles = re.findall(r"setmaxnreg\.(?:dec|inc)\.sync\.aligned\.u32 \t(\d+)", kernel)
        registers = " / ".join([str(report.registers), *roles])
        print(f"| {name} | " + " | ".join(counts) + f" | {registers} | {report.spill_stores} |")


if __name__ == "__main__":
    main()
