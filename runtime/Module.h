// Loading compiled kernels (PTX text, cubin or fatbin) and launching them.
//
// Everything runs on a device's primary context: it is the context the CUDA runtime, torch and
// cupy use, so device pointers and streams coming from them are valid here without conversion.
#ifndef TESSERA_RUNTIME_MODULE_H
#define TESSERA_RUNTIME_MODULE_H

#include "runtime/CudaDriver.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace tessera::runtime {

/// Retains `deviceOrdinal`'s primary context and makes it current on the calling thread
/// (driver calls act on the thread's current context). Returns that context.
CUcontext makePrimaryContextCurrent(int deviceOrdinal, CudaDriver &driver = CudaDriver::instance());

class GpuModule;

/// One kernel of a loaded module. Cheap to copy (copies share state) and keeps its module
/// loaded for as long as any copy lives, so a Python-held kernel never dangles.
class GpuKernel {
public:
  using Dim3 = std::array<unsigned, 3>;
  static constexpr int kDefaultDynamicSharedLimit = 48 * 1024;

  /// Launches asynchronously on `stream` (a CUstream or cudaStream_t; nullptr is the legacy
  /// default stream). `args` holds one pointer per kernel parameter, pointing at the value, as
  /// cuLaunchKernel takes them. Dynamic shared memory above 48 KiB needs an explicit opt-in per
  /// function; launch does it when `sharedBytes` needs it. Throws std::invalid_argument for a
  /// wrong argument count (where the driver can report the kernel's count) and CudaError for a
  /// failed launch.
  void launch(const Dim3 &grid, const Dim3 &block, unsigned sharedBytes, void *stream,
              const std::vector<void *> &args) const;

  /// Raises the function's dynamic shared memory limit (the opt-in launch does on demand).
  void setMaxDynamicSharedBytes(int bytes) const;
  /// A CU_FUNC_ATTRIBUTE_* value (cu::FUNC_ATTRIBUTE_NUM_REGS, ..._LOCAL_SIZE_BYTES, ...).
  int attribute(int functionAttribute) const;
  /// The kernel's parameter count, or -1 where the driver cannot tell (before 12.4).
  int paramCount() const;
  const std::string &name() const;
  CUfunction handle() const;
  const GpuModule &module() const;

private:
  friend class GpuModule;
  struct State;
  explicit GpuKernel(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

/// A loaded module image. Created only through load(), held by shared_ptr; unloaded when the
/// last holder (module or kernel) goes away.
class GpuModule : public std::enable_shared_from_this<GpuModule> {
public:
  /// Loads `image` (PTX text, cubin or fatbin bytes) on `deviceOrdinal`'s primary context.
  /// PTX is JIT-compiled by the driver; a JIT failure throws CudaError carrying ptxas's log.
  static std::shared_ptr<GpuModule> load(const std::string &image, int deviceOrdinal = 0,
                                         CudaDriver &driver = CudaDriver::instance());
  ~GpuModule();
  GpuModule(const GpuModule &) = delete;
  GpuModule &operator=(const GpuModule &) = delete;

  /// Looks up a kernel by its (mangled, for C++ sources) entry name; throws CudaError if absent.
  GpuKernel kernel(const std::string &name) const;
  /// The driver's JIT info log for PTX images (empty for cubins).
  const std::string &jitInfoLog() const { return jitInfoLog_; }
  /// Makes this module's context current on the calling thread, if it is not already.
  void makeCurrent() const;

  int deviceOrdinal() const { return deviceOrdinal_; }
  CUcontext context() const { return context_; }
  CUmodule handle() const { return module_; }
  CudaDriver &driver() const { return driver_; }

private:
  // Only load() can make a Token (explicit: `{}` cannot conjure one), so only load() can
  // construct, yet make_shared still reaches the public constructor.
  struct Token {
    explicit Token() = default;
  };

public:
  GpuModule(Token, CudaDriver &driver, int deviceOrdinal, CUcontext context, CUmodule module,
            std::string jitInfoLog);

private:
  CudaDriver &driver_;
  int deviceOrdinal_;
  CUcontext context_;
  CUmodule module_;
  std::string jitInfoLog_;
};

/// Times work between start() and stop() on a stream with a pair of driver events.
class EventTimer {
public:
  explicit EventTimer(int deviceOrdinal = 0, CudaDriver &driver = CudaDriver::instance());
  ~EventTimer();
  EventTimer(const EventTimer &) = delete;
  EventTimer &operator=(const EventTimer &) = delete;

  void start(void *stream = nullptr);
  void stop(void *stream = nullptr);
  /// Waits for the stop event, then returns the milliseconds between the two events.
  float elapsedMs() const;

private:
  CudaDriver &driver_;
  CUevent start_ = nullptr;
  CUevent stop_ = nullptr;
};

} // namespace tessera::runtime

#endif // TESSERA_RUNTIME_MODULE_H
