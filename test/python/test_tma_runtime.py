"""The runtime side of TMA-fed, persistent kernels (issue 25), without a GPU: the
descriptor's driver arguments for contiguous, sliced and head-transposed tensors and each
TMA rule's message (tessera._runtime.tensor_map_encoding, the checks made before the
driver), launch records of version 2 (TMA descriptors, SM-count grids) decoded, written by
the compiler facade from hand-written attributes, and launched by KernelImage with stand-in
kernels. The stub-driver encoder and cache tests are C++ (test/runtime/TensorMapTests.cpp)."""
import json

import pytest

from tessera import _runtime

torch = pytest.importorskip("torch")

ELEMENT = {torch.bfloat16: ("bf16", 2), torch.float16: ("f16", 2), torch.float32: ("f32", 4)}


def encoding(t, box, swizzle=128, address=None):
    dtype, size = ELEMENT[t.dtype]
    return _runtime.tensor_map_encoding(t.data_ptr() if address is None else address, dtype,
                                        list(t.shape), [s * size for s in t.stride()],
                                        list(box), swizzle)


def aligned(*shape, dtype=torch.bfloat16):
    return torch.empty(shape, dtype=dtype)  # CPU allocations are 64-byte aligned


@pytest.mark.parametrize("n", [1, 100, 128, 4097])
def test_contiguous_tensor_innermost_first(n):
    q = aligned(2, 3, n, 64)
    e = encoding(q, (1, 1, 128, 64))
    assert e["dims"] == [64, n, 3, 2]
    assert e["strides"] == [64 * 2, n * 64 * 2, 3 * n * 64 * 2]
    assert e["box"] == [64, 128, 1, 1] and e["swizzle"] == 3  # CU_TENSOR_MAP_SWIZZLE_128B


def test_strided_views():
    # Heads transposed: [B, N, H, D] storage viewed as [B, H, N, D].
    bnhd = aligned(2, 100, 8, 64)
    e = encoding(bnhd.transpose(1, 2), (1, 1, 64, 64))
    assert e["dims"] == [64, 100, 8, 2]
    assert e["strides"] == [8 * 64 * 2, 64 * 2, 100 * 8 * 64 * 2]
    # A slice of the keys: 16-row aligned offset keeps the address 16-byte aligned.
    k = aligned(1, 2, 100, 32, dtype=torch.float32)[:, :, 16:90]
    e = encoding(k, (1, 1, 64, 16), swizzle=64)
    assert e["dims"] == [32, 74, 2, 1] and e["strides"] == [128, 100 * 128, 2 * 100 * 128]
    assert e["swizzle"] == 2


@pytest.mark.parametrize("make,box,swizzle,message", [
    (lambda: aligned(1, 2, 64, 64).transpose(2, 3), (1, 1, 64, 64), 128,
     r"unsupported stride 128 bytes in the last dimension .* make it contiguous in the last"),
    (lambda: aligned(1, 2, 64, 65)[..., :64], (1, 1, 64, 64), 128,
     "stride 130 bytes of dim 2"),
    (lambda: aligned(1, 2, 64, 64)[:, :, :, 1:], (1, 1, 64, 56), 128, "not 16-byte aligned"),
    (lambda: aligned(1, 2, 64, 64), (1, 1, 300, 64), 128, "TMA copies 1 to 256 per dim"),
    (lambda: aligned(1, 2, 64, 64), (1, 1, 64, 4), 0, "spans 8 bytes .* multiple of 16"),
    (lambda: aligned(1, 2, 64, 128), (1, 1, 64, 128), 128, "more than the 128-byte swizzle"),
    (lambda: aligned(1, 2, 64, 64), (1, 1, 64, 64), 96, "swizzle 96 bytes"),
    (lambda: aligned(1, 1, 1, 1, 2, 64), (1, 1, 1, 1, 2, 64), 128, "rank 6"),
    (lambda: aligned(1, 2, 0, 64), (1, 1, 64, 64), 128, "1 to 2\\^32"),
])
def test_each_rule_names_what_is_wrong(make, box, swizzle, message):
    with pytest.raises(_runtime.TensorMapError, match=message):
        encoding(make(), box, swizzle)


def v2_record(tensor_maps=(), grid=({"sm_count": 1},), version=2):
    r = {"version": version, "arguments": [4, 4],
         "workspaces": [{"dtype": "f32", "shape": [{"dim": [0, 2]}]}],
         "launches": [{"kernel": "k", "block": 384, "smem": 0, "grid": list(grid)}]}
    if tensor_maps:
        r["tensor_maps"] = list(tensor_maps)
    return _runtime.LaunchRecord.parse(json.dumps(r))


def test_versions():
    assert _runtime.LAUNCH_RECORD_VERSION == 2 and _runtime.OLDEST_LAUNCH_RECORD_VERSION == 1
    v1 = v2_record(grid=({"dim": [0, 2], "divide": [64]},), version=1)
    assert v1.version == 1 and v1.tensor_maps == [] and not v1.uses_sm_count
    assert v1.plan([(1, 1, 65, 8)] * 2)[1] == [(2, 1, 1)]
    with pytest.raises(_runtime.LaunchRecordError, match="version 3 is not read by this "
                                                         "runtime, which reads versions 1 to 2"):
        v2_record(version=3)
    with pytest.raises(_runtime.LaunchRecordError, match="needs record version 2"):
        v2_record(version=1)


