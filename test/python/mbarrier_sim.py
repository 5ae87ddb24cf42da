"""A small interpreter of one CTA of a PTX kernel that follows only its control flow and
its synchronisation — block barriers, mbarriers (arrivals, transaction bytes, phases,
`try_wait.parity`) and TMA copies completing them — to find protocol deadlocks without a
GPU. Values that only feed data (floats, shared / global memory, wgmma) are not modelled:
float registers read as 0 and loads as 0 (global loads through a callback where a walk's
lists steer it), so a branch on data takes one arbitrary side; each thread's local memory
is kept (ring counters live there).

Each simulated thread stands for its warp where barriers count threads (`bar.sync 1, 128`:
four of them; `bar.sync 0`: all), so warp-specialised kernels are run with one thread a
warp (lane 0, the one that arrives on a consumer's mbarrier). Threads are interleaved
adversarially: each runs until it blocks, in the order given, and a copy lands at once
(`lazy_copies=False`: an issuer may run far ahead of slower warps) or only when every
thread is blocked (`lazy_copies=True`: copies slower than any warp).
Covers the instructions Tessera's sm_90a softmax kernels use; anything else raises."""
import re
from collections import deque

WIDTH_MASK = {8: 0xFF, 16: 0xFFFF, 32: (1 << 32) - 1, 64: (1 << 64) - 1}
PARAM_TAG = 1 << 48  # a parameter's address reads as this | its index


def parse(ptx, entry):
    """(instructions, labels) of `entry`'s body: (opcode, guard, operands); an inline
    `try_wait.parity` loop becomes one ("WAIT", None, [address, parity])."""
    lines = ptx[ptx.index(f".entry {entry}"):].splitlines()
    i = next(i for i, line in enumerate(lines) if line.strip() == "{") + 1
    ops, labels = [], {}
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line == "}":
            break
        if not line or line.startswith(("//", ".reg", ".shared", ".local", ".pragma")):
            continue
        if line == "{":  # an inline-asm block: only the mbarrier wait loop matters here
            body = []
            while lines[i].strip() != "}":
                body.append(lines[i].strip())
                i += 1
            i += 1
            wait = [re.search(r"try_wait\.parity\.shared::cta\.b64 \w+, \[(%\w+)\], (%\w+)", b)
                    for b in body]
            wait = [m for m in wait if m]
            if wait:
                ops.append(("WAIT", None, [wait[0].group(1), wait[0].group(2)]))
                continue
            # Another block (a lane-0 arrive, a wgmma): its own predicates renamed apart.
            local = [m.group(1) for b in body for m in [re.match(r"\.reg \.pred (\w+);", b)] if m]
            renamed = []
            for b in body:
                if not b.startswith(".reg"):
                    for name in local:
                        b = re.sub(rf"(?<![%\w]){name}\b", f"%__{name}", b)
                    renamed.append(b)
            lines[i:i] = renamed  # parsed next, as if written inline
            continue
        if line.endswith(":"):
            labels[line[:-1]] = len(ops)
            continue
        line = line.rstrip(";")
        guard = None
        m = re.match(r"@(!?%\w+)\s+(.*)", line)
        if m:
            guard, line = m.group(1), m.group(2)
        opcode, _, rest = line.partition(" ")
        operands = [a.strip() for a in re.split(r",(?![^{]*})(?![^\[]*\])", rest)] if rest else []
        ops.append((opcode, guard, operands))
    return ops, labels


def _signed(v, width):
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def _width(type_name):
    digits = re.sub(r"\D", "", type_name)
    return int(digits) if digits else 64


class Thread:
    def __init__(self, tid):
        self.tid, self.pc, self.regs, self.state = tid, 0, {}, "run"
        self.local = {}  # the thread's local memory (ring counters kept there), by address


