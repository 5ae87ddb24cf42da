"""Issue 25's runtime side on a GPU: TMA descriptors encoded by the real driver's
cuTensorMapEncodeTiled for real tensors (contiguous, head-transposed, sliced; ragged N),
the cache returning the same descriptor for a repeated call, and the SM count persistent
grids read. No kernel takes a descriptor yet (codegen comes later). Skipped without a GPU."""
import json

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

from tessera import _runtime  # noqa: E402

HOPPER = torch.cuda.get_device_capability() >= (9, 0)


def record(dtype="bf16", box=(1, 1, 64, 64), swizzle=128, rank=4):
    return _runtime.LaunchRecord.parse(json.dumps({
        "version": 2, "arguments": [rank, rank], "workspaces": [],
        "tensor_maps": [{"argument": 0, "dtype": dtype, "box": list(box), "swizzle": swizzle},
                        {"argument": 1, "dtype": dtype, "box": list(box), "swizzle": swizzle}],
        "launches": [{"kernel": "k", "block": 128, "smem": 0,
                      "grid": [{"min": [{"sm_count": 1}, {"dim": [0, 2], "divide": [64]}]}]}]}))


def test_sm_count_is_the_devices():
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    assert _runtime.multiprocessor_count(0) == sms
    q = (2, 4, 10 ** 6, 64)
    assert record().plan([q, q], sm_count=sms)[1] == [(sms, 1, 1)]


@pytest.mark.skipif(not HOPPER, reason="TMA descriptors need sm_90 or newer")
@pytest.mark.parametrize("n", [1, 100, 4096])
def test_driver_encodes_real_tensors(n):
    q = torch.randn(2, 4, n, 64, device="cuda", dtype=torch.bfloat16)
    heads_second = torch.randn(2, n, 4, 64, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
    r = record()
    maps = r.encode_tensor_maps([q, heads_second])
    assert len(maps) == 2 * 128 and maps[:128] != bytes(128)
    assert r.encode_tensor_maps([q, heads_second]) == maps  # from the cache
    other = torch.randn_like(q)
    assert r.encode_tensor_maps([other, heads_second])[:128] != maps[:128]
    # A key slice starting on a 16-byte boundary, f32 with a 64-byte swizzle.
    k = torch.randn(1, 2, n + 32, 32, device="cuda")[:, :, 16:16 + n]
    assert len(record("f32", (1, 1, 64, 16), 64).encode_tensor_maps([k, k])) == 256


@pytest.mark.skipif(not HOPPER, reason="TMA descriptors need sm_90 or newer")
def test_unsupported_layout_is_refused_before_the_driver():
    q = torch.randn(1, 2, 64, 64, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(_runtime.LaunchRecordError, match="contiguous in the last dimension"):
        record().encode_tensor_maps([q, q.transpose(2, 3)])


@pytest.mark.skipif(not HOPPER, reason="TMA descriptors need sm_90 or newer")
def test_the_refused_calls_tensor_alone_encodes():
    # The refusal above once ended in a segmentation fault on an H100 after the driver had
    # encoded q; every argument is now checked before the driver sees any. This keeps q's
    # own encoding (a leading dim of 1) under test.
    q = torch.randn(1, 2, 64, 64, device="cuda", dtype=torch.bfloat16)
    assert len(record().encode_tensor_maps([q, q])) == 256
