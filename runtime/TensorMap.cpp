// TMA descriptors: the rules of cuTensorMapEncodeTiled (as cuda.h documents them) checked
// up front, and the descriptor cache.
#include "runtime/TensorMap.h"

#include <cinttypes>
#include <cstdio>

using namespace tessera::runtime;

namespace {

constexpr int kMaxRank = 5;
constexpr int64_t kMaxDim = int64_t(1) << 32;
constexpr int64_t kMaxStride = int64_t(1) << 40;
constexpr int64_t kMaxBox = 256;

struct DtypeInfo {
  const char *name;
  int64_t bytes;
  int driverType;
};
constexpr DtypeInfo kDtypes[] = {
    {"i32", 4, cu::TENSOR_MAP_DATA_TYPE_INT32},
    {"f32", 4, cu::TENSOR_MAP_DATA_TYPE_FLOAT32},
    {"bf16", 2, cu::TENSOR_MAP_DATA_TYPE_BFLOAT16},
    {"f16", 2, cu::TENSOR_MAP_DATA_TYPE_FLOAT16},
};

const DtypeInfo &dtypeInfo(const std::string &dtype) {
  for (const DtypeInfo &info : kDtypes)
    if (dtype == info.name)
      return info;
  throw TensorMapError("tensor map: dtype '" + dtype + "'; one of i32, f32, bf16, f16 expected");
}

[[noreturn]] void fail(const std::string &what) { throw TensorMapError("tensor map: " + what); }

// No iostreams here: on the GPU machine (Ubuntu 24.04, g++ 13, torch loaded) a
// std::ostringstream in this function segfaulted while formatting a refusal (cuda-gdb:
// frame 2 list(), called from tiledEncoding); plain strings do not touch the locale.
std::string list(const std::vector<int64_t> &values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i)
    out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%" PRIx64, value);
  return text;
}

} // namespace

int64_t tessera::runtime::tensorMapElementBytes(const std::string &dtype) {
  return dtypeInfo(dtype).bytes;
}

TiledEncoding tessera::runtime::tiledEncoding(const TensorMapRequest &r) {
  const DtypeInfo &dtype = dtypeInfo(r.dtype);
  const size_t rank = r.sizes.size();
  if (rank < 1 || rank > size_t(kMaxRank))
    fail("rank " + std::to_string(rank) + " is outside TMA's 1 to 5");
  if (r.strideBytes.size() != rank || r.box.size() != rank)
    fail("sizes " + list(r.sizes) + ", strides " + list(r.strideBytes) + " and box " +
         list(r.box) + " must have one entry per dim");
  if (r.address % 16)
    fail("the tensor's address 0x" + hex(r.address) +
         " is not 16-byte aligned (TMA needs it; a view starting mid-row breaks it)");
  int swizzle;
  switch (r.swizzleBytes) {
  case 0: swizzle = cu::TENSOR_MAP_SWIZZLE_NONE; break;
  case 32: swizzle = cu::TENSOR_MAP_SWIZZLE_32B; break;
  case 64: swizzle = cu::TENSOR_MAP_SWIZZLE_64B; break;
  case 128: swizzle = cu::TENSOR_MAP_SWIZZLE_128B; break;
  default: fail("swizzle " + std::to_string(r.swizzleBytes) + " bytes; 0, 32, 64 or 128 expected");
  }
  const size_t inner = rank - 1; // the caller's last dim is TMA's dim 0
  for (size_t d = 0; d < rank; ++d)
    if (r.sizes[d] < 1 || r.sizes[d] > kMaxDim)
      fail("size " + std::to_string(r.sizes[d]) + " of dim " + std::to_string(d) + " (sizes " +
           list(r.sizes) + ") is outside TMA's 1 to 2^32");
  if (r.strideBytes[inner] != dtype.bytes)
    fail("unsupported stride " + std::to_string(r.strideBytes[inner]) +
         " bytes in the last dimension (strides " + list(r.strideBytes) + ", " + r.dtype +
         " elements of " + std::to_string(dtype.bytes) +
         " bytes): make it contiguous in the last dimension");
  for (size_t d = 0; d < inner; ++d)
    if (r.strideBytes[d] <= 0 || r.strideBytes[d] % 16 || r.strideBytes[d] >= kMaxStride)
      fail("unsupported stride " + std::to_string(r.strideBytes[d]) + " bytes of dim " +
           std::to_string(d) + " (strides " + list(r.strideBytes) +
           "): TMA needs every stride but the last a positive multiple of 16 bytes below 2^40");
  for (size_t d = 0; d < rank; ++d)
    if (r.box[d] < 1 || r.box[d] > kMaxBox)
      fail("box " + list(r.box) + " has dim " + std::to_string(d) + " of " +
           std::to_string(r.box[d]) + "; TMA copies 1 to 256 per dim");
  int64_t innerBoxBytes = r.box[inner] * dtype.bytes;
  if (innerBoxBytes % 16)
    fail("box " + list(r.box) + " spans " + std::to_string(innerBoxBytes) +
         " bytes in the last dim; TMA needs a multiple of 16");
  if (r.swizzleBytes && innerBoxBytes > r.swizzleBytes)
    fail("box " + list(r.box) + " spans " + std::to_string(innerBoxBytes) +
         " bytes in the last dim, more than the " + std::to_string(r.swizzleBytes) +
         "-byte swizzle span");
  TiledEncoding e;
  e.dataType = dtype.driverType;
  e.rank = uint32_t(rank);
  e.swizzle = swizzle;
  for (size_t i = 0; i < rank; ++i) { // i counts from the innermost dim
    size_t d = inner - i;
    e.dims[i] = uint64_t(r.sizes[d]);
    e.box[i] = uint32_t(r.box[d]);
    e.elementStrides[i] = 1;
    if (i > 0)
      e.strides[i - 1] = uint64_t(r.strideBytes[d]);
  }
  return e;
}

