"""ptxas -v over a PTX module, per entry: the registers and spill bytes the PTX tests
assert on (one parser for every test file that reads them)."""
import os
import re
import shutil
import subprocess
from typing import Dict, NamedTuple

import pytest

PTXAS = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"


class EntryReport(NamedTuple):
    registers: int
    spill_stores: int  # bytes
    # ptxas C7513: it had to serialize wgmma (a non-wgmma instruction writes a register
    # of one in flight): the products no longer overlap anything.
    wgmma_serialized: bool = False


def ptxas_report(ptx, chip, tmp_path) -> Dict[str, EntryReport]:
    """{entry: EntryReport}, in the order ptxas reports them; skips the test where
    ptxas is absent, fails it where ptxas rejects the module."""
    if not os.path.exists(PTXAS):
        pytest.skip("ptxas not installed")
    path = tmp_path / "k.ptx"
    path.write_bytes(ptx if isinstance(ptx, bytes) else ptx.encode())
    run = subprocess.run([PTXAS, f"-arch={chip}", "-v", str(path), "-o", str(tmp_path / "k.cubin")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    spills, registers, serialized, entry = {}, {}, set(), None
    for line in run.stderr.splitlines():
        if m := re.search(r"wgmma\.mma_async instructions are serialized .* function '(\w+)'", line):
            serialized.add(m.group(1))
        if m := re.search(r"Compiling entry function '(\w+)'", line):
            entry = m.group(1)
        elif (m := re.search(r"(\d+) bytes spill stores", line)) and entry:
            spills[entry] = int(m.group(1))
        elif (m := re.search(r"Used (\d+) registers", line)) and entry:
            registers[entry] = int(m.group(1))
    return {e: EntryReport(registers[e], spills.get(e, 0), e in serialized) for e in registers}
