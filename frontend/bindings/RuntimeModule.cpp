//===- RuntimeModule.cpp - the pybind11 layer over the GPU runtime --------===//
//
// No MLIR here: this module builds on machines that only have Python, a C++ compiler
// and (at run time) a CUDA driver. It loads PTX, launches kernels on a caller's stream
// reads/writes the on-disk kernel cache and decodes launch records.
//
//===----------------------------------------------------------------------===//
#include "runtime/CudaDriver.h"
#include "runtime/KernelCache.h"
#include "runtime/LaunchRecord.h"
#include "runtime/Module.h"
#include "runtime/TensorMap.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

namespace py = pybind11;
using namespace tessera::runtime;

namespace {
/// Python's arithmetic, for launch formulas over sizes that are any Python number (torch's
/// symbolic sizes under torch.compile: a comparison then records a guard).
struct PythonOps {
  py::object sms; // the device's SM count
  py::object smCount() const { return sms; }
  py::object min(const py::object &a, const py::object &b) const {
    return check(PyObject_RichCompare(b.ptr(), a.ptr(), Py_LT)).cast<bool>() ? b : a;
  }
  static py::object check(PyObject *result) {
    if (!result)
      throw py::error_already_set();
    return py::reinterpret_steal<py::object>(result);
  }
  py::object constant(int64_t c) const { return py::int_(c); }
  py::object floorDiv(const py::object &x, int64_t q) const {
    return check(PyNumber_FloorDivide(x.ptr(), py::int_(q).ptr()));
  }
  py::object ceilDiv(const py::object &x, int64_t q) const {
    py::object negated = check(PyNumber_Negative(x.ptr()));
    return check(PyNumber_Negative(floorDiv(negated, q).ptr()));
  }
  py::object mul(const py::object &a, const py::object &b) const {
    return check(PyNumber_Multiply(a.ptr(), b.ptr()));
  }
  bool equal(const py::object &a, const py::object &b) const {
    return check(PyObject_RichCompare(a.ptr(), b.ptr(), Py_EQ)).cast<bool>();
  }
};

/// One field of each item (a launch, a workspace), for a Python list.
template <typename Item, typename Field>
auto each(const std::vector<Item> &items, Field field) {
  std::vector<std::decay_t<decltype(field(std::declval<const Item &>()))>> out;
  for (const Item &item : items)
    out.push_back(field(item));
  return out;
}

/// (workspace shapes, grids) for argument shapes of Python numbers.
py::tuple planOverPythonSizes(const LaunchRecord &record, const std::vector<py::list> &shapes,
                              int64_t smCount) {
  record.checkSmCount(smCount);
  PythonOps ops{py::int_(smCount)};
  std::vector<size_t> ranks;
  for (const py::list &shape : shapes)
    ranks.push_back(shape.size());
  record.checkArgumentRanks(ranks);
  std::vector<py::list> everything(shapes);
  auto sizeOf = [&](int64_t arg, int64_t dim) { return py::object(everything[arg][dim]); };
  py::list workspaceShapes, grids;
  for (const Workspace &workspace : record.workspaces()) {
    py::list shape;
    for (const Extent &extent : workspace.shape)
      shape.append(evaluateExtent<py::object>(extent, sizeOf, ops));
    everything.push_back(shape);
    workspaceShapes.append(py::tuple(shape));
  }
  for (const Launch &launch : record.launches()) {
    py::list grid;
    for (const Extent &extent : launch.grid)
      grid.append(evaluateExtent<py::object>(extent, sizeOf, ops));
    while (grid.size() < 3)
      grid.append(1);
    grids.append(py::tuple(grid));
  }
  return py::make_tuple(workspaceShapes, grids);
}

/// Layouts of anything with data_ptr(), shape and stride(): torch tensors, meta ones too.
std::vector<TensorLayout> layoutsOf(const py::sequence &tensors) {
  std::vector<TensorLayout> layouts;
  for (py::handle t : tensors)
    layouts.push_back({t.attr("data_ptr")().cast<uint64_t>(),
                       t.attr("shape").cast<std::vector<int64_t>>(),
                       t.attr("stride")().cast<std::vector<int64_t>>()});
  return layouts;
}
} // namespace

