// Loading the driver where it cannot work: a missing library, the toolkit's stub library, and
// this machine's real libcuda.so.1 (absent on the build machine). None of these may throw; all
// must say why, and every later call must fail with a CudaError that names it.
#include "TestHarness.h"
#include "runtime/Module.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace tessera::runtime;
using tessera::runtime::test::contains;

TEST(missingLibraryIsUnavailableWithAReason) {
  CudaDriver driver("libtessera-no-such-driver.so.1");
  EXPECT(!driver.available());
  EXPECT(contains(driver.unavailableReason(), "libtessera-no-such-driver.so.1"));
  EXPECT_EQ(driver.deviceCount(), 0);
  EXPECT(!driver.hasParamInfo());
  try {
    driver.memAlloc(16);
    throw test::Failure("memAlloc on an unavailable driver did not throw");
  } catch (const CudaError &error) {
    EXPECT_EQ(error.code(), CudaError::kDriverUnavailable);
    EXPECT_EQ(error.call(), std::string("cuMemAlloc_v2"));
    EXPECT(contains(error.what(), "cuMemAlloc_v2"));
    EXPECT(contains(error.what(), "libtessera-no-such-driver.so.1"));
  }
  EXPECT_THROWS(GpuModule::load(".version 8.0\n", 0, driver), CudaError);
  EXPECT_THROWS(EventTimer(0, driver), CudaError);
}

TEST(stubLibraryFailsAtCuInit) {
  // The toolkit's stub exports every entry point but refuses to initialise: this checks that
  // every symbol we need resolves in a CUDA 13 libcuda, and that cuInit's failure is reported.
  std::string stub;
  const char *roots[] = {std::getenv("CUDA_HOME"), std::getenv("CUDA_PATH"), "/usr/local/cuda"};
  for (const char *root : roots)
    if (root && std::filesystem::exists(std::string(root) + "/lib64/stubs/libcuda.so")) {
      stub = std::string(root) + "/lib64/stubs/libcuda.so";
      break;
    }
  if (stub.empty())
    throw test::Skip("no CUDA toolkit stub libcuda.so here");
  CudaDriver driver(stub);
  EXPECT(!driver.available());
  EXPECT(!contains(driver.unavailableReason(), "lacks")); // every symbol resolved
  EXPECT(contains(driver.unavailableReason(), "cuInit failed: CUDA_ERROR_STUB_LIBRARY"));
  std::printf("  stub: %s\n", driver.unavailableReason().c_str());
}

TEST(processDriverLoadsWithoutThrowing) {
  CudaDriver &driver = CudaDriver::instance();
  EXPECT(&driver == &CudaDriver::instance());
  if (driver.available()) {
    EXPECT(driver.deviceCount() > 0);
    std::printf("  GPU: %s, driver %d\n", driver.deviceName(driver.device(0)).c_str(),
                driver.driverVersion());
  } else {
    EXPECT(!driver.unavailableReason().empty());
    EXPECT_EQ(driver.deviceCount(), 0);
    std::printf("  no GPU: %s\n", driver.unavailableReason().c_str());
  }
  // On a machine known to have no GPU the caller can insist on it (and vice versa).
  if (const char *expect = std::getenv("TESSERA_EXPECT_GPU"))
    EXPECT_EQ(driver.available(), std::string(expect) == "1");
}

TEST(cudaErrorKeepsCallAndCode) {
  CudaError error("cuLaunchKernel", 700, "cuLaunchKernel failed: CUDA_ERROR_ILLEGAL_ADDRESS");
  EXPECT_EQ(error.call(), std::string("cuLaunchKernel"));
  EXPECT_EQ(error.code(), 700);
  EXPECT(contains(error.what(), "CUDA_ERROR_ILLEGAL_ADDRESS"));
  const std::runtime_error &base = error; // catchable as a plain runtime_error (pybind11 does)
  EXPECT(contains(base.what(), "cuLaunchKernel"));
}
