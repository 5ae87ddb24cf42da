#include "runtime/Module.h"

#include <cstdlib>

#include <atomic>
#include <stdexcept>

namespace tessera::runtime {

CUcontext makePrimaryContextCurrent(int deviceOrdinal, CudaDriver &driver) {
  CUcontext context = driver.primaryContext(driver.device(deviceOrdinal));
  if (driver.currentContext() != context)
    driver.setCurrentContext(context);
  return context;
}

struct GpuKernel::State {
  std::shared_ptr<const GpuModule> module;
  CUfunction function = nullptr;
  std::string name;
  int paramCount = -1;
  // The dynamic shared memory limit already set on the function, so launches only pay for
  // cuFuncSetAttribute when they need more. Atomic: kernels may launch from several threads.
  std::atomic<int> dynamicSharedLimit{kDefaultDynamicSharedLimit};
};

GpuModule::GpuModule(Token, CudaDriver &driver, int deviceOrdinal, CUcontext context,
                     CUmodule module, std::string jitInfoLog)
    : driver_(driver), deviceOrdinal_(deviceOrdinal), context_(context), module_(module),
      jitInfoLog_(std::move(jitInfoLog)) {}

std::shared_ptr<GpuModule> GpuModule::load(const std::string &image, int deviceOrdinal,
                                           CudaDriver &driver) {
  if (image.empty())
    throw std::invalid_argument("GpuModule::load: empty image");
  CUcontext context = makePrimaryContextCurrent(deviceOrdinal, driver);
  std::string infoLog;
  // std::string keeps a NUL after its bytes, which PTX text needs; cubins ignore it.
  CUmodule module = driver.loadModule(image.c_str(), &infoLog);
  return std::make_shared<GpuModule>(Token(), driver, deviceOrdinal, context, module,
                                     std::move(infoLog));
}

GpuModule::~GpuModule() {
  // Never throw from here; at interpreter exit the driver may already be shut down, and the
  // context then goes away with the process anyway.
  try {
    makeCurrent();
    driver_.unloadModule(module_);
  } catch (const CudaError &) {
  }
}

void GpuModule::makeCurrent() const {
  if (driver_.currentContext() != context_)
    driver_.setCurrentContext(context_);
}

GpuKernel GpuModule::kernel(const std::string &name) const {
  auto state = std::make_shared<GpuKernel::State>();
  state->module = shared_from_this();
  state->function = driver_.moduleFunction(module_, name.c_str());
  state->name = name;
  // The count is found by asking past the last parameter, which the driver answers with
  // an error; TESSERA_NO_PARAM_CHECK=1 skips it so compute-sanitizer sees no API error.
  if (driver_.hasParamInfo() && !std::getenv("TESSERA_NO_PARAM_CHECK")) {
    int count = 0;
    while (driver_.functionParamSize(state->function, count) >= 0)
      ++count;
    state->paramCount = count;
  }
  return GpuKernel(std::move(state));
}

void GpuKernel::launch(const Dim3 &grid, const Dim3 &block, unsigned sharedBytes, void *stream,
                       const std::vector<void *> &args) const {
  const State &s = *state_;
  if (s.paramCount >= 0 && args.size() != static_cast<size_t>(s.paramCount))
    throw std::invalid_argument("kernel " + s.name + " takes " + std::to_string(s.paramCount) +
                                " parameters, launch got " + std::to_string(args.size()));
  for (size_t i = 0; i < args.size(); ++i)
    if (!args[i])
      throw std::invalid_argument("kernel " + s.name + ": argument " + std::to_string(i) +
                                  " is a null pointer (args point at parameter values)");
  s.module->makeCurrent();
  if (static_cast<long long>(sharedBytes) > state_->dynamicSharedLimit.load())
    setMaxDynamicSharedBytes(static_cast<int>(sharedBytes));
  s.module->driver().launchKernel(s.function, grid[0], grid[1], grid[2], block[0], block[1],
                                  block[2], sharedBytes, static_cast<CUstream>(stream),
                                  const_cast<void **>(args.data()));
}

void GpuKernel::setMaxDynamicSharedBytes(int bytes) const {
  state_->module->makeCurrent();
  state_->module->driver().setFunctionAttribute(
      state_->function, cu::FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
  state_->dynamicSharedLimit.store(bytes);
}

int GpuKernel::attribute(int functionAttribute) const {
  return state_->module->driver().functionAttribute(functionAttribute, state_->function);
}

int GpuKernel::paramCount() const { return state_->paramCount; }
const std::string &GpuKernel::name() const { return state_->name; }
CUfunction GpuKernel::handle() const { return state_->function; }
const GpuModule &GpuKernel::module() const { return *state_->module; }

EventTimer::EventTimer(int deviceOrdinal, CudaDriver &driver) : driver_(driver) {
  makePrimaryContextCurrent(deviceOrdinal, driver_);
  start_ = driver_.createEvent();
  try {
    stop_ = driver_.createEvent();
  } catch (...) {
    driver_.destroyEvent(start_);
    throw;
  }
}

EventTimer::~EventTimer() {
  try {
    driver_.destroyEvent(start_);
    driver_.destroyEvent(stop_);
  } catch (const CudaError &) {
  }
}

void EventTimer::start(void *stream) { driver_.recordEvent(start_, static_cast<CUstream>(stream)); }

void EventTimer::stop(void *stream) { driver_.recordEvent(stop_, static_cast<CUstream>(stream)); }

float EventTimer::elapsedMs() const {
  driver_.eventSynchronize(stop_);
  return driver_.eventElapsedMs(start_, stop_);
}

} // namespace tessera::runtime
