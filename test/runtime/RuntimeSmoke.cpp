// tessera-runtime-smoke: loads hand-written PTX through the runtime, launches it and checks
// the results. Without a GPU it prints "no GPU: <reason>" and exits 0, so it can run anywhere.
//
//   tessera-runtime-smoke              run the checks
//   tessera-runtime-smoke --print-ptx  print the embedded PTX (lit assembles it with ptxas)
//   tessera-runtime-smoke --cubin F    also load cubin F (the same PTX, ptxas'ed) and check it
#include "runtime/Module.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

using namespace tessera::runtime;

namespace {

// Two kernels, hand-written because this tests the runtime, not the compiler:
//   tessera_iota(out, n):          out[i] = i for i < n (one thread per element)
//   tessera_smem_reverse(out, n):  one block stages 3j+1 in dynamic shared memory, then writes
//                                  out[j] = smem[n-1-j]; sized past 48 KiB it needs the opt-in.
// PTX 7.8 for sm_80, so that any driver from CUDA 11.8 on JIT-compiles it for Ampere and later.
const char *const kSmokePtx = R"PTX(
.version 7.8
.target sm_80
.address_size 64

.extern .shared .align 16 .b8 tessera_dynamic_smem[];

.visible .entry tessera_iota(
    .param .u64 tessera_iota_out,
    .param .u32 tessera_iota_n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [tessera_iota_out];
    ld.param.u32 %r1, [tessera_iota_n];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra IOTA_DONE;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd4, %rd2, %rd3;
    st.global.u32 [%rd4], %r5;
IOTA_DONE:
    ret;
}

.visible .entry tessera_smem_reverse(
    .param .u64 tessera_smem_reverse_out,
    .param .u32 tessera_smem_reverse_n)
{
    .reg .pred %p<3>;
    .reg .b32 %r<12>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [tessera_smem_reverse_out];
    ld.param.u32 %r1, [tessera_smem_reverse_n];
    cvta.to.global.u64 %rd2, %rd1;
    mov.u32 %r2, %tid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, tessera_dynamic_smem;
    mov.u32 %r5, %r2;
FILL:
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra FILLED;
    mad.lo.s32 %r6, %r5, 3, 1;
    shl.b32 %r7, %r5, 2;
    add.s32 %r8, %r4, %r7;
    st.shared.u32 [%r8], %r6;
    add.s32 %r5, %r5, %r3;
    bra.uni FILL;
FILLED:
    bar.sync 0;
    mov.u32 %r5, %r2;
COPY:
    setp.ge.u32 %p2, %r5, %r1;
    @%p2 bra REVERSE_DONE;
    sub.s32 %r9, %r1, 1;
    sub.s32 %r9, %r9, %r5;
    shl.b32 %r10, %r9, 2;
    add.s32 %r10, %r4, %r10;
    ld.shared.u32 %r11, [%r10];
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd4, %rd2, %rd3;
    st.global.u32 [%rd4], %r11;
    add.s32 %r5, %r5, %r3;
    bra.uni COPY;
REVERSE_DONE:
    ret;
}
)PTX";

// Broken on purpose (an undeclared register), to check that the JIT log reaches the error.
const char *const kBrokenPtx = R"PTX(
.version 7.8
.target sm_80
.address_size 64
.visible .entry tessera_broken()
{
    mov.u32 %r_undeclared, 1;
    ret;
}
)PTX";

void require(bool condition, const std::string &what) {
  if (!condition)
    throw std::runtime_error("check failed: " + what);
}

// Device memory released on scope exit.
struct DeviceBuffer {
  CudaDriver &driver;
  CUdeviceptr pointer;
  DeviceBuffer(CudaDriver &d, size_t bytes) : driver(d), pointer(d.memAlloc(bytes)) {}
  ~DeviceBuffer() {
    try {
      driver.memFree(pointer);
    } catch (const CudaError &) { // a destructor must not throw; the process is failing anyway
    }
  }
};

std::vector<unsigned> runIota(const GpuModule &module, unsigned n, void *stream) {
  CudaDriver &driver = module.driver();
  GpuKernel iota = module.kernel("tessera_iota");
  DeviceBuffer out(driver, n * sizeof(unsigned));
  driver.memsetD8(out.pointer, 0xff, n * sizeof(unsigned));
  iota.launch({(n + 255) / 256, 1, 1}, {256, 1, 1}, 0, stream, {&out.pointer, &n});
  driver.contextSynchronize();
  std::vector<unsigned> host(n);
  driver.memcpyDtoH(host.data(), out.pointer, n * sizeof(unsigned));
  return host;
}

void checkIota(const std::vector<unsigned> &values, const char *what) {
  for (size_t i = 0; i < values.size(); ++i)
    require(values[i] == i,
            std::string(what) + ": out[" + std::to_string(i) + "] = " + std::to_string(values[i]));
}

