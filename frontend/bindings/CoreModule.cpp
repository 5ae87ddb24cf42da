//===- CoreModule.cpp - the pybind11 layer over the compiler facade -------===//
//
// A handful of entry points (verify, lower, pipeline, compile, run), not a mirror of the
// MLIR API: the Python frontend builds attn IR as text and hands it over.
//
//===----------------------------------------------------------------------===//
#include "compiler/Compiler.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;
using namespace tessera;

static TuningConfig makeConfig(int64_t blockM, int64_t blockN, int64_t numWarps,
                               int64_t numStages, int64_t split, int64_t minBlocks,
                               int64_t gradQueryTile, bool tma, bool warpSpecialize,
                               bool persistent, bool gradDqAtomic, bool pingpong,
                               bool intraWarpgroupOverlap) {
  TuningConfig c;
  c.blockM = blockM;
  c.blockN = blockN;
  c.numWarps = numWarps;
  c.numStages = numStages;
  c.split = split;
  c.minBlocks = minBlocks;
  c.gradQueryTile = gradQueryTile;
  c.tma = tma;
  c.warpSpecialize = warpSpecialize;
  c.persistent = persistent;
  c.gradDqAtomic = gradDqAtomic;
  c.pingpong = pingpong;
  c.intraWarpgroupOverlap = intraWarpgroupOverlap;
  return c;
}

/// A view of a numpy array as a kernel buffer. The frontend has already checked dtype,
/// rank and shape; strides here are converted from bytes to elements.
static BufferArg toBuffer(const py::array &a) {
  BufferArg arg;
  arg.data = const_cast<void *>(a.data());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.strides(d) % a.itemsize() != 0)
      throw py::value_error("buffer strides must be whole elements");
    arg.sizes.push_back(a.shape(d));
    arg.strides.push_back(a.strides(d) / a.itemsize());
  }
  return arg;
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "Tessera compiler core";
  py::register_exception<CompileError>(m, "CompileError", PyExc_RuntimeError);

#define CONFIG_ARGS                                                                  \
  py::arg("block_m") = 64, py::arg("block_n") = 64, py::arg("num_warps") = 4,         \
  py::arg("num_stages") = 2, py::arg("split") = 1, py::arg("min_blocks") = 0,          \
  py::arg("grad_query_tile") = 0, py::arg("tma") = false,                             \
  py::arg("warp_specialize") = false, py::arg("persistent") = false,                  \
  py::arg("grad_dq_atomic") = false, py::arg("pingpong") = false,                     \
  py::arg("intra_warpgroup_overlap") = false

// The knobs as lambda parameters and as makeConfig's arguments, in CONFIG_ARGS' order.
#define CONFIG_PARAMS                                                                \
  int64_t bm, int64_t bn, int64_t nw, int64_t ns, int64_t sp, int64_t mb, int64_t gq,  \
      bool tma, bool ws, bool persistent, bool dqa, bool pingpong, bool overlap
#define CONFIG makeConfig(bm, bn, nw, ns, sp, mb, gq, tma, ws, persistent, dqa, pingpong, overlap)

  m.def("verify", &verifyModule, py::arg("module"),
        "Parse and verify attn IR; returns it printed.");
  m.def(
      "pipeline",
      [](const std::string &stage, CONFIG_PARAMS) {
        return pipelineFor(parseStage(stage), CONFIG);
      },
      py::arg("stage"), CONFIG_ARGS, "The tessera-opt pipeline reaching a stage.");
  m.def(
      "lower",
      [](const std::string &module, const std::string &stage, CONFIG_PARAMS) {
        return lowerModule(module, parseStage(stage), CONFIG);
      },
      py::arg("module"), py::arg("stage"), CONFIG_ARGS, "Lower attn IR to a stage.");

  m.def(
      "compile_gpu",
      [](const std::string &module, const std::string &entry, const std::string &chip,
         CONFIG_PARAMS) {
        GpuKernelImage image =
            compileForGpu(module, entry, CONFIG, chip);
        return py::make_tuple(py::bytes(image.ptx), image.launchesJson);
      },
      py::arg("module"), py::arg("entry"), py::arg("chip") = "sm_90a", CONFIG_ARGS,
      "Compile to PTX; returns (ptx bytes, launches JSON).");
  m.def("ir_after", &irAfterPass, py::arg("module"), py::arg("pipeline"), py::arg("pass_name"),
        "Run a pipeline on attn IR; the module right after the first run of a pass.");
  m.def("launch_record", &launchRecordOf, py::arg("module"), py::arg("entry"),
        "The launch record JSON compile_gpu writes, from the tessera.* attributes of "
        "`entry` in an already lowered module (docs/LAUNCH_RECORD.md).");
  m.def(
      "gpu_pipeline",
      [](const std::string &chip, CONFIG_PARAMS) {
        return gpuPipelineFor(CONFIG, chip);
      },
      py::arg("chip") = "sm_90a", CONFIG_ARGS);

  py::class_<CpuKernel>(m, "CpuKernel")
      .def(py::init([](const std::string &module, const std::string &entry, CONFIG_PARAMS) {
             return CpuKernel::compile(module, entry, CONFIG);
           }),
           py::arg("module"), py::arg("entry"), CONFIG_ARGS)
      .def(
          "run",
          [](CpuKernel &k, const std::vector<py::array> &arrays) {
            std::vector<BufferArg> args;
            for (const py::array &a : arrays)
              args.push_back(toBuffer(a));
            py::gil_scoped_release release;
            k.run(args);
          },
          py::arg("buffers"), "Run on numpy arrays: inputs, then outputs.");
}
