"""The launch record's decoder as Python sees it (tessera._runtime.LaunchRecord,
docs/LAUNCH_RECORD.md): grids and workspaces from argument shapes (rounding up, down by
negative divisors, N = 1 and N not a tile multiple), symbolic sizes, packing, and clear
errors for malformed records, other versions and wrong arguments. No GPU, no compiler."""
import json

import pytest

from tessera import _runtime

Record = _runtime.LaunchRecord
VERSION = _runtime.LAUNCH_RECORD_VERSION


def record(workspaces=(), grids=(({"dim": [0, 2], "divide": [64]}, {"dim": [0, 1]}),),
           arguments=(4, 4)):
    return {"version": VERSION, "arguments": list(arguments),
            "workspaces": [{"dtype": d, "shape": list(s)} for d, s in workspaces],
            "launches": [{"kernel": f"k{i}", "block": 128, "smem": 64 * i, "grid": list(g)}
                         for i, g in enumerate(grids)]}


def parse(r):
    return Record.parse(json.dumps(r))


@pytest.mark.parametrize("n", [1, 17, 64, 65, 4097])
def test_grids_round_up_and_down(n):
    r = parse(record(grids=[({"dim": [1, 2], "divide": [64]},),
                            ({"dim": [1, 2], "divide": [-64]},),
                            ({"dim": [1, 2], "divide": [16, -4, 3]}, {"constant": 5},
                             {"dim": [0, 0]})]))
    _, grids = r.plan([(2, 3, n, 8), (2, 3, n, 8)])
    assert grids == [(-(-n // 64), 1, 1), (n // 64, 1, 1), (-(-(-(-n // 16) // 4) // 3), 5, 2)]


def test_workspaces_read_arguments_and_earlier_workspaces():
    r = parse(record(workspaces=[("i32", [{"dim": [0, 0]}, {"dim": [1, 2], "divide": [16]}]),
                                 ("f32", [{"dim": [2, 1], "divide": [-2]},
                                          {"dim": [0, 1], "zero_if_equal": [1, 1]}])],
                     grids=[({"product": [{"dim": [0, 1]}, {"dim": [3, 0]}]},)]))
    assert r.workspace_dtypes == ["i32", "f32"] and r.kernels == ["k0"]
    workspaces, grids = r.plan([(2, 8, 100, 64), (2, 2, 300, 64)])
    assert workspaces == [(2, 19), (9, 8)] and grids == [(8 * 9, 1, 1)]
    workspaces, _ = r.plan([(2, 8, 100, 64), (2, 8, 300, 64)])
    assert workspaces == [(2, 19), (9, 0)]  # heads equal: no per-head sums


def test_symbolic_sizes_follow_python_arithmetic():
    """plan_symbolic evaluates with Python's operators, as torch's SymInts need: a stand-in
    number type records each operation."""
    ops = []

    class Size(int):
        def __floordiv__(self, q):
            ops.append("//")
            return Size(int(self) // int(q))

        def __neg__(self):
            return Size(-int(self))

    r = parse(record(workspaces=[("f32", [{"dim": [0, 2], "divide": [64]}])]))
    workspaces, grids = r.plan_symbolic([[Size(2), Size(3), Size(100), Size(8)],
                                         [2, 3, 100, 8]])
    assert workspaces == [(2,)] and grids == [(2, 3, 1)] and ops == ["//", "//"]


def test_packing_follows_the_documented_order():
    class T:
        def __init__(self, ptr, shape, stride):
            self.ptr, self.shape, self.strides = ptr, shape, stride

        def data_ptr(self):
            return self.ptr

        def stride(self):
            return self.strides

    r = parse(record(workspaces=[("f32", [{"dim": [0, 0]}])], arguments=(4, 3)))
    values, slots = r.pack([T(16, (1, 2, 3, 4), (24, 12, 4, 1)), T(32, (1, 2, 3), (6, 3, 1)),
                            T(48, (5,), (1,))])
    assert slots == [0, 11, 20]
    assert values == [16, 16, 0, 1, 2, 3, 4, 24, 12, 4, 1, 32, 32, 0, 1, 2, 3, 6, 3, 1,
                      48, 48, 0, 5, 1]
    with pytest.raises(ValueError, match="2 arguments and 1 workspaces, got 2 tensors"):
        r.pack([T(16, (1, 2, 3, 4), (24, 12, 4, 1)), T(32, (1, 2, 3), (6, 3, 1))])


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop("version"), "has no version"),
    (lambda r: r.update(version=VERSION + 1), f"version {VERSION + 1} is not read"),
    (lambda r: r.pop("arguments"), "record has no field 'arguments'"),
    (lambda r: r.update(extra=1), "record has an unknown field 'extra'"),
    (lambda r: r["launches"][0].update(block=0), "1 to 1024 threads"),
    (lambda r: r["launches"][0].update(grid=[{"dim": [2, 0]}]),
     r"launches\[0\].grid\[0\] reads argument 2 of 2"),
    (lambda r: r["launches"][0].update(grid=[{"dim": [0, 1], "divide": [0]}]), "divides by 0"),
    (lambda r: r["launches"][0].update(grid=[]), "1 to 3 expected"),
    (lambda r: r.update(launches=[]), "has no launches"),
])
def test_malformed_records_are_named(mutate, message):
    r = record()
    mutate(r)
    with pytest.raises(_runtime.LaunchRecordError, match=message):
        parse(r)


def test_wrong_arguments_are_named():
    r = parse(record())
    with pytest.raises(ValueError, match="take 2 arguments, got 1"):
        r.plan([(1, 1, 1, 8)])
    with pytest.raises(ValueError, match="argument 1 must have rank 4, got rank 3"):
        r.plan([(1, 1, 1, 8), (1, 1, 1)])
    with pytest.raises(ValueError, match="argument 0 has a negative size"):
        r.plan([(1, 1, -1, 8), (1, 1, 1, 8)])
    for text in (b"", b"\xff", b"[" * 10000, b'{"version": 1.0}'):
        with pytest.raises(ValueError, match="launch record"):
            Record.parse(text)


def test_fake_workspaces_stay_symbolic():
    """The block-mask op's fake implementation plans workspaces over torch's symbolic sizes
    (plan_symbolic): traced with a symbolic N, their shapes are formulas of N (ceil(N / 64)
    query tiles), not the traced N's values. Compiles PTX; runs nothing."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("tessera._core")
    from torch.fx.experimental.proxy_tensor import make_fx
    import tessera
    doc = tessera.Buffer("document_id")
    kernel = tessera.compile(tessera.attention(mask_mod=lambda b, h, i, j: doc[i] == doc[j]),
                             head_dim=64, dtype="bfloat16", target="cuda")
    op = tessera.torch_op(kernel)
    q = torch.randn(2, 4, 300, 64, dtype=torch.bfloat16)
    graph = make_fx(lambda q, k, v, d: op.block_mask(q, k, v, document_id=d),
                    tracing_mode="symbolic")(q, q, q, torch.zeros(300, dtype=torch.int32))
    shapes = [n.meta["val"].shape for n in graph.graph.nodes
              if n.op == "call_function" and "getitem" in str(n.target)]
    assert len(shapes) == len(kernel._image.record.workspace_dtypes) > 0
    tiles = shapes[0][2]
    assert isinstance(tiles, torch.SymInt) and "//64" in str(tiles).replace(" ", "")
    assert tiles.node.hint == -(-300 // 64)
