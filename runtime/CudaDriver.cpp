#include "runtime/CudaDriver.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace tessera::runtime {

// Typed entry points. Versioned names (…_v2) are the ones cuda.h maps the plain names to;
// resolving by the plain name would bind the old ABI (e.g. 32-bit cuMemAlloc).
struct CudaDriver::Api {
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int *) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxGetCurrent)(CUcontext *) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *) = nullptr;
  CUresult (*cuFuncGetAttribute)(int *, int, CUfunction) = nullptr;
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int) = nullptr;
  CUresult (*cuFuncGetParamInfo)(CUfunction, size_t, size_t *, size_t *) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void **, void **) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream) = nullptr;
  CUresult (*cuEventCreate)(CUevent *, unsigned) = nullptr;
  CUresult (*cuEventDestroy)(CUevent) = nullptr;
  CUresult (*cuEventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent) = nullptr;
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t) = nullptr;
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char **) = nullptr;
  TensorMapEncodeTiledFn cuTensorMapEncodeTiled = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
};

CudaError::CudaError(std::string call, CUresult code, const std::string &message)
    : std::runtime_error(message), call_(std::move(call)), code_(code) {}

namespace {
// Binds the first of `names` that the library exports; false if none is there.
template <typename Fn>
bool bind(void *handle, Fn &slot, std::initializer_list<const char *> names) {
  static_assert(sizeof(Fn) == sizeof(void *), "function pointers must fit a dlsym result");
  for (const char *name : names)
    if (void *symbol = dlsym(handle, name)) {
      std::memcpy(&slot, &symbol, sizeof(symbol));
      return true;
    }
  return false;
}
} // namespace

CudaDriver &CudaDriver::instance() {
  static CudaDriver *driver = new CudaDriver(); // leaked on purpose, see the header
  return *driver;
}

