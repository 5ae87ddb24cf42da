// TMA descriptors without a GPU: a stub encoder records what cuTensorMapEncodeTiled would
// receive (dims, strides, box, swizzle) for contiguous and strided tensors; the cache
// encodes once per layout; each TMA rule fails with its own message before the driver.
#include "TestHarness.h"

#include "runtime/TensorMap.h"

#include <string>
#include <vector>

using namespace tessera::runtime;
using tessera::runtime::test::contains;

namespace {

/// What the stub encoder last received, and how often it ran.
struct EncoderCall {
  int dataType = -1, interleave = -1, swizzle = -1, l2 = -1, oobFill = -1;
  void *address = nullptr;
  std::vector<uint64_t> dims, strides;
  std::vector<uint32_t> box, elementStrides;
};
EncoderCall lastCall;
int encoderCalls = 0;
CUresult stubResult = cu::SUCCESS;

CUresult recordingEncoder(TensorMap *map, int dataType, uint32_t rank, void *address,
                          const uint64_t *dims, const uint64_t *strides, const uint32_t *box,
                          const uint32_t *elementStrides, int interleave, int swizzle, int l2,
                          int oobFill) {
  ++encoderCalls;
  lastCall = {dataType, interleave, swizzle, l2, oobFill, address,
              std::vector<uint64_t>(dims, dims + rank),
              std::vector<uint64_t>(strides, strides + rank - 1),
              std::vector<uint32_t>(box, box + rank),
              std::vector<uint32_t>(elementStrides, elementStrides + rank)};
  map->opaque[0] = uint64_t(reinterpret_cast<uintptr_t>(address)) ^ dims[0]; // a fingerprint
  return stubResult;
}

/// A bf16 [B, H, N, D] tensor's request for a box of [1, 1, 64, 64] rows x cols.
TensorMapRequest bf16(uint64_t address, std::vector<int64_t> sizes,
                      std::vector<int64_t> strideElements, std::vector<int64_t> box,
                      int64_t swizzle = 128) {
  TensorMapRequest r;
  r.address = address;
  r.dtype = "bf16";
  r.sizes = std::move(sizes);
  for (int64_t s : strideElements)
    r.strideBytes.push_back(s * 2);
  r.box = std::move(box);
  r.swizzleBytes = swizzle;
  return r;
}

std::string errorOf(const TensorMapRequest &request) {
  try {
    tiledEncoding(request);
  } catch (const TensorMapError &e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST(tensorMapContiguousTensorInnermostFirst) {
  TensorMapCache cache(&recordingEncoder);
  // [B=2, H=3, N=100, D=64]: TMA's dims run D, N, H, B; strides (bytes) those of N, H, B.
  cache.get(bf16(0x10000, {2, 3, 100, 64}, {3 * 100 * 64, 100 * 64, 64, 1}, {1, 1, 64, 64}));
  EXPECT(lastCall.dims == (std::vector<uint64_t>{64, 100, 3, 2}));
  EXPECT(lastCall.strides == (std::vector<uint64_t>{128, 100 * 128, 3 * 100 * 128}));
  EXPECT(lastCall.box == (std::vector<uint32_t>{64, 64, 1, 1}));
  EXPECT(lastCall.elementStrides == (std::vector<uint32_t>{1, 1, 1, 1}));
  EXPECT_EQ(lastCall.dataType, cu::TENSOR_MAP_DATA_TYPE_BFLOAT16);
  EXPECT_EQ(lastCall.swizzle, cu::TENSOR_MAP_SWIZZLE_128B);
  EXPECT_EQ(lastCall.interleave, cu::TENSOR_MAP_INTERLEAVE_NONE);
  EXPECT_EQ(lastCall.oobFill, cu::TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  EXPECT(lastCall.address == reinterpret_cast<void *>(0x10000));
}

TEST(tensorMapStridedViews) {
  TensorMapCache cache(&recordingEncoder);
  // Heads-second layout viewed as [B, H, N, D] (transposed heads: q.view(B, N, H, D)
  // .transpose(1, 2)): strides N*H*D, D, H*D, 1 elements.
  cache.get(bf16(0x20000, {2, 8, 100, 64}, {100 * 8 * 64, 64, 8 * 64, 1}, {1, 1, 128, 64}));
  EXPECT(lastCall.dims == (std::vector<uint64_t>{64, 100, 8, 2}));
  EXPECT(lastCall.strides == (std::vector<uint64_t>{8 * 64 * 2, 64 * 2, 100 * 8 * 64 * 2}));
  EXPECT(lastCall.box == (std::vector<uint32_t>{64, 128, 1, 1}));
  // A slice of the keys (k[:, :, 10:90]) of a [1, 2, 100, 32] f32 tensor: the row stride
  // stays 128 bytes, the address moves by 10 rows; 64-byte swizzle for 16-float rows.
  TensorMapRequest r;
  r.address = 0x30000 + 10 * 32 * 4;
  r.dtype = "f32";
  r.sizes = {1, 2, 80, 32};
  r.strideBytes = {2 * 100 * 32 * 4, 100 * 32 * 4, 32 * 4, 4};
  r.box = {1, 1, 64, 16};
  r.swizzleBytes = 64;
  cache.get(r);
  EXPECT(lastCall.dims == (std::vector<uint64_t>{32, 80, 2, 1}));
  EXPECT(lastCall.strides == (std::vector<uint64_t>{128, 100 * 128, 2 * 100 * 128}));
  EXPECT_EQ(lastCall.swizzle, cu::TENSOR_MAP_SWIZZLE_64B);
  EXPECT_EQ(lastCall.dataType, cu::TENSOR_MAP_DATA_TYPE_FLOAT32);
}

TEST(tensorMapCacheEncodesOncePerLayout) {
  TensorMapCache cache(&recordingEncoder);
  int before = encoderCalls;
  TensorMapRequest q = bf16(0x40000, {1, 2, 33, 64}, {2 * 33 * 64, 33 * 64, 64, 1}, {1, 1, 64, 64});
  TensorMap first = cache.get(q);
  TensorMap again = cache.get(q);
  EXPECT_EQ(encoderCalls, before + 1);
  EXPECT_EQ(cache.encodes(), size_t(1));
  EXPECT_EQ(first.opaque[0], again.opaque[0]);
  // Another pointer, shape, box or swizzle is another descriptor.
  TensorMapRequest moved = q, longer = q, narrower = q, unswizzled = q;
  moved.address += 1 << 20;
  longer.sizes[2] = 34;
  narrower.box[2] = 32;
  unswizzled.swizzleBytes = 0;
  for (const TensorMapRequest &r : {moved, longer, narrower, unswizzled})
    cache.get(r);
  EXPECT_EQ(encoderCalls, before + 5);
  EXPECT_EQ(cache.size(), size_t(5));
  // A bounded cache starts over rather than growing.
  TensorMapCache small(&recordingEncoder, 2);
  for (const TensorMapRequest &r : {q, moved, longer})
    small.get(r);
  EXPECT_EQ(small.size(), size_t(1));
}

TEST(tensorMapRulesNameWhatIsWrong) {
  const std::vector<int64_t> contiguous = {2 * 64 * 64, 64 * 64, 64, 1};
  auto ok = bf16(0x50000, {1, 2, 64, 64}, contiguous, {1, 1, 64, 64});
  EXPECT_EQ(errorOf(ok), std::string());
  auto with = [&](auto change) {
    TensorMapRequest r = ok;
    change(r);
    return errorOf(r);
  };
  EXPECT(contains(with([](auto &r) { r.address += 8; }), "not 16-byte aligned"));
  EXPECT(contains(with([](auto &r) { r.strideBytes[3] = 128; }),
                  "unsupported stride 128 bytes in the last dimension"));
  EXPECT(contains(with([](auto &r) { r.strideBytes[3] = 128; }),
                  "make it contiguous in the last dimension"));
  EXPECT(contains(with([](auto &r) { r.strideBytes[2] = 66 * 2 + 2; }),
                  "stride 134 bytes of dim 2"));
  EXPECT(contains(with([](auto &r) { r.strideBytes[0] = int64_t(1) << 40; }),
                  "multiple of 16 bytes below 2^40"));
  EXPECT(contains(with([](auto &r) { r.strideBytes[1] = 0; }), "positive multiple of 16"));
  EXPECT(contains(with([](auto &r) { r.box[2] = 257; }), "TMA copies 1 to 256 per dim"));
  EXPECT(contains(with([](auto &r) { r.box[0] = 0; }), "TMA copies 1 to 256 per dim"));
  EXPECT(contains(with([](auto &r) { r.box[3] = 4; }),
                  "spans 8 bytes in the last dim; TMA needs a multiple of 16"));
  EXPECT(contains(with([](auto &r) { r.box[3] = 128; }),
                  "256 bytes in the last dim, more than the 128-byte swizzle span"));
  EXPECT(contains(with([](auto &r) { r.swizzleBytes = 32; }), "more than the 32-byte swizzle"));
  EXPECT_EQ(with([](auto &r) { r.swizzleBytes = 0, r.box[3] = 128; }), std::string());
  EXPECT(contains(with([](auto &r) { r.swizzleBytes = 16; }), "swizzle 16 bytes"));
  EXPECT(contains(with([](auto &r) { r.sizes[2] = 0; }), "outside TMA's 1 to 2^32"));
  EXPECT(contains(with([](auto &r) { r.sizes[0] = (int64_t(1) << 32) + 1; }), "1 to 2^32"));
  EXPECT(contains(with([](auto &r) { r.dtype = "f64"; }), "dtype 'f64'"));
  EXPECT(contains(with([](auto &r) {
                    r.sizes = {1, 1, 1, 1, 1, 64};
                    r.strideBytes = {128, 128, 128, 128, 128, 2};
                    r.box = {1, 1, 1, 1, 1, 64};
                  }),
                  "rank 6 is outside TMA's 1 to 5"));
  EXPECT(contains(with([](auto &r) { r.box.pop_back(); }), "one entry per dim"));
  // Rules are checked before the driver: a refused tensor never reaches the encoder.
  TensorMapCache cache(&recordingEncoder);
  int before = encoderCalls;
  TensorMapRequest misaligned = ok;
  misaligned.address += 2;
  EXPECT_THROWS(cache.get(misaligned), TensorMapError);
  EXPECT_EQ(encoderCalls, before);
}

TEST(tensorMapDriverRefusalIsAnError) {
  TensorMapCache cache(&recordingEncoder);
  stubResult = cu::ERROR_INVALID_VALUE;
  bool thrown = false;
  try {
    cache.get(bf16(0x60000, {1, 1, 64, 64}, {4096, 4096, 64, 1}, {1, 1, 64, 64}));
  } catch (const CudaError &e) {
    thrown = contains(e.what(), "cuTensorMapEncodeTiled failed") &&
             contains(e.what(), "box [1, 1, 64, 64]");
  }
  stubResult = cu::SUCCESS;
  EXPECT(thrown);
  EXPECT_EQ(cache.size(), size_t(0)); // a failure is not cached
}