def simulate(ptx, entry, params, ctaid, nctaid, tids, lazy_copies=False, box_bytes=8192,
             max_steps=20_000_000, copies=None, load=None):
    """Runs one CTA, `ctaid` of the grid `nctaid` (ints: x alone; or (x, y, z) tuples);
    "ok", or a line naming the deadlock (each thread's state) or the step limit.
    `params`: {parameter index: integer value}. `copies`, a list, receives each TMA copy
    as (descriptor parameter index, coordinates innermost first). `load`: global address
    -> value for the loads a walk's control flow reads (its lists). `box_bytes`: the
    bytes each copy brings (every box the same size)."""
    ops, labels = parse(ptx, entry)
    block = tuple(ctaid) + (0,) * (3 - len(ctaid)) if isinstance(ctaid, tuple) else (ctaid, 0, 0)
    grid = tuple(nctaid) + (1,) * (3 - len(nctaid)) if isinstance(nctaid, tuple) else (nctaid, 1, 1)
    threads = [Thread(t) for t in tids]
    barriers = {}  # shared address -> arrivals expected / left, pending bytes, phase
    named_barriers = {}  # id -> the threads arrived in this round, how many it takes
    landing = deque()

    def value(t, a):
        if a.startswith("%"):
            special = {"%tid.x": t.tid, **{f"%ctaid.{d}": v for d, v in zip("xyz", block)},
                       **{f"%nctaid.{d}": v for d, v in zip("xyz", grid)}}
            return special.get(a, t.regs.get(a, 0))
        if a.startswith("0f") or a.startswith("0d"):
            return 0.0
        if a[0].isdigit() or a[0] == "-":
            return int(a, 0)
        m = re.search(r"_param_(\d+)$", a)  # a parameter's address: its index, tagged
        return (PARAM_TAG | int(m.group(1))) if m else 0x1000  # else the shared memory

    def address(t, a):
        m = re.match(r"\[([%\w]+)(?:\+(-?\d+))?\]", a)
        return value(t, m.group(1)) + int(m.group(2) or 0)

    def settle(addr):
        b = barriers[addr]
        if b["left"] == 0 and b["bytes"] == 0:
            b["phase"] += 1
            b["left"] = b["count"]

    def land():
        addr = landing.popleft()
        barriers[addr]["bytes"] -= box_bytes
        settle(addr)

    def step(t):
        """Runs `t` until it blocks or ends; whether it moved."""
        moved = False
        while t.state == "run":
            opcode, guard, a = ops[t.pc]
            if guard and bool(t.regs.get(guard.lstrip("!"), False)) == guard.startswith("!"):
                t.pc += 1
                continue
            parts = opcode.split(".")
            base, type_name = parts[0], parts[-1]
            width = _width(type_name)
            r = t.regs
            nxt = t.pc + 1
            if opcode == "WAIT":
                addr, parity = value(t, a[0]), value(t, a[1]) & 1
                if barriers[addr]["phase"] & 1 == parity:  # that phase has not completed
                    t.state = ("wait", addr, parity)
                    return moved
            elif base == "bra":
                nxt = labels[a[0]]
            elif base == "ret":
                t.state = "done"
                return True
            elif opcode == "bar.warp.sync":
                pass
            elif base == "bar":
                ident = value(t, a[0]) if a else 0
                needed = value(t, a[1]) // 32 if len(a) > 1 else len(threads)
                named = named_barriers.setdefault(ident, {"arrived": []})
                named["needed"] = needed  # the last arrival's count (all give the same)
                named["arrived"].append(t)
                t.pc = nxt
                if len(named["arrived"]) >= named["needed"]:
                    for waiter in named["arrived"]:
                        if waiter.state == ("bar", ident):
                            waiter.state = "run"
                    named["arrived"] = []
                elif ".arrive" not in opcode:
                    t.state = ("bar", ident)
                    return True
                moved = True
                continue
            elif opcode.startswith("mbarrier.arrive.shared"):
                addr = address(t, a[1])
                barriers[addr]["left"] -= 1
                settle(addr)
            elif base == "setmaxnreg":
                pass
            elif opcode.startswith("mbarrier.init"):
                count = value(t, a[1])
                barriers[address(t, a[0])] = dict(count=count, left=count, bytes=0, phase=0)
            elif opcode.startswith("mbarrier.arrive.expect_tx"):
                addr = address(t, a[1])
                barriers[addr]["bytes"] += value(t, a[2])
                barriers[addr]["left"] -= 1
                settle(addr)
            elif opcode.startswith("cp.async.bulk.tensor"):
                if copies is not None:
                    descriptor, coords = re.match(r"\[(%\w+), \{(.*)\}\]", a[1]).groups()
                    copies.append((value(t, descriptor) & ~PARAM_TAG,
                                   [_signed(value(t, x.strip()), 32) for x in coords.split(",")]))
                landing.append(address(t, a[-1]))
                if not lazy_copies:
                    land()
            elif opcode.startswith("st.local"):
                t.local[address(t, a[0])] = value(t, a[1])
            elif base in ("fence", "wgmma", "st"):
                pass
            elif base in ("vote", "shfl", "mov", "cvta"):
                r[a[0]] = value(t, a[1])
            elif opcode.startswith("ld.local"):
                r[a[0]] = t.local.get(address(t, a[1]), 0)
            elif opcode.startswith("ld.global") and load is not None:
                v = load(address(t, a[1]))
                r[a[0]] = v & WIDTH_MASK[width] if ".s" not in opcode else v
            elif base == "ld":
                m = re.search(r"param_(\d+)", a[1]) if ".param" in opcode else None
                r[a[0]] = params.get(int(m.group(1)), 0) if m else 0
            elif base == "setp" and parts[2] == "f32":
                r[a[0]] = False
            elif "f32" in parts or "bf16x2" in opcode or "f16x2" in opcode:
                r[a[0]] = 0.0
            elif base == "cvt":
                to, frm = parts[-2], parts[-1]
                v = value(t, a[1]) & WIDTH_MASK[_width(frm)]
                if frm.startswith("s"):
                    v = _signed(v, _width(frm))
                r[a[0]] = v & WIDTH_MASK[_width(to)]
            elif base == "setp":
                x, y = value(t, a[1]), value(t, a[2])
                if type_name.startswith("s"):
                    x, y = _signed(x, width), _signed(y, width)
                else:
                    x, y = x & WIDTH_MASK[width], y & WIDTH_MASK[width]
                r[a[0]] = {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y,
                           "gt": x > y, "ge": x >= y}[parts[1]]
            elif base == "selp":
                r[a[0]] = value(t, a[1]) if r.get(a[3]) else value(t, a[2])
            elif type_name == "pred":
                x = bool(value(t, a[1]))
                y = bool(value(t, a[2])) if len(a) > 2 else False
                r[a[0]] = {"and": x and y, "or": x or y, "xor": x != y, "not": not x}[base]
            else:
                r[a[0]] = _integer(opcode, base, type_name, width,
                                   [value(t, x) for x in a[1:]]) & WIDTH_MASK[width * (2 if ".wide" in opcode else 1)]
            t.pc = nxt
            moved = True
        return moved

    steps = 0
    while True:
        moved = False
        for t in threads:
            moved |= step(t)
            steps += 1
        for t in threads:
            if t.state[0] == "wait" and barriers[t.state[1]]["phase"] & 1 != t.state[2]:
                t.state = "run"
                moved = True
        if all(t.state == "done" for t in threads):
            return "ok"
        if not moved:
            if landing:
                land()
                continue
            return "deadlock: " + ", ".join(
                f"thread {t.tid} {t.state} at {ops[t.pc][0]} (#{t.pc})" for t in threads)
        if steps > max_steps:
            return "step limit"


def _integer(opcode, base, type_name, width, x):
    signed = type_name.startswith("s")
    a = x[0]
    b = x[1] if len(x) > 1 else 0
    if signed:
        a, b = _signed(a, width), _signed(b, width)
    else:
        a, b = a & WIDTH_MASK[width], b & WIDTH_MASK[width]
    if base == "add":
        return a + b
    if base == "sub":
        return a - b
    if base == "mul":
        return a * b
    if base == "mad":
        return a * b + x[2]
    if base in ("div", "rem"):  # PTX truncates toward zero
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        return q if base == "div" else a - b * q
    if base == "shl":
        return a << b
    if base == "shr":
        return a >> b
    if base in ("and", "or", "xor"):
        return {"and": a & b, "or": a | b, "xor": a ^ b}[base]
    if base == "not":
        return ~a
    if base in ("min", "max"):
        return min(a, b) if base == "min" else max(a, b)
    if base == "bfe":
        return (a >> b) & ((1 << x[2]) - 1)
    if base == "neg":
        return -a
    raise NotImplementedError(opcode)
