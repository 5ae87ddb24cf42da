"""Cold compile time of one GPU variant (spec -> PTX, on the machine with the compiler) and
the cached path (kernel cache hit): python3 bench/compile_time.py"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# An installed tessera (the wheel) comes first; PYTHONPATH=frontend picks the checkout.
sys.path.append(str(Path(__file__).resolve().parents[1] / "frontend"))
import tessera  # noqa: E402

spec = tessera.attention(causal=True)
os.environ["TESSERA_CACHE_DIR"] = tempfile.mkdtemp()
for label in ("cold", "cached"):
    start = time.perf_counter()
    kernel = tessera.compile(spec, head_dim=128, dtype="bfloat16", target="cuda")
    ms = (time.perf_counter() - start) * 1e3
    print(json.dumps({"workload": "compile softmax-causal d=128 bf16 sm_90a", "impl": label,
                      "ms": round(ms, 1)}))