@pytest.mark.parametrize("n", [1, 100, 128 * 132 + 1])
def test_persistent_grid_is_min_of_sms_and_tiles(n):
    r = v2_record(grid=({"min": [{"sm_count": 2}, {"dim": [0, 2], "divide": [128]}]},
                        {"constant": 1}))
    assert r.uses_sm_count
    _, grids = r.plan([(1, 1, n, 64)] * 2, sm_count=132)
    assert grids == [(min(264, -(-n // 128)), 1, 1)]
    _, symbolic = r.plan_symbolic([[1, 1, n, 64]] * 2, sm_count=132)
    assert symbolic == grids
    with pytest.raises(_runtime.LaunchRecordError, match="needs the device's SM count"):
        r.plan([(1, 1, n, 64)] * 2)


def test_tensor_maps_are_decoded_and_named_in_errors():
    r = v2_record(tensor_maps=[{"argument": 1, "dtype": "bf16", "box": [1, 1, 64, 64],
                                "swizzle": 128},
                               {"argument": 2, "dtype": "f32", "box": [64], "swizzle": 0}])
    assert r.tensor_maps == [(1, "bf16", [1, 1, 64, 64], 128), (2, "f32", [64], 0)]
    q = aligned(1, 2, 64, 64)
    # The rules are checked before any driver call: a bad layout is named by its argument.
    with pytest.raises(_runtime.LaunchRecordError,
                       match=r"argument 1 \(tensor_maps\[0\]\).*contiguous in the last"):
        r.encode_tensor_maps([q, q.transpose(2, 3), aligned(64, dtype=torch.float32)])
    with pytest.raises(_runtime.LaunchRecordError, match="describes argument 3 of 3"):
        v2_record(tensor_maps=[{"argument": 3, "dtype": "f32", "box": [8], "swizzle": 0}])
    available, _ = _runtime.driver_available()
    if not available:  # a good layout reaches the driver, which is not here
        with pytest.raises(_runtime.CudaError, match="CUDA driver unavailable"):
            r.encode_tensor_maps([q, q, aligned(64, dtype=torch.float32)])


GPU_MODULE = """
func.func @entry(%q: memref<?x?x?x64xbf16>, %o: memref<?x?x?x64xbf16>, %w: memref<?xf32>)
    attributes {
  tessera.launches = [{kernel = "k0", block = 384 : i64, smem = 1024 : i64,
                       grid = [array<i64: -6, 2, -5, 2, 0, 2, 128>, array<i64: 0, 1>]}],
  tessera.workspaces = [{dtype = "f32", shape = [array<i64: 0, 2, 1>]}],
  %MAPS%} {
  return
}
"""
MAPS = ('tessera.tensor_maps = [{argument = 0 : i64, dtype = "bf16", '
        'box = array<i64: 1, 1, 128, 64>, swizzle = 128 : i64}]')


def test_facade_writes_version_2_from_attributes():
    core = pytest.importorskip("tessera._core")
    text = core.launch_record(GPU_MODULE.replace("%MAPS%", MAPS), "entry")
    r = _runtime.LaunchRecord.parse(text)
    assert r.version == _runtime.LAUNCH_RECORD_VERSION and r.argument_ranks == [4, 4]
    assert json.loads(text)["launches"][0]["grid"][0] == {
        "min": [{"sm_count": 2}, {"dim": [0, 2], "divide": [128]}]}
    assert r.tensor_maps == [(0, "bf16", [1, 1, 128, 64], 128)]
    assert r.plan([(1, 3, 1000, 64)] * 2, sm_count=132)[1] == [(8, 3, 1)]
    assert r.plan([(1, 3, 10 ** 6, 64)] * 2, sm_count=132)[1] == [(264, 3, 1)]
    # Without the attribute: no descriptors.
    plain = _runtime.LaunchRecord.parse(
        core.launch_record(GPU_MODULE.replace("%MAPS%", "tessera.x = 0"), "entry"))
    assert plain.tensor_maps == []
    bad = MAPS.replace("swizzle = 128 : i64", 'swizzle = "128"')
    with pytest.raises(core.CompileError, match="cannot translate"):
        core.launch_record(GPU_MODULE.replace("%MAPS%", bad), "entry")


def test_image_launches_with_sm_count_and_descriptors(monkeypatch):
    """KernelImage plans persistent grids with the device's SM count (asked once per
    device) and passes TMA descriptors after the memref parameters; kernels without
    descriptors are launched exactly as before (stand-in kernels and record)."""
    from tessera.launch import KernelImage
    launched, asked = [], []

    class Kernel:
        def launch(self, grid, block, smem, stream, params, *maps):
            launched.append((grid, len(params), maps))

    class Record:  # the decoded record, with descriptors from a stand-in encoder
        def __init__(self, record):
            self.record = record

        def __getattr__(self, name):
            return getattr(self.record, name)

        def encode_tensor_maps(self, tensors):
            return b"".join(bytes([i]) * 128 for i, _ in enumerate(self.record.tensor_maps))

    monkeypatch.setattr(_runtime, "multiprocessor_count", lambda i: asked.append(i) or 132)
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda index: 7, raising=False)
    q = aligned(1, 2, 1000, 64)
    for maps, expected in (([{"argument": 0, "dtype": "bf16", "box": [1, 1, 64, 64],
                              "swizzle": 128}], (bytes(128),)), ([], ())):
        image = object.__new__(KernelImage)
        image.record = Record(v2_record(
            tensor_maps=maps, grid=({"min": [{"sm_count": 1}, {"dim": [0, 2]}]},)))
        image._describe()
        image._loaded = {0: (None, [Kernel()])}
        image.launch([q, q])
        image.launcher([q, q])([q, q])
        assert launched == [((132, 1, 1), 11 * 2 + 5, expected)] * 2
        launched.clear()
    assert asked == [0, 0]  # once per image and device