PYBIND11_MODULE(_runtime, m) {
  m.doc() = "Tessera GPU runtime (CUDA driver by dlopen, kernel cache)";
  py::register_exception<CudaError>(m, "CudaError", PyExc_RuntimeError);
  py::register_exception<KernelCacheError>(m, "KernelCacheError", PyExc_OSError);
  py::register_exception<LaunchRecordError>(m, "LaunchRecordError", PyExc_ValueError);
  py::register_exception<TensorMapError>(m, "TensorMapError", PyExc_ValueError);

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

  m.def("multiprocessor_count", [](int ordinal) {
    return CudaDriver::instance().multiprocessorCount(ordinal);
  }, py::arg("ordinal") = 0, "the device's SM count (the grid of persistent kernels)");
  m.def(
      "tensor_map_encoding",
      [](uint64_t address, const std::string &dtype, const std::vector<int64_t> &sizes,
         const std::vector<int64_t> &strideBytes, const std::vector<int64_t> &box,
         int64_t swizzle) {
        TiledEncoding e = tiledEncoding({address, dtype, sizes, strideBytes, box, swizzle});
        auto first = [](const auto &values, size_t n) {
          return std::vector<uint64_t>(values.begin(), values.begin() + n);
        };
        py::dict out;
        out["dims"] = first(e.dims, e.rank);
        out["strides"] = first(e.strides, e.rank - 1);
        out["box"] = first(e.box, e.rank);
        out["data_type"] = e.dataType;
        out["swizzle"] = e.swizzle;
        return out;
      },
      py::arg("address"), py::arg("dtype"), py::arg("sizes"), py::arg("stride_bytes"),
      py::arg("box"), py::arg("swizzle"),
      "cuTensorMapEncodeTiled's arguments (dims innermost first) for a tensor and box, after "
      "checking every TMA rule (TensorMapError names the one broken); calls no driver");

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

  m.attr("LAUNCH_RECORD_VERSION") = kLaunchRecordVersion;
  m.attr("OLDEST_LAUNCH_RECORD_VERSION") = kOldestLaunchRecordVersion;
  py::class_<LaunchRecord>(m, "LaunchRecord")
      .def_static("parse", &LaunchRecord::parse, py::arg("text"))
      .def_property_readonly("version", &LaunchRecord::version)
      .def_property_readonly("text", &LaunchRecord::text)
      .def_property_readonly("argument_ranks", &LaunchRecord::argumentRanks)
      .def_property_readonly("kernels",
                             [](const LaunchRecord &r) {
                               return each(r.launches(), [](const Launch &l) { return l.kernel; });
                             })
      .def_property_readonly("blocks",
                             [](const LaunchRecord &r) {
                               return each(r.launches(), [](const Launch &l) { return l.block; });
                             })
      .def_property_readonly("shared_bytes",
                             [](const LaunchRecord &r) {
                               return each(r.launches(),
                                           [](const Launch &l) { return l.sharedBytes; });
                             })
      .def_property_readonly("uses_sm_count", &LaunchRecord::usesSmCount)
      .def_property_readonly("tensor_maps",
                             [](const LaunchRecord &r) {
                               return each(r.tensorMaps(), [](const TensorMapParameter &p) {
                                 return py::make_tuple(p.argument, p.dtype, p.box, p.swizzle);
                               });
                             })
      .def_property_readonly("workspace_dtypes",
                             [](const LaunchRecord &r) {
                               return each(r.workspaces(),
                                           [](const Workspace &w) { return w.dtype; });
                             })
      .def(
          "plan",
          [](const LaunchRecord &r, const std::vector<std::vector<int64_t>> &shapes,
             int64_t smCount) {
            LaunchPlan plan = r.plan(shapes, smCount);
            py::list workspaceShapes, grids;
            for (const auto &shape : plan.workspaceShapes)
              workspaceShapes.append(py::tuple(py::cast(shape)));
            for (const auto &grid : plan.grids)
              grids.append(py::make_tuple(grid[0], grid[1], grid[2]));
            return py::make_tuple(workspaceShapes, grids);
          },
          py::arg("shapes"), py::arg("sm_count") = 0,
          "(workspace shapes, grids of 3 dims) for the caller's arguments of these shapes on a "
          "device of sm_count SMs (needed where uses_sm_count)")
      .def("plan_symbolic", &planOverPythonSizes, py::arg("shapes"), py::arg("sm_count") = 0,
           "plan() over sizes of any Python number type (torch's symbolic sizes)")
      .def(
          "pack",
          [](const LaunchRecord &r, const py::sequence &tensors) {
            PackedParameters packed = r.pack(layoutsOf(tensors));
            return py::make_tuple(packed.values, packed.pointerSlots);
          },
          py::arg("tensors"),
          "(parameters, where each tensor's descriptor starts) for the caller's arguments "
          "then the workspaces")
      .def(
          "encode_tensor_maps",
          [](const LaunchRecord &r, const py::sequence &tensors) {
            std::vector<TensorMap> maps =
                r.encodeTensorMaps(layoutsOf(tensors), TensorMapCache::instance());
            return py::bytes(reinterpret_cast<const char *>(maps.data()),
                             maps.size() * sizeof(TensorMap));
          },
          py::arg("tensors"),
          "the TMA descriptors (128 bytes each, the record's order) for the caller's arguments "
          "then the workspaces, from the process's descriptor cache");

  py::class_<GpuKernel>(m, "Kernel")
      .def_property_readonly("name", &GpuKernel::name)
      .def_property_readonly("num_regs",
                             [](const GpuKernel &k) {
                               return k.attribute(cu::FUNC_ATTRIBUTE_NUM_REGS);
                             })
      .def(
          "launch",
          [](const GpuKernel &k, std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
             unsigned shared, uintptr_t stream, const std::vector<int64_t> &params,
             const py::bytes &tensorMaps) {
            // The memref descriptors' parameters are 8 bytes each (a pointer or an i64), so
            // one array holds them; TMA descriptors follow, 128 bytes each, 64-byte aligned.
            std::vector<int64_t> values(params);
            std::string_view mapBytes(tensorMaps);
            if (mapBytes.size() % sizeof(TensorMap))
              throw std::invalid_argument("tensor_maps must be whole 128-byte descriptors, got " +
                                          std::to_string(mapBytes.size()) + " bytes");
            std::vector<TensorMap> maps(mapBytes.size() / sizeof(TensorMap));
            std::memcpy(maps.data(), mapBytes.data(), mapBytes.size());
            std::vector<void *> args;
            args.reserve(values.size() + maps.size());
            for (int64_t &v : values)
              args.push_back(&v);
            for (TensorMap &map : maps)
              args.push_back(&map);
            k.launch(grid, block, shared, reinterpret_cast<void *>(stream), args);
          },
          py::arg("grid"), py::arg("block"), py::arg("shared_bytes"), py::arg("stream"),
          py::arg("params"), py::arg("tensor_maps") = py::bytes());

  py::class_<GpuModule, std::shared_ptr<GpuModule>>(m, "Module")
      .def(py::init([](py::bytes image, int ordinal) {
             return GpuModule::load(std::string(image), ordinal);
           }),
           py::arg("image"), py::arg("ordinal") = 0)
      .def("kernel", &GpuModule::kernel, py::arg("name"));
}
