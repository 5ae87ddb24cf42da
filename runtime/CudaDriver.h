// The CUDA driver API, loaded with dlopen("libcuda.so.1") at run time.
//
// Why dlopen rather than linking libcuda: the runtime (and the Python module built on it) must
// import and run on machines without a GPU or a driver, where it only reports that no GPU is
// there. So no CUDA header is included either: the few driver types and enum values used are
// declared below with the numbers documented in cuda.h (test/runtime/CudaHeaderCheck.cpp
// static_asserts them against cuda.h wherever the toolkit is installed).
#ifndef TESSERA_RUNTIME_CUDADRIVER_H
#define TESSERA_RUNTIME_CUDADRIVER_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

// Opaque handles, declared at global scope exactly as cuda.h declares them, so that a
// translation unit that also includes cuda.h sees the very same pointer types.
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUevent_st;

namespace tessera::runtime {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = ::CUctx_st *;
using CUmodule = ::CUmod_st *;
using CUfunction = ::CUfunc_st *;
using CUstream = ::CUstream_st *;
using CUevent = ::CUevent_st *;

/// A TMA descriptor (cuda.h's CUtensorMap): 128 opaque bytes. The driver wants it 64-byte
/// aligned; cuda.h 13 declares 128, which satisfies both.
struct alignas(128) TensorMap {
  uint64_t opaque[16];
};

/// cuTensorMapEncodeTiled's signature (enums as int, cuuint32/64_t as uint32/64_t). Callers
/// that test without a GPU inject a function of this type (runtime/TensorMap.h).
using TensorMapEncodeTiledFn = CUresult (*)(TensorMap *map, int dataType, uint32_t rank,
                                            void *address, const uint64_t *dims,
                                            const uint64_t *strides, const uint32_t *box,
                                            const uint32_t *elementStrides, int interleave,
                                            int swizzle, int l2Promotion, int oobFill);

/// The driver enum values this runtime uses, with cuda.h's names minus the CU_/CUDA_ prefix.
namespace cu {
constexpr CUresult SUCCESS = 0;
constexpr CUresult ERROR_INVALID_VALUE = 1;
constexpr CUresult ERROR_NOT_INITIALIZED = 3;
constexpr CUresult ERROR_STUB_LIBRARY = 34;
constexpr CUresult ERROR_NO_DEVICE = 100;

constexpr int DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
constexpr int DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81;
constexpr int DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

constexpr int FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
constexpr int FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;
constexpr int FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3;
constexpr int FUNC_ATTRIBUTE_NUM_REGS = 4;
constexpr int FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

constexpr int JIT_INFO_LOG_BUFFER = 3;
constexpr int JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
constexpr int JIT_ERROR_LOG_BUFFER = 5;
constexpr int JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
constexpr int JIT_LOG_VERBOSE = 12;

constexpr int TENSOR_MAP_DATA_TYPE_INT32 = 3;
constexpr int TENSOR_MAP_DATA_TYPE_FLOAT16 = 6;
constexpr int TENSOR_MAP_DATA_TYPE_FLOAT32 = 7;
constexpr int TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9;
constexpr int TENSOR_MAP_INTERLEAVE_NONE = 0;
constexpr int TENSOR_MAP_SWIZZLE_NONE = 0;
constexpr int TENSOR_MAP_SWIZZLE_32B = 1;
constexpr int TENSOR_MAP_SWIZZLE_64B = 2;
constexpr int TENSOR_MAP_SWIZZLE_128B = 3;
constexpr int TENSOR_MAP_L2_PROMOTION_L2_128B = 2;
constexpr int TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0; // out-of-bounds elements read as zero

constexpr unsigned STREAM_DEFAULT = 0x0;
constexpr unsigned STREAM_NON_BLOCKING = 0x1;
constexpr unsigned EVENT_DEFAULT = 0x0;
} // namespace cu

/// A failed driver call. what() names the call, the error name and its description, and for
/// module loads the JIT error log.
class CudaError : public std::runtime_error {
public:
  /// code() of errors raised because the driver could not be loaded at all.
  static constexpr CUresult kDriverUnavailable = -1;

  CudaError(std::string call, CUresult code, const std::string &message);
  const std::string &call() const noexcept { return call_; }
  CUresult code() const noexcept { return code_; }

private:
  std::string call_;
  CUresult code_;
};

/// One loaded libcuda. Entry points are resolved once, at construction; every method below
/// checks the result and throws CudaError on failure. Methods are safe to call from several
/// threads (the driver itself is thread-safe; the only state here is the primary-context table,
/// which has a mutex).
class CudaDriver {
public:
  /// The process-wide driver, loaded on first use. Never unloaded: libcuda must outlive every
  /// context in the process (torch's too), and static destruction order cannot promise that.
  static CudaDriver &instance();