int runChecks(const char *cubinPath) {
  CudaDriver &driver = CudaDriver::instance();
  CUdevice device = driver.device(0);
  auto [major, minor] = driver.computeCapability(device);
  int optin =
      driver.deviceAttribute(cu::DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device);
  std::printf("device 0: %s, sm_%d%d, %d SMs, %d B opt-in shared/block, driver %d\n",
              driver.deviceName(device).c_str(), major, minor,
              driver.deviceAttribute(cu::DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device), optin,
              driver.driverVersion());

  auto module = GpuModule::load(kSmokePtx, 0);
  GpuKernel iota = module->kernel("tessera_iota");
  std::printf("tessera_iota: %d registers, %d params\n",
              iota.attribute(cu::FUNC_ATTRIBUTE_NUM_REGS), iota.paramCount());
  require(iota.paramCount() == 2 || iota.paramCount() == -1, "tessera_iota takes 2 params");

  // Default stream, a size that leaves the last block partly idle.
  checkIota(runIota(*module, 1000003, nullptr), "iota on the default stream");
  // A stream of our own.
  CUstream stream = driver.createStream();
  checkIota(runIota(*module, 4097, stream), "iota on a created stream");
  driver.streamSynchronize(stream);
  driver.destroyStream(stream);

  // Dynamic shared memory past 48 KiB: launch must opt in by itself.
  unsigned words = static_cast<unsigned>(std::min(160000, optin) / 4);
  require(words * 4 > 48 * 1024, "device offers more than 48 KiB of opt-in shared memory");
  GpuKernel reverse = module->kernel("tessera_smem_reverse");
  DeviceBuffer out(driver, words * 4);
  reverse.launch({1, 1, 1}, {1024, 1, 1}, words * 4, nullptr, {&out.pointer, &words});
  std::vector<unsigned> host(words);
  driver.memcpyDtoH(host.data(), out.pointer, words * 4);
  for (unsigned j = 0; j < words; ++j)
    require(host[j] == 3 * (words - 1 - j) + 1, "smem_reverse out[" + std::to_string(j) + "]");
  std::printf("dynamic shared memory: %u bytes OK\n", words * 4);

  // Errors that must be reported, not crash.
  if (iota.paramCount() >= 0) {
    bool threw = false;
    try {
      iota.launch({1, 1, 1}, {1, 1, 1}, 0, nullptr, {&out.pointer});
    } catch (const std::invalid_argument &) {
      threw = true;
    }
    require(threw, "a launch with too few arguments is refused");
  }
  try {
    module->kernel("no_such_kernel");
    require(false, "a missing kernel name is reported");
  } catch (const CudaError &error) {
    require(std::strstr(error.what(), "cuModuleGetFunction"), "error names cuModuleGetFunction");
  }
  try {
    GpuModule::load(kBrokenPtx, 0);
    require(false, "broken PTX is reported");
  } catch (const CudaError &error) {
    std::printf("broken PTX reported as: %s\n", error.what());
    require(std::strstr(error.what(), "JIT error log"), "the JIT log reaches the error");
  }

  // Launch overhead, timed with driver events.
  EventTimer timer(0);
  unsigned n = 1 << 20;
  DeviceBuffer buffer(driver, n * 4);
  void *args[] = {&buffer.pointer, &n};
  std::vector<void *> argList(args, args + 2);
  iota.launch({n / 256, 1, 1}, {256, 1, 1}, 0, nullptr, argList);
  timer.start();
  for (int i = 0; i < 100; ++i)
    iota.launch({n / 256, 1, 1}, {256, 1, 1}, 0, nullptr, argList);
  timer.stop();
  std::printf("iota over 4 MiB: %.2f us per launch (events)\n", timer.elapsedMs() * 10.0f);

  if (cubinPath) {
    std::ifstream in(cubinPath, std::ios::binary);
    require(bool(in), std::string("cannot read ") + cubinPath);
    std::string cubin((std::istreambuf_iterator<char>(in)), {});
    auto cubinModule = GpuModule::load(cubin, 0);
    checkIota(runIota(*cubinModule, 123457, nullptr), "iota from the cubin");
    std::printf("cubin %s: OK\n", cubinPath);
  }
  std::printf("smoke test passed\n");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  const char *cubinPath = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--print-ptx")) {
      std::fputs(kSmokePtx, stdout);
      return 0;
    }
    if (!std::strcmp(argv[i], "--cubin") && i + 1 < argc) {
      cubinPath = argv[++i];
      continue;
    }
    std::fprintf(stderr, "usage: %s [--print-ptx | --cubin FILE]\n", argv[0]);
    return 2;
  }
  CudaDriver &driver = CudaDriver::instance();
  if (!driver.available()) {
    std::printf("no GPU: %s\n", driver.unavailableReason().c_str());
    return 0;
  }
  try {
    return runChecks(cubinPath);
  } catch (const std::exception &error) {
    std::fprintf(stderr, "smoke test FAILED: %s\n", error.what());
    return 1;
  }
}
