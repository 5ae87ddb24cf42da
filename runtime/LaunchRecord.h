// The launch record: how to launch the kernels of one compiled module (docs/LAUNCH_RECORD.md).
//
// The compiler facade writes it as JSON beside the PTX (compiler/Compiler.h); this decoder
// reads it, checks it whole before anything is launched, and works out from the caller's
// argument sizes each launch's grid and each workspace's shape, and the kernels' parameters
// (a memref descriptor per tensor, then the TMA descriptors). Plain C++17: it builds
// wherever the runtime does.
#ifndef TESSERA_RUNTIME_LAUNCHRECORD_H
#define TESSERA_RUNTIME_LAUNCHRECORD_H

#include "runtime/TensorMap.h"

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace tessera::runtime {

/// The version the facade writes; this decoder reads it and every one from
/// kOldestLaunchRecordVersion on (version 2 added TMA descriptors and SM-count grids).
inline constexpr int64_t kLaunchRecordVersion = 2;
inline constexpr int64_t kOldestLaunchRecordVersion = 1;

/// A record that cannot be used: malformed, of another version, or asked about arguments
/// it does not describe. The message names the field or argument at fault.
class LaunchRecordError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A size worked out from the arguments' sizes: a grid dimension or a workspace dimension.
struct Extent {
  enum class Kind {
    Dim,             // size `dim` of argument `arg`, then `divisors`
    Constant,        // `value`, then `divisors`
    ZeroIfEqual,     // size `dim` of `arg`, or 0 where it equals size `otherDim` of `otherArg`
    ZeroUnlessEqual, // size `dim` of `arg` where it equals that other size, else 0
    Product,         // factors[0] * factors[1]
    SmCount,         // `value` x the device's SM count (persistent grids; version 2)
    Min,             // min(factors[0], factors[1]) (version 2)
  };
  Kind kind = Kind::Constant;
  int64_t arg = 0, dim = 0, value = 0, otherArg = 0, otherDim = 0;
  /// Applied in order: q > 0 divides rounding up, q < 0 divides by -q rounding down.
  std::vector<int64_t> divisors;
  std::vector<Extent> factors;
};

struct Workspace {
  std::string dtype; // "i32", "f32", "bf16" or "f16"
  std::vector<Extent> shape;
};

struct Launch {
  std::string kernel;
  int64_t block = 0;       // threads per block (x; y = z = 1)
  int64_t sharedBytes = 0; // dynamic shared memory
  std::vector<Extent> grid; // 1 to 3 dims; missing ones are 1
};

/// A TMA descriptor the kernels take (version 2): of tensor `argument` (the caller's
/// arguments, then the workspaces), read as `dtype`, copied in boxes of `box` (one per dim,
/// outermost first) with `swizzle` bytes (0, 32, 64, 128).
struct TensorMapParameter {
  int64_t argument = 0;
  std::string dtype;
  std::vector<int64_t> box;
  int64_t swizzle = 0;
};

/// What a set of argument sizes gives: each workspace's shape and each launch's grid.
struct LaunchPlan {
  std::vector<std::vector<int64_t>> workspaceShapes;
  std::vector<std::array<int64_t, 3>> grids;
};

/// One tensor as a kernel parameter: its data pointer, sizes and strides (in elements).
struct TensorLayout {
  uint64_t data = 0;
  std::vector<int64_t> sizes, strides;
};

/// The kernels' parameters, one 8-byte value each, and where each tensor's descriptor
/// starts (its allocated and aligned pointers are the two values there).
struct PackedParameters {
  std::vector<int64_t> values;
  std::vector<size_t> pointerSlots;
};

/// Evaluates `extent` for any size type: `sizeOf(arg, dim)` gives an argument's size and
/// `ops` the arithmetic (constant, ceilDiv, floorDiv, mul, min, equal) and the device's SM
/// count (smCount, for persistent grids). The runtime uses int64_t;
/// the Python layer also evaluates it over torch's symbolic sizes, so the semantics stay here.
template <typename Size, typename SizeOf, typename Ops>
Size evaluateExtent(const Extent &extent, const SizeOf &sizeOf, const Ops &ops) {
  using Kind = Extent::Kind;
  switch (extent.kind) {
  case Kind::Product:
    return ops.mul(evaluateExtent<Size>(extent.factors[0], sizeOf, ops),
                   evaluateExtent<Size>(extent.factors[1], sizeOf, ops));
  case Kind::Min:
    return ops.min(evaluateExtent<Size>(extent.factors[0], sizeOf, ops),
                   evaluateExtent<Size>(extent.factors[1], sizeOf, ops));
  case Kind::SmCount:
    return ops.mul(ops.constant(extent.value), ops.smCount());
  case Kind::ZeroIfEqual:
  case Kind::ZeroUnlessEqual: {
    Size x = sizeOf(extent.arg, extent.dim);
    bool equal = ops.equal(x, sizeOf(extent.otherArg, extent.otherDim));
    return equal == (extent.kind == Kind::ZeroIfEqual) ? ops.constant(0) : x;
  }
  case Kind::Dim:
  case Kind::Constant: {
    Size x = extent.kind == Kind::Dim ? sizeOf(extent.arg, extent.dim) : ops.constant(extent.value);
    for (int64_t q : extent.divisors)
      x = q > 0 ? ops.ceilDiv(x, q) : ops.floorDiv(x, -q);
    return x;
  }
  }
  return ops.constant(0);
}

class LaunchRecord {
public:
  /// Parses and checks a record (JSON text). Throws LaunchRecordError naming what is wrong:
  /// no or another version, a missing or unknown field, an argument or dim out of range.
  static LaunchRecord parse(const std::string &json);

  int64_t version() const { return version_; }
  /// The rank of each of the caller's arguments, in the kernels' order (inputs, outputs).
  const std::vector<int64_t> &argumentRanks() const { return argumentRanks_; }
  const std::vector<Workspace> &workspaces() const { return workspaces_; }
  const std::vector<Launch> &launches() const { return launches_; }
  /// The TMA descriptors every kernel takes after the memref descriptors (empty before v2).
  const std::vector<TensorMapParameter> &tensorMaps() const { return tensorMaps_; }
  /// Whether a grid depends on the device's SM count (plan then needs it).
  bool usesSmCount() const { return usesSmCount_; }
  /// The text it was parsed from.
  const std::string &text() const { return text_; }

  /// Grids and workspace shapes for the caller's arguments of these sizes (one shape per
  /// argument, ranks as recorded) on a device of `smCount` SMs (needed only where
  /// usesSmCount()). Throws LaunchRecordError on a count or rank mismatch or a missing count.
  LaunchPlan plan(const std::vector<std::vector<int64_t>> &argumentShapes,
                  int64_t smCount = 0) const;

  /// Checks that the SM count plan() was given is usable for this record.
  void checkSmCount(int64_t smCount) const;

  /// Checks the ranks of the caller's arguments as plan() does (for evaluations over
  /// other size types): one per recorded argument, each as recorded.
  void checkArgumentRanks(const std::vector<size_t> &ranks) const;

  /// The parameters for the caller's arguments followed by the workspaces: each tensor's
  /// memref descriptor (allocated pointer, aligned pointer, offset 0, sizes, strides).
  PackedParameters pack(const std::vector<TensorLayout> &tensors) const;

  /// The TMA descriptors for the same tensors, from `cache` (encoded on a miss), in the
  /// record's order; they follow pack()'s values as parameters. Throws LaunchRecordError
  /// naming the argument whose tensor TMA cannot describe.
  std::vector<TensorMap> encodeTensorMaps(const std::vector<TensorLayout> &tensors,
                                          TensorMapCache &cache) const;

private:
  int64_t version_ = 0;
  std::vector<int64_t> argumentRanks_;
  std::vector<Workspace> workspaces_;
  std::vector<Launch> launches_;
  std::vector<TensorMapParameter> tensorMaps_;
  void checkTensors(const std::vector<TensorLayout> &tensors) const;
  bool usesSmCount_ = false;
  std::string text_;
};

} // namespace tessera::runtime

#endif // TESSERA_RUNTIME_LAUNCHRECORD_H