TensorMapCache::TensorMapCache(TensorMapEncodeTiledFn encode, size_t capacity)
    : encode_(encode), capacity_(capacity) {}

TensorMapCache &TensorMapCache::instance() {
  static TensorMapCache *cache = new TensorMapCache(); // leaked, as the driver it calls
  return *cache;
}

TensorMap TensorMapCache::get(const TensorMapRequest &request) {
  std::vector<int64_t> key = {int64_t(request.address), dtypeInfo(request.dtype).driverType,
                              request.swizzleBytes, int64_t(request.sizes.size())};
  for (const auto *part : {&request.sizes, &request.strideBytes, &request.box}) {
    key.push_back(int64_t(part->size()));
    key.insert(key.end(), part->begin(), part->end());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = maps_.find(key); it != maps_.end())
    return it->second;
  TiledEncoding e = tiledEncoding(request);
  bool fromDriver = !encode_;
  TensorMapEncodeTiledFn encode = fromDriver ? CudaDriver::instance().tensorMapEncodeTiled() : encode_;
  TensorMap map{};
  CUresult result = encode(&map, e.dataType, e.rank, reinterpret_cast<void *>(request.address),
                           e.dims.data(), e.strides.data(), e.box.data(), e.elementStrides.data(),
                           e.interleave, e.swizzle, e.l2Promotion, e.oobFill);
  if (result != cu::SUCCESS) {
    std::string detail = "tensor sizes " + list(request.sizes) + ", strides " +
                         list(request.strideBytes) + " bytes, box " + list(request.box) +
                         ", swizzle " + std::to_string(request.swizzleBytes);
    if (fromDriver)
      CudaDriver::instance().check(result, "cuTensorMapEncodeTiled", detail);
    throw CudaError("cuTensorMapEncodeTiled", result,
                    "cuTensorMapEncodeTiled failed: CUDA error " + std::to_string(result) +
                        "\n" + detail);
  }
  ++encodes_;
  if (maps_.size() >= capacity_) // pointers that keep changing: do not grow forever
    maps_.clear();
  maps_.emplace(std::move(key), map);
  return map;
}

size_t TensorMapCache::encodes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return encodes_;
}

size_t TensorMapCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return maps_.size();
}