CudaDriver::CudaDriver(const std::string &library) : api_(std::make_unique<Api>()) {
  handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char *why = dlerror();
    reason_ = "cannot load " + library + ": " + (why ? why : "unknown dlopen error");
    return;
  }
  Api &a = *api_;
  std::vector<std::string> missing;
  auto need = [&](auto &slot, std::initializer_list<const char *> names) {
    if (!bind(handle_, slot, names))
      missing.emplace_back(*names.begin());
  };
  need(a.cuInit, {"cuInit"});
  need(a.cuDriverGetVersion, {"cuDriverGetVersion"});
  need(a.cuDeviceGetCount, {"cuDeviceGetCount"});
  need(a.cuDeviceGet, {"cuDeviceGet"});
  need(a.cuDeviceGetAttribute, {"cuDeviceGetAttribute"});
  need(a.cuDeviceGetName, {"cuDeviceGetName"});
  need(a.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
  need(a.cuDevicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2"});
  need(a.cuCtxSetCurrent, {"cuCtxSetCurrent"});
  need(a.cuCtxGetCurrent, {"cuCtxGetCurrent"});
  need(a.cuCtxSynchronize, {"cuCtxSynchronize"});
  need(a.cuModuleLoadData, {"cuModuleLoadData"});
  need(a.cuModuleLoadDataEx, {"cuModuleLoadDataEx"});
  need(a.cuModuleUnload, {"cuModuleUnload"});
  need(a.cuModuleGetFunction, {"cuModuleGetFunction"});
  need(a.cuFuncGetAttribute, {"cuFuncGetAttribute"});
  need(a.cuFuncSetAttribute, {"cuFuncSetAttribute"});
  need(a.cuLaunchKernel, {"cuLaunchKernel"});
  need(a.cuStreamCreate, {"cuStreamCreate"});
  need(a.cuStreamDestroy, {"cuStreamDestroy_v2"});
  need(a.cuStreamSynchronize, {"cuStreamSynchronize"});
  need(a.cuEventCreate, {"cuEventCreate"});
  need(a.cuEventDestroy, {"cuEventDestroy_v2"});
  need(a.cuEventRecord, {"cuEventRecord"});
  need(a.cuEventSynchronize, {"cuEventSynchronize"});
  // _v2 exists from CUDA 12.8 (and is what cuda.h 13 calls); older drivers have only the first.
  need(a.cuEventElapsedTime, {"cuEventElapsedTime_v2", "cuEventElapsedTime"});
  need(a.cuMemAlloc, {"cuMemAlloc_v2"});
  need(a.cuMemFree, {"cuMemFree_v2"});
  need(a.cuMemcpyHtoD, {"cuMemcpyHtoD_v2"});
  need(a.cuMemcpyDtoH, {"cuMemcpyDtoH_v2"});
  need(a.cuMemsetD8, {"cuMemsetD8_v2"});
  need(a.cuGetErrorName, {"cuGetErrorName"});
  need(a.cuGetErrorString, {"cuGetErrorString"});
  // Optional (driver 12.4+): lets launches check their argument count.
  bind(handle_, a.cuFuncGetParamInfo, {"cuFuncGetParamInfo"});
  // Optional (driver 12.0+): TMA descriptors; only kernels that take one need it.
  bind(handle_, a.cuTensorMapEncodeTiled, {"cuTensorMapEncodeTiled"});

  if (!missing.empty()) {
    reason_ = library + " lacks";
    for (const std::string &name : missing)
      reason_ += " " + name;
    reason_ += " (driver too old?)";
    return;
  }
  if (CUresult r = a.cuInit(0); r != cu::SUCCESS) {
    reason_ = "cuInit failed: " + errorName(r) + " (" + errorString(r) + ")";
    return;
  }
  a.cuDriverGetVersion(&driverVersion_);
  if (CUresult r = a.cuDeviceGetCount(&deviceCount_); r != cu::SUCCESS) {
    reason_ = "cuDeviceGetCount failed: " + errorName(r) + " (" + errorString(r) + ")";
    deviceCount_ = 0;
    return;
  }
  if (deviceCount_ == 0) {
    reason_ = "no CUDA device found";
    return;
  }
  available_ = true;
}

CudaDriver::~CudaDriver() {
  if (available_)
    for (auto &[device, context] : primaryContexts_)
      api_->cuDevicePrimaryCtxRelease(device);
  if (handle_)
    dlclose(handle_);
}

const CudaDriver::Api &CudaDriver::api(const char *call) const {
  if (!available_)
    throw CudaError(call, CudaError::kDriverUnavailable,
                    std::string(call) + ": CUDA driver unavailable: " + reason_);
  return *api_;
}

std::string CudaDriver::errorName(CUresult code) const {
  const char *text = nullptr;
  if (api_->cuGetErrorName && api_->cuGetErrorName(code, &text) == cu::SUCCESS && text)
    return text;
  // The errors that come before the driver can name them (the toolkit's stub library answers
  // every call, cuGetErrorName included, with 34).
  switch (code) {
  case cu::ERROR_NOT_INITIALIZED:
    return "CUDA_ERROR_NOT_INITIALIZED";
  case cu::ERROR_STUB_LIBRARY:
    return "CUDA_ERROR_STUB_LIBRARY";
  case cu::ERROR_NO_DEVICE:
    return "CUDA_ERROR_NO_DEVICE";
  default:
    return "CUDA error " + std::to_string(code);
  }
}

std::string CudaDriver::errorString(CUresult code) const {
  const char *text = nullptr;
  if (api_->cuGetErrorString && api_->cuGetErrorString(code, &text) == cu::SUCCESS && text)
    return text;
  return "no description";
}

void CudaDriver::check(CUresult result, const char *call, const std::string &detail) const {
  if (result == cu::SUCCESS)
    return;
  std::string message =
      std::string(call) + " failed: " + errorName(result) + " (" + errorString(result) + ")";
  if (!detail.empty())
    message += "\n" + detail;
  throw CudaError(call, result, message);
}

CUdevice CudaDriver::device(int ordinal) const {
  CUdevice device = 0;
  check(api("cuDeviceGet").cuDeviceGet(&device, ordinal), "cuDeviceGet");
  return device;
}

int CudaDriver::deviceAttribute(int attribute, CUdevice device) const {
  int value = 0;
  check(api("cuDeviceGetAttribute").cuDeviceGetAttribute(&value, attribute, device),
        "cuDeviceGetAttribute");
  return value;
}

int CudaDriver::multiprocessorCount(int ordinal) const {
  return deviceAttribute(cu::DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device(ordinal));
}

TensorMapEncodeTiledFn CudaDriver::tensorMapEncodeTiled() const {
  const Api &a = api("cuTensorMapEncodeTiled");
  if (!a.cuTensorMapEncodeTiled)
    throw CudaError("cuTensorMapEncodeTiled", CudaError::kDriverUnavailable,
                    "cuTensorMapEncodeTiled: the CUDA driver (version " +
                        std::to_string(driverVersion_) +
                        ") has no TMA descriptors; driver 12.0 or newer is needed");
  return a.cuTensorMapEncodeTiled;
}

std::string CudaDriver::deviceName(CUdevice device) const {
  char name[256] = {};
  check(api("cuDeviceGetName").cuDeviceGetName(name, sizeof(name) - 1, device), "cuDeviceGetName");
  return name;
}

std::pair<int, int> CudaDriver::computeCapability(CUdevice device) const {
  return {deviceAttribute(cu::DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
          deviceAttribute(cu::DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)};
}

CUcontext CudaDriver::primaryContext(CUdevice device) {
  const Api &a = api("cuDevicePrimaryCtxRetain");
  std::lock_guard<std::mutex> lock(contextsMutex_);
  auto it = primaryContexts_.find(device);
  if (it != primaryContexts_.end())
    return it->second;
  CUcontext context = nullptr;
  check(a.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
  primaryContexts_.emplace(device, context);
  return context;
}

void CudaDriver::setCurrentContext(CUcontext context) const {
  check(api("cuCtxSetCurrent").cuCtxSetCurrent(context), "cuCtxSetCurrent");
}

CUcontext CudaDriver::currentContext() const {
  CUcontext context = nullptr;
  check(api("cuCtxGetCurrent").cuCtxGetCurrent(&context), "cuCtxGetCurrent");
  return context;
}

void CudaDriver::contextSynchronize() const {
  check(api("cuCtxSynchronize").cuCtxSynchronize(), "cuCtxSynchronize");
}

CUmodule CudaDriver::loadModule(const void *image, std::string *infoLog) const {
  const Api &a = api("cuModuleLoadDataEx");
  // The driver writes NUL-terminated logs into these buffers (at most the given size).
  constexpr size_t kLogBytes = 64 * 1024;
  std::vector<char> errorLog(kLogBytes, '\0'), info(kLogBytes, '\0');
  int options[] = {cu::JIT_ERROR_LOG_BUFFER, cu::JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                   cu::JIT_INFO_LOG_BUFFER, cu::JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  void *values[] = {errorLog.data(), reinterpret_cast<void *>(uintptr_t{kLogBytes}), info.data(),
                    reinterpret_cast<void *>(uintptr_t{kLogBytes})};
  CUmodule module = nullptr;
  CUresult result = a.cuModuleLoadDataEx(&module, image, 4, options, values);
  errorLog.back() = info.back() = '\0';
  if (infoLog)
    *infoLog = info.data();
  std::string log = errorLog.data();
  check(result, "cuModuleLoadDataEx", log.empty() ? std::string() : "JIT error log:\n" + log);
  return module;
}

CUmodule CudaDriver::loadModuleNoLog(const void *image) const {
  CUmodule module = nullptr;
  check(api("cuModuleLoadData").cuModuleLoadData(&module, image), "cuModuleLoadData");
  return module;
}

void CudaDriver::unloadModule(CUmodule module) const {
  check(api("cuModuleUnload").cuModuleUnload(module), "cuModuleUnload");
}

CUfunction CudaDriver::moduleFunction(CUmodule module, const char *name) const {
  CUfunction function = nullptr;
  check(api("cuModuleGetFunction").cuModuleGetFunction(&function, module, name),
        "cuModuleGetFunction", std::string("kernel name: ") + name);
  return function;
}

int CudaDriver::functionAttribute(int attribute, CUfunction function) const {
  int value = 0;
  check(api("cuFuncGetAttribute").cuFuncGetAttribute(&value, attribute, function),
        "cuFuncGetAttribute");
  return value;
}

void CudaDriver::setFunctionAttribute(CUfunction function, int attribute, int value) const {
  check(api("cuFuncSetAttribute").cuFuncSetAttribute(function, attribute, value),
        "cuFuncSetAttribute");
}

bool CudaDriver::hasParamInfo() const noexcept {
  return available_ && api_->cuFuncGetParamInfo != nullptr;
}

long CudaDriver::functionParamSize(CUfunction function, size_t index) const {
  const Api &a = api("cuFuncGetParamInfo");
  if (!a.cuFuncGetParamInfo)
    throw CudaError("cuFuncGetParamInfo", CudaError::kDriverUnavailable,
                    "cuFuncGetParamInfo: not exported by this driver (needs 12.4+)");
  size_t offset = 0, size = 0;
  CUresult result = a.cuFuncGetParamInfo(function, index, &offset, &size);
  if (result == cu::ERROR_INVALID_VALUE) // documented answer for an index past the end
    return -1;
  check(result, "cuFuncGetParamInfo");
  return static_cast<long>(size);
}

void CudaDriver::launchKernel(CUfunction function, unsigned gridX, unsigned gridY, unsigned gridZ,
                              unsigned blockX, unsigned blockY, unsigned blockZ,
                              unsigned sharedBytes, CUstream stream, void **params) const {
  check(api("cuLaunchKernel")
            .cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                            stream, params, nullptr),
        "cuLaunchKernel");
}

CUstream CudaDriver::createStream(unsigned flags) const {
  CUstream stream = nullptr;
  check(api("cuStreamCreate").cuStreamCreate(&stream, flags), "cuStreamCreate");
  return stream;
}

void CudaDriver::destroyStream(CUstream stream) const {
  check(api("cuStreamDestroy_v2").cuStreamDestroy(stream), "cuStreamDestroy_v2");
}

void CudaDriver::streamSynchronize(CUstream stream) const {
  check(api("cuStreamSynchronize").cuStreamSynchronize(stream), "cuStreamSynchronize");
}

CUevent CudaDriver::createEvent(unsigned flags) const {
  CUevent event = nullptr;
  check(api("cuEventCreate").cuEventCreate(&event, flags), "cuEventCreate");
  return event;
}

void CudaDriver::destroyEvent(CUevent event) const {
  check(api("cuEventDestroy_v2").cuEventDestroy(event), "cuEventDestroy_v2");
}

void CudaDriver::recordEvent(CUevent event, CUstream stream) const {
  check(api("cuEventRecord").cuEventRecord(event, stream), "cuEventRecord");
}

void CudaDriver::eventSynchronize(CUevent event) const {
  check(api("cuEventSynchronize").cuEventSynchronize(event), "cuEventSynchronize");
}

float CudaDriver::eventElapsedMs(CUevent start, CUevent end) const {
  float ms = 0;
  check(api("cuEventElapsedTime").cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime");
  return ms;
}

CUdeviceptr CudaDriver::memAlloc(size_t bytes) const {
  CUdeviceptr pointer = 0;
  check(api("cuMemAlloc_v2").cuMemAlloc(&pointer, bytes), "cuMemAlloc_v2",
        "bytes: " + std::to_string(bytes));
  return pointer;
}

void CudaDriver::memFree(CUdeviceptr pointer) const {
  check(api("cuMemFree_v2").cuMemFree(pointer), "cuMemFree_v2");
}

void CudaDriver::memcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes) const {
  check(api("cuMemcpyHtoD_v2").cuMemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD_v2");
}

void CudaDriver::memcpyDtoH(void *dst, CUdeviceptr src, size_t bytes) const {
  check(api("cuMemcpyDtoH_v2").cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH_v2");
}

void CudaDriver::memsetD8(CUdeviceptr dst, unsigned char value, size_t bytes) const {
  check(api("cuMemsetD8_v2").cuMemsetD8(dst, value, bytes), "cuMemsetD8_v2");
}

} // namespace tessera::runtime
