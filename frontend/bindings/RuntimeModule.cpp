//===- RuntimeModule.cpp - the pybind11 layer over the GPU runtime --------===//
//
// No MLIR here: this module builds on machines that only have Python, a C++ compiler
// and (at run time) a CUDA driver. It loads PTX, launches kernels on a caller's stream
// and reads/writes the on-disk kernel cache.
//
//===----------------------------------------------------------------------===//
#include "runtime/CudaDriver.h"
#include "runtime/KernelCache.h"
#include "runtime/Module.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;
using namespace tessera::runtime;

PYBIND11_MODULE(_runtime, m) {
  m.doc() = "Tessera GPU runtime (CUDA driver by dlopen, kernel cache)";
  py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);
  py::register_exception<KernelCacheError>(m, "KernelCacheError", PyExc_OSError);

  m.def("driver_available", [] {
    CudaDriver &d = CudaDriver::instance();
    return py::make_tuple(d.available(), d.available() ? "" : d.unavailableReason());
  });
  m.def("device_name", [](int ordinal) {
    CudaDriver &d = CudaDriver::instance();
    return d.deviceName(d.device(ordinal));
  }, py::arg("ordinal") = 0);
  m.def("compute_capability", [](int ordinal) {
    CudaDriver &d = CudaDriver::instance();
    return d.computeCapability(d.device(ordinal));
  }, py::arg("ordinal") = 0);

  m.def("cache_default_dir", &KernelCache::defaultDirectory);
  m.def("cache_key", &KernelCache::makeKey, py::arg("spec"), py::arg("tuning"),
        py::arg("arch"), py::arg("compiler_version"));
  m.def("cache_get", [](const std::string &dir, const std::string &key) -> py::object {
    auto blob = KernelCache(dir).get(key);
    if (!blob)
      return py::none();
    return py::bytes(*blob);
  });
  m.def("cache_put", [](const std::string &dir, const std::string &key, py::bytes blob) {
    KernelCache(dir).put(key, std::string(blob));
  });

  py::class_<GpuKernel>(m, "Kernel")
      .def_property_readonly("name", &GpuKernel::name)
      .def_property_readonly("num_regs",
                             [](const GpuKernel &k) {
                               return k.attribute(cu::FUNC_ATTRIBUTE_NUM_REGS);
                             })
      .def(
          "launch",
          [](const GpuKernel &k, std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
             unsigned shared, uintptr_t stream, const std::vector<int64_t> &params) {
            // Every parameter of our kernels is 8 bytes: a pointer or an i64 of a memref
            // descriptor, so one array holds them all.
            std::vector<int64_t> values(params);
            std::vector<void *> args;
            for (int64_t &v : values)
              args.push_back(&v);
            k.launch(grid, block, shared, reinterpret_cast<void *>(stream), args);
          },
          py::arg("grid"), py::arg("block"), py::arg("shared_bytes"), py::arg("stream"),
          py::arg("params"));

  py::class_<GpuModule, std::shared_ptr<GpuModule>>(m, "Module")
      .def(py::init([](py::bytes image, int ordinal) {
             return GpuModule::load(std::string(image), ordinal);
           }),
           py::arg("image"), py::arg("ordinal") = 0)
      .def("kernel", &GpuModule::kernel, py::arg("name"));
}
