"""Cold compile time (spec -> PTX, an empty kernel cache) and cached load (a cache hit) of
one softmax and one linear-attention GPU kernel, on the machine it runs on:
python3 bench/compile_time.py (JSON lines)"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(Path(__file__).resolve().parents[1] / "frontend"))
import tessera  # noqa: E402

KERNELS = {
    "softmax-causal d=128 bf16 sm_90a": tessera.attention(causal=True),
    "lightning-attention-2 d=128 bf16 sm_90a": tessera.linear_attention(decay=True),
}
os.environ["TESSERA_CACHE_DIR"] = tempfile.mkdtemp()
for workload, spec in KERNELS.items():
    for label in ("cold", "cached"):
        start = time.perf_counter()
        # One kernel each (a linear kernel compiles its default split here; others on use).
        kernel = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda")
        ms = (time.perf_counter() - start) * 1e3
        print(json.dumps({"workload": f"compile {workload}", "impl": label,
                          "ms": round(ms, 1), "tessera": os.path.dirname(tessera.__file__)}))
