// TMA descriptors (CUtensorMap) for kernel arguments: the checks of every rule
// cuTensorMapEncodeTiled imposes, made before the driver is called so that a bad tensor is
// named with what is wrong, and a cache so that a repeated call encodes nothing (as
// FlashAttention-3 keeps its descriptors per pointer, shape and stride).
//
// The encoder is injectable: tests without a GPU pass a function that records what the
// driver would receive; everything else uses the dlopen'd driver's entry point.
#ifndef TESSERA_RUNTIME_TENSORMAP_H
#define TESSERA_RUNTIME_TENSORMAP_H

#include "runtime/CudaDriver.h"

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace tessera::runtime {

/// A tensor TMA cannot describe, or a box it cannot copy. The message names the rule.
class TensorMapError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A tensor and the kernel's tile of it, in the caller's order (outermost dim first, as
/// torch orders shapes); strides in bytes.
struct TensorMapRequest {
  uint64_t address = 0;
  std::string dtype; // "i32", "f32", "bf16" or "f16"
  std::vector<int64_t> sizes, strideBytes, box;
  int64_t swizzleBytes = 0; // 0 (none), 32, 64 or 128
};

/// cuTensorMapEncodeTiled's arguments for a request: dims innermost first, as the driver
/// counts them; `strides` are those of dims 1 .. rank-1 (dim 0's is the element size).
struct TiledEncoding {
  int dataType = 0;
  uint32_t rank = 0;
  std::array<uint64_t, 5> dims{};
  std::array<uint64_t, 4> strides{};
  std::array<uint32_t, 5> box{}, elementStrides{};
  int swizzle = cu::TENSOR_MAP_SWIZZLE_NONE;
  int interleave = cu::TENSOR_MAP_INTERLEAVE_NONE;
  int l2Promotion = cu::TENSOR_MAP_L2_PROMOTION_L2_128B;
  int oobFill = cu::TENSOR_MAP_FLOAT_OOB_FILL_NONE; // ragged edges read as zeros
};

/// Bytes of one element of a record dtype; throws TensorMapError for another name.
int64_t tensorMapElementBytes(const std::string &dtype);

/// Checks `request` against every TMA rule (rank 1..5, address 16-byte aligned, dims
/// 1..2^32, innermost stride = element size, other strides multiples of 16 below 2^40,
/// box dims 1..256, inner box bytes a multiple of 16 and within the swizzle span) and
/// returns the driver's arguments. Throws TensorMapError naming the rule broken.
TiledEncoding tiledEncoding(const TensorMapRequest &request);

/// Encoded descriptors by (pointer, dtype, sizes, strides, box, swizzle). Thread-safe.
class TensorMapCache {
public:
  /// `encode`: the function called on a miss; null takes the driver's on first use.
  explicit TensorMapCache(TensorMapEncodeTiledFn encode = nullptr, size_t capacity = 4096);
  /// The process-wide cache over the driver.
  static TensorMapCache &instance();

  /// The descriptor for `request`, encoded on a miss. Throws TensorMapError for a request
  /// TMA cannot serve, CudaError where the driver refuses or is missing.
  TensorMap get(const TensorMapRequest &request);
  /// Descriptors encoded so far (misses), and descriptors held now.
  size_t encodes() const;
  size_t size() const;

private:
  TensorMapEncodeTiledFn encode_;
  size_t capacity_;
  mutable std::mutex mutex_;
  std::map<std::vector<int64_t>, TensorMap> maps_;
  size_t encodes_ = 0;
};

} // namespace tessera::runtime

#endif // TESSERA_RUNTIME_TENSORMAP_H
