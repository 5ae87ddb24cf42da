// Built only where the CUDA toolkit's cuda.h is found: checks that the types and enum values
// runtime/CudaDriver.h declares by hand (so the runtime builds without the toolkit) are the
// ones cuda.h defines. A mismatch fails the build, not a launch on some far-away GPU.
#include <cuda.h>

#include "TestHarness.h"
#include "runtime/CudaDriver.h"

#include <type_traits>

namespace rt = tessera::runtime;
namespace cu = tessera::runtime::cu;

static_assert(std::is_same_v<rt::CUcontext, ::CUcontext>);
static_assert(std::is_same_v<rt::CUmodule, ::CUmodule>);
static_assert(std::is_same_v<rt::CUfunction, ::CUfunction>);
static_assert(std::is_same_v<rt::CUstream, ::CUstream>);
static_assert(std::is_same_v<rt::CUevent, ::CUevent>);
static_assert(std::is_same_v<rt::CUdevice, ::CUdevice>);
static_assert(std::is_same_v<rt::CUdeviceptr, ::CUdeviceptr>);
// Enums cross the dlsym'd calls as int: same size, same values.
static_assert(sizeof(::CUresult) == sizeof(rt::CUresult));
static_assert(sizeof(::CUjit_option) == sizeof(int));
static_assert(sizeof(::CUdevice_attribute) == sizeof(int));
static_assert(sizeof(::CUfunction_attribute) == sizeof(int));

static_assert(cu::SUCCESS == CUDA_SUCCESS);
static_assert(cu::ERROR_INVALID_VALUE == CUDA_ERROR_INVALID_VALUE);
static_assert(cu::ERROR_NOT_INITIALIZED == CUDA_ERROR_NOT_INITIALIZED);
static_assert(cu::ERROR_STUB_LIBRARY == CUDA_ERROR_STUB_LIBRARY);
static_assert(cu::ERROR_NO_DEVICE == CUDA_ERROR_NO_DEVICE);
static_assert(cu::DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK ==
              CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
static_assert(cu::DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT ==
              CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
static_assert(cu::DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ==
              CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
static_assert(cu::DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ==
              CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
static_assert(cu::DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR ==
              CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
static_assert(cu::DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN ==
              CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
static_assert(cu::FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
static_assert(cu::FUNC_ATTRIBUTE_SHARED_SIZE_BYTES == CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
static_assert(cu::FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES == CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES);
static_assert(cu::FUNC_ATTRIBUTE_NUM_REGS == CU_FUNC_ATTRIBUTE_NUM_REGS);
static_assert(cu::FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES ==
              CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
static_assert(cu::JIT_INFO_LOG_BUFFER == CU_JIT_INFO_LOG_BUFFER);
static_assert(cu::JIT_INFO_LOG_BUFFER_SIZE_BYTES == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES);
static_assert(cu::JIT_ERROR_LOG_BUFFER == CU_JIT_ERROR_LOG_BUFFER);
static_assert(cu::JIT_ERROR_LOG_BUFFER_SIZE_BYTES == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
static_assert(cu::JIT_LOG_VERBOSE == CU_JIT_LOG_VERBOSE);
static_assert(cu::STREAM_DEFAULT == CU_STREAM_DEFAULT);
static_assert(cu::STREAM_NON_BLOCKING == CU_STREAM_NON_BLOCKING);
static_assert(cu::EVENT_DEFAULT == CU_EVENT_DEFAULT);

// Reported at run time too, so the test log shows the cross-check was compiled in.
TEST(declarationsMatchCudaHeader) { EXPECT(CUDA_VERSION >= 12000); }