  /// Loads `library` (a soname or a path; tests pass missing libraries or the toolkit's stub).
  /// Never throws for a missing library, missing symbols, a failing cuInit or zero devices:
  /// available() then says false and unavailableReason() says why.
  explicit CudaDriver(const std::string &library = "libcuda.so.1");
  ~CudaDriver();
  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

  bool available() const noexcept { return available_; }
  const std::string &unavailableReason() const noexcept { return reason_; }
  int deviceCount() const noexcept { return deviceCount_; }
  /// As cuDriverGetVersion reports it (e.g. 13000 for 13.0); 0 when unavailable.
  int driverVersion() const noexcept { return driverVersion_; }

  // Devices and contexts.
  CUdevice device(int ordinal) const;
  int deviceAttribute(int attribute, CUdevice device) const;
  std::string deviceName(CUdevice device) const;
  /// (major, minor), e.g. (9, 0) on H100/H200.
  std::pair<int, int> computeCapability(CUdevice device) const;
  /// The device's primary context (the one the CUDA runtime and torch use), retained once per
  /// device for the life of this object.
  CUcontext primaryContext(CUdevice device);
  void setCurrentContext(CUcontext context) const;
  CUcontext currentContext() const;
  void contextSynchronize() const;

  // Modules and kernels.
  /// Loads a NUL-terminated PTX text, a cubin or a fatbin into the current context, capturing
  /// the JIT logs: the error log goes into the CudaError, the info log into *infoLog if given.
  CUmodule loadModule(const void *image, std::string *infoLog = nullptr) const;
  /// cuModuleLoadData without logs, for callers that want the bare call.
  CUmodule loadModuleNoLog(const void *image) const;
  void unloadModule(CUmodule module) const;
  CUfunction moduleFunction(CUmodule module, const char *name) const;
  int functionAttribute(int attribute, CUfunction function) const;
  void setFunctionAttribute(CUfunction function, int attribute, int value) const;
  /// Whether functionParamSize can be asked (cuFuncGetParamInfo needs driver 12.4+).
  bool hasParamInfo() const noexcept;
  /// Size of kernel parameter `index`, or -1 if index is past the last parameter.
  long functionParamSize(CUfunction function, size_t index) const;
  void launchKernel(CUfunction function, unsigned gridX, unsigned gridY, unsigned gridZ,
                    unsigned blockX, unsigned blockY, unsigned blockZ, unsigned sharedBytes,
                    CUstream stream, void **params) const;

  /// The device's SM count (CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT): persistent grids.
  int multiprocessorCount(int ordinal) const;
  /// cuTensorMapEncodeTiled (driver 12.0+); throws CudaError where the driver lacks it.
  TensorMapEncodeTiledFn tensorMapEncodeTiled() const;

  // Streams and events (stream 0 is the legacy default stream).
  CUstream createStream(unsigned flags = cu::STREAM_NON_BLOCKING) const;
  void destroyStream(CUstream stream) const;
  void streamSynchronize(CUstream stream) const;
  CUevent createEvent(unsigned flags = cu::EVENT_DEFAULT) const;
  void destroyEvent(CUevent event) const;
  void recordEvent(CUevent event, CUstream stream) const;
  void eventSynchronize(CUevent event) const;
  float eventElapsedMs(CUevent start, CUevent end) const;

  // Device memory (tests and benchmarks; real tensors come from the frontend via DLPack).
  CUdeviceptr memAlloc(size_t bytes) const;
  void memFree(CUdeviceptr pointer) const;
  void memcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes) const;
  void memcpyDtoH(void *dst, CUdeviceptr src, size_t bytes) const;
  void memsetD8(CUdeviceptr dst, unsigned char value, size_t bytes) const;

  /// "CUDA_ERROR_X" and its description; fall back to the number when the driver cannot say.
  std::string errorName(CUresult code) const;
  std::string errorString(CUresult code) const;
  /// Throws CudaError for a failed `call` (appending `detail`, e.g. a JIT log); no-op on success.
  void check(CUresult result, const char *call, const std::string &detail = {}) const;

  struct Api; // the resolved entry points; defined in CudaDriver.cpp

private:
  const Api &api(const char *call) const; // throws CudaError when unavailable

  void *handle_ = nullptr;
  std::unique_ptr<Api> api_;
  bool available_ = false;
  std::string reason_;
  int deviceCount_ = 0;
  int driverVersion_ = 0;
  std::mutex contextsMutex_;
  std::map<CUdevice, CUcontext> primaryContexts_;
};

} // namespace tessera::runtime

#endif // TESSERA_RUNTIME_CUDADRIVER_H
