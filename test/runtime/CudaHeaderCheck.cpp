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
static_assert(cu::TENSOR_MAP_DATA_TYPE_INT32 == CU_TENSOR_MAP_DATA_TYPE_INT32);
static_assert(cu::TENSOR_MAP_DATA_TYPE_FLOAT16 == CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
static_assert(cu::TENSOR_MAP_DATA_TYPE_FLOAT32 == CU_TENSOR_MAP_DATA_TYPE_FLOAT32);
static_assert(cu::TENSOR_MAP_DATA_TYPE_BFLOAT16 == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
static_assert(cu::TENSOR_MAP_INTERLEAVE_NONE == CU_TENSOR_MAP_INTERLEAVE_NONE);
static_assert(cu::TENSOR_MAP_SWIZZLE_NONE == CU_TENSOR_MAP_SWIZZLE_NONE);
static_assert(cu::TENSOR_MAP_SWIZZLE_32B == CU_TENSOR_MAP_SWIZZLE_32B);
static_assert(cu::TENSOR_MAP_SWIZZLE_64B == CU_TENSOR_MAP_SWIZZLE_64B);
static_assert(cu::TENSOR_MAP_SWIZZLE_128B == CU_TENSOR_MAP_SWIZZLE_128B);
static_assert(cu::TENSOR_MAP_L2_PROMOTION_L2_128B == CU_TENSOR_MAP_L2_PROMOTION_L2_128B);
static_assert(cu::TENSOR_MAP_FLOAT_OOB_FILL_NONE == CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
static_assert(sizeof(rt::TensorMap) == sizeof(CUtensorMap) && alignof(rt::TensorMap) >= 64);
// The injectable encoder has the driver entry point's type, argument for argument.
static_assert(std::is_same_v<decltype(&cuTensorMapEncodeTiled),
                             CUresult (*)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                          const cuuint64_t *, const cuuint64_t *,
                                          const cuuint32_t *, const cuuint32_t *,
                                          CUtensorMapInterleave, CUtensorMapSwizzle,
                                          CUtensorMapL2promotion, CUtensorMapFloatOOBfill)>);
static_assert(sizeof(cuuint64_t) == sizeof(uint64_t) && sizeof(cuuint32_t) == sizeof(uint32_t));
static_assert(sizeof(CUtensorMapDataType) == sizeof(int) && sizeof(CUtensorMapSwizzle) == sizeof(int));

// Reported at run time too, so the test log shows the cross-check was compiled in.
TEST(declarationsMatchCudaHeader) { EXPECT(CUDA_VERSION >= 12000); }
