// The launch record's decoder: parsing and its errors, grids and workspace shapes from
// argument sizes (rounding up and down), and the parameters' packing. No GPU.
#include "TestHarness.h"

#include "runtime/LaunchRecord.h"

#include <string>

using namespace tessera::runtime;
using tessera::runtime::test::contains;

namespace {

/// q [B, H, N, D], k, out, lse [B, H, N]; one workspace [B, H, ceil(N / 16)]; a launch
/// over query tiles of 64 and a second over the workspace's tiles of 4, rounded down.
const char *const kRecord = R"({"version": 1, "arguments": [4, 4, 4, 3],
  "workspaces": [{"dtype": "i32", "shape": [{"dim": [0, 0]}, {"dim": [0, 1]},
                                            {"dim": [0, 2], "divide": [16]}]}],
  "launches": [{"kernel": "classify", "block": 128, "smem": 0,
                "grid": [{"dim": [0, 2], "divide": [64]}, {"dim": [0, 1]}, {"dim": [0, 0]}]},
               {"kernel": "attend", "block": 256, "smem": 4096,
                "grid": [{"dim": [4, 2], "divide": [-4]},
                         {"product": [{"dim": [0, 1]}, {"constant": 10, "divide": [3]}]}]}]})";

std::string withGrid(const std::string &grid) {
  return R"({"version": 1, "arguments": [4, 4], "workspaces": [],
    "launches": [{"kernel": "k", "block": 128, "smem": 0, "grid": [)" +
         grid + "]}]}";
}

std::string errorOf(const std::string &text) {
  try {
    LaunchRecord::parse(text);
  } catch (const LaunchRecordError &e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST(launchRecordParsesFields) {
  LaunchRecord record = LaunchRecord::parse(kRecord);
  EXPECT_EQ(record.version(), 1); // version 1 records are still read
  EXPECT(record.tensorMaps().empty() && !record.usesSmCount());
  EXPECT_EQ(record.argumentRanks().size(), size_t(4));
  EXPECT_EQ(record.workspaces().size(), size_t(1));
  EXPECT_EQ(record.workspaces()[0].dtype, std::string("i32"));
  EXPECT_EQ(record.launches().size(), size_t(2));
  EXPECT_EQ(record.launches()[1].kernel, std::string("attend"));
  EXPECT_EQ(record.launches()[1].block, 256);
  EXPECT_EQ(record.launches()[1].sharedBytes, 4096);
}

TEST(launchRecordPlansGridsAndWorkspaces) {
  LaunchRecord record = LaunchRecord::parse(kRecord);
  // N = 100: 7 tiles of 16 (up), 2 of 64 (up); the workspace's 7 tiles / 4 = 1 (down).
  LaunchPlan plan = record.plan({{2, 3, 100, 64}, {2, 3, 100, 64}, {2, 3, 100, 64}, {2, 3, 100}});
  EXPECT_EQ(plan.workspaceShapes.size(), size_t(1));
  EXPECT(plan.workspaceShapes[0] == (std::vector<int64_t>{2, 3, 7}));
  EXPECT(plan.grids[0] == (std::array<int64_t, 3>{2, 3, 2}));
  EXPECT(plan.grids[1] == (std::array<int64_t, 3>{1, 3 * 4, 1})); // ceil(10 / 3) = 4
  // N = 1 and N = 0: one tile, then none.
  EXPECT(record.plan({{1, 1, 1, 8}, {1, 1, 1, 8}, {1, 1, 1, 8}, {1, 1, 1}}).grids[0] ==
         (std::array<int64_t, 3>{1, 1, 1}));
  EXPECT(record.plan({{1, 1, 0, 8}, {1, 1, 0, 8}, {1, 1, 0, 8}, {1, 1, 0}}).grids[0] ==
         (std::array<int64_t, 3>{0, 1, 1}));
}

TEST(launchRecordRoundsInOrder) {
  // ceil(ceil(9000 / 64) / 32) = 5; floor(141 / 32) = 4; floor then ceil: ceil(4 / 3) = 2.
  auto grid = [](const std::string &extent) {
    return LaunchRecord::parse(withGrid(extent)).plan({{2, 12, 9000, 64}, {2, 4, 9000, 64}}).grids[0][0];
  };
  EXPECT_EQ(grid(R"({"dim": [1, 2], "divide": [64, 32]})"), 5);
  EXPECT_EQ(grid(R"({"dim": [1, 2], "divide": [64, -32]})"), 4);
  EXPECT_EQ(grid(R"({"dim": [1, 2], "divide": [64, -32, 3]})"), 2);
  EXPECT_EQ(grid(R"({"constant": 7})"), 7);
  EXPECT_EQ(grid(R"({"dim": [0, 1], "zero_if_equal": [1, 1]})"), 12);  // 12 != 4
  EXPECT_EQ(grid(R"({"dim": [0, 2], "zero_if_equal": [1, 2]})"), 0);   // equal
  EXPECT_EQ(grid(R"({"dim": [0, 1], "zero_unless_equal": [1, 1]})"), 0);
  EXPECT_EQ(grid(R"({"dim": [0, 2], "zero_unless_equal": [1, 2]})"), 9000);
}

TEST(launchRecordPacksDescriptors) {
  LaunchRecord record = LaunchRecord::parse(kRecord);
  std::vector<TensorLayout> tensors = {
      {0x1000, {2, 3, 5, 4}, {60, 20, 4, 1}}, {0x2000, {2, 3, 5, 4}, {60, 20, 4, 1}},
      {0x3000, {2, 3, 5, 4}, {60, 4, 12, 1}}, {0x4000, {2, 3, 5}, {15, 5, 1}},
      {0x5000, {2, 3, 1}, {3, 1, 1}}};
  PackedParameters packed = record.pack(tensors);
  EXPECT(packed.pointerSlots == (std::vector<size_t>{0, 11, 22, 33, 42}));
  EXPECT_EQ(packed.values.size(), size_t(51));
  EXPECT(std::vector<int64_t>(packed.values.begin() + 22, packed.values.begin() + 33) ==
         (std::vector<int64_t>{0x3000, 0x3000, 0, 2, 3, 5, 4, 60, 4, 12, 1}));
  tensors.pop_back();
  EXPECT(contains([&] {
    try {
      record.pack(tensors);
    } catch (const LaunchRecordError &e) {
      return std::string(e.what());
    }
    return std::string();
  }(), "4 arguments and 1 workspaces, got 4 tensors"));
}

TEST(launchRecordRejectsWrongArguments) {
  LaunchRecord record = LaunchRecord::parse(kRecord);
  EXPECT_THROWS(record.plan({{2, 3, 100, 64}}), LaunchRecordError);
  EXPECT_THROWS(record.plan({{2, 3, 100, 64}, {2, 3, 100, 64}, {2, 3, 100, 64}, {2, 3, 100, 1}}),
                LaunchRecordError);
  EXPECT_THROWS(record.plan({{2, 3, -1, 64}, {2, 3, 1, 64}, {2, 3, 1, 64}, {2, 3, 1}}),
                LaunchRecordError);
}

TEST(launchRecordVersions) {
  EXPECT(contains(errorOf(R"({"workspaces": [], "launches": []})"), "has no version"));
  EXPECT(contains(errorOf(R"({"version": 3, "arguments": [], "workspaces": [], "launches": []})"),
                  "version 3 is not read by this runtime, which reads versions 1 to 2"));
  EXPECT(contains(errorOf(R"({"version": 0})"), "version 0 is not read"));
  // Version 2's fields are not version 1's.
  EXPECT(contains(errorOf(R"({"version": 1, "arguments": [4], "workspaces": [], "tensor_maps": [],
    "launches": [{"kernel": "k", "block": 1, "smem": 0, "grid": [{"constant": 1}]}]})"),
                  "unknown field 'tensor_maps'"));
  EXPECT(contains(errorOf(withGrid(R"({"sm_count": 1})")), "needs record version 2"));
  // Version 2 without descriptors may leave 'tensor_maps' out; it must be a list if there.
  EXPECT(LaunchRecord::parse(R"({"version": 2, "arguments": [4], "workspaces": [],
    "launches": [{"kernel": "k", "block": 1, "smem": 0, "grid": [{"constant": 1}]}]})")
             .tensorMaps()
             .empty());
  EXPECT(contains(errorOf(R"({"version": 2, "arguments": [4], "workspaces": [], "tensor_maps": 1,
    "launches": [{"kernel": "k", "block": 1, "smem": 0, "grid": [{"constant": 1}]}]})"),
                  "field 'tensor_maps' must be a list"));
  EXPECT(contains(errorOf(R"({"version": "1"})"), "not an integer"));
}

TEST(launchRecordRejectsMalformedRecords) {
  EXPECT(contains(errorOf(""), "unexpected end"));
  EXPECT(contains(errorOf("[1, 2]"), "record must be an object"));
  EXPECT(contains(errorOf(std::string(100000, '[') + std::string(100000, ']')), "nested deeper"));
  EXPECT(contains(errorOf(R"({"version": 1.5})"), "fraction"));
  EXPECT(contains(errorOf(R"({"version": 99999999999999999999})"), "outside 64 bits"));
  EXPECT(contains(errorOf(R"({"version": 1} x)"), "text after the record"));
  EXPECT(contains(errorOf("{\"v\xff\": 1}"), "non-ASCII character"));
  EXPECT(contains(errorOf(R"({"version": 1, "version": 1})"), "given twice"));
  EXPECT(contains(errorOf(R"({"version": 1, "arguments": [4], "workspaces": []})"),
                  "record has no field 'launches'"));
  EXPECT(contains(errorOf(withGrid(R"({"dim": [2, 0]})")), "grid[0] reads argument 2 of 2"));
  EXPECT(contains(errorOf(withGrid(R"({"dim": [0, 4]})")), "dim 4 of argument 0, which has rank 4"));
  EXPECT(contains(errorOf(withGrid(R"({"dim": [0, 1], "divide": [0]})")), "divides by 0"));
  EXPECT(contains(errorOf(withGrid(R"({"dim": [0, 1], "scale": 2})")), "unknown field 'scale'"));
  EXPECT(contains(errorOf(withGrid(R"({"product": [{"constant": 1}]})")), "two extents"));
  EXPECT(contains(errorOf(withGrid(R"({"constant": 2, "zero_if_equal": [0, 1]})")),
                  "compares a dim"));
  EXPECT(contains(errorOf(withGrid("")), "1 to 3 expected"));
  EXPECT(contains(errorOf(R"({"version": 1, "arguments": [1], "workspaces": [],
    "launches": [{"kernel": "k", "block": 2048, "smem": 0, "grid": [{"constant": 1}]}]})"),
                  "1 to 1024 threads"));
  EXPECT(contains(errorOf(R"({"version": 1, "arguments": [1],
    "workspaces": [{"dtype": "f64", "shape": []}], "launches": []})"), "dtype 'f64'"));
  // A workspace may read earlier workspaces, not later ones.
  EXPECT(contains(errorOf(R"({"version": 1, "arguments": [1],
    "workspaces": [{"dtype": "f32", "shape": [{"dim": [1, 0]}]},
                   {"dtype": "f32", "shape": [{"dim": [0, 0]}]}], "launches": []})"),
                  "workspaces[0].shape[0] reads argument 1 of 1"));
}

namespace {
/// Version 2: q, k [B, H, N, D] bf16 and out; TMA descriptors of q (64 x 64 boxes, 128-byte
/// swizzle) and of the workspace; a persistent launch over min(2 x SMs, tiles) and one
/// over one block per SM.
const char *const kRecordV2 = R"({"version": 2, "arguments": [4, 4, 4],
  "workspaces": [{"dtype": "f32", "shape": [{"dim": [0, 2]}, {"constant": 8}]}],
  "tensor_maps": [{"argument": 0, "dtype": "bf16", "box": [1, 1, 64, 64], "swizzle": 128},
                  {"argument": 3, "dtype": "f32", "box": [16, 8], "swizzle": 32}],
  "launches": [{"kernel": "persistent", "block": 384, "smem": 0,
                "grid": [{"min": [{"sm_count": 2},
                                  {"product": [{"dim": [0, 2], "divide": [128]},
                                               {"product": [{"dim": [0, 0]}, {"dim": [0, 1]}]}]}]}]},
               {"kernel": "one_per_sm", "block": 128, "smem": 0, "grid": [{"sm_count": 1}]}]})";

int stubEncodes = 0;
CUresult countingEncoder(TensorMap *map, int, uint32_t rank, void *, const uint64_t *dims,
                         const uint64_t *, const uint32_t *, const uint32_t *, int, int, int,
                         int) {
  ++stubEncodes;
  map->opaque[0] = rank * 1000 + dims[0];
  return cu::SUCCESS;
}
} // namespace

TEST(launchRecordV2PersistentGrids) {
  LaunchRecord record = LaunchRecord::parse(kRecordV2);
  EXPECT_EQ(record.version(), 2);
  EXPECT(record.usesSmCount());
  std::vector<int64_t> q = {2, 4, 1000, 64};
  // 8 x 4 x 2 = 64 tiles; 132 SMs: min(264, 64) = 64 blocks, then 132.
  LaunchPlan plan = record.plan({q, q, q}, 132);
  EXPECT(plan.grids[0] == (std::array<int64_t, 3>{64, 1, 1}));
  EXPECT(plan.grids[1] == (std::array<int64_t, 3>{132, 1, 1}));
  // Many tiles: two blocks per SM. N = 1: one tile per (batch, head).
  std::vector<int64_t> big = {4, 32, 8192, 64}, one = {1, 1, 1, 64};
  int64_t manyTiles = record.plan({big, big, big}, 132).grids[0][0];
  int64_t oneRow = record.plan({one, one, one}, 132).grids[0][0];
  EXPECT_EQ(manyTiles, 264);
  EXPECT_EQ(oneRow, 1);
  // Without the SM count the plan is refused, clearly.
  bool named = false;
  try {
    record.plan({q, q, q});
  } catch (const LaunchRecordError &e) {
    named = contains(e.what(), "needs the device's SM count");
  }
  EXPECT(named);
}

TEST(launchRecordV2TensorMaps) {
  LaunchRecord record = LaunchRecord::parse(kRecordV2);
  EXPECT_EQ(record.tensorMaps().size(), size_t(2));
  EXPECT_EQ(record.tensorMaps()[0].swizzle, 128);
  EXPECT(record.tensorMaps()[1].box == (std::vector<int64_t>{16, 8}));
  std::vector<TensorLayout> tensors = {{0x10000, {2, 4, 100, 64}, {25600, 6400, 64, 1}},
                                       {0x20000, {2, 4, 100, 64}, {25600, 6400, 64, 1}},
                                       {0x30000, {2, 4, 100, 64}, {25600, 6400, 64, 1}},
                                       {0x40000, {100, 8}, {8, 1}}};
  TensorMapCache cache(&countingEncoder);
  std::vector<TensorMap> maps = record.encodeTensorMaps(tensors, cache);
  EXPECT_EQ(maps.size(), size_t(2));
  EXPECT_EQ(maps[0].opaque[0], uint64_t(4064)); // rank 4, innermost dim 64
  EXPECT_EQ(maps[1].opaque[0], uint64_t(2008));
  record.encodeTensorMaps(tensors, cache); // the same call again: nothing encoded
  EXPECT_EQ(stubEncodes, 2);
  // The memref descriptors come first, unchanged by the descriptors after them.
  EXPECT_EQ(record.pack(tensors).values.size(), size_t(3 * 11 + 7));
  // A tensor TMA cannot describe is named by its argument.
  tensors[0].strides = {25600, 1, 400, 4}; // D not innermost
  std::string error;
  try {
    record.encodeTensorMaps(tensors, cache);
  } catch (const LaunchRecordError &e) {
    error = e.what();
  }
  EXPECT(contains(error, "argument 0 (tensor_maps[0])"));
  EXPECT(contains(error, "make it contiguous in the last dimension"));
  // An empty tensor gets a blank descriptor: no launch reads it.
  tensors[0] = {0x10000, {2, 4, 0, 64}, {0, 0, 64, 1}};
  maps = record.encodeTensorMaps(tensors, cache);
  EXPECT_EQ(maps[0].opaque[0], uint64_t(0));
}

TEST(launchRecordV2RejectsMalformedTensorMaps) {
  auto withMap = [](const std::string &map) {
    return errorOf(R"({"version": 2, "arguments": [4, 2], "workspaces": [], "tensor_maps": [)" +
                   map + R"(], "launches": [{"kernel": "k", "block": 1, "smem": 0,
                   "grid": [{"constant": 1}]}]})");
  };
  EXPECT(contains(withMap(R"({"argument": 2, "dtype": "f16", "box": [8, 8], "swizzle": 0})"),
                  "describes argument 2 of 2"));
  EXPECT(contains(withMap(R"({"argument": 1, "dtype": "f16", "box": [8], "swizzle": 0})"),
                  "box of 1 dims for argument 1 of rank 2"));
  EXPECT(contains(withMap(R"({"argument": 1, "dtype": "f16", "box": [8, 512], "swizzle": 0})"),
                  "box dim 512"));
  EXPECT(contains(withMap(R"({"argument": 1, "dtype": "f16", "box": [8, 8], "swizzle": 16})"),
                  "swizzle 16"));
  EXPECT(contains(withMap(R"({"argument": 1, "dtype": "f64", "box": [8, 8], "swizzle": 0})"),
                  "dtype 'f64'"));
  EXPECT(contains(withMap(R"({"argument": 1, "dtype": "f16", "box": [8, 8]})"),
                  "has no field 'swizzle'"));
  EXPECT(contains(withMap(R"({"argument": 1, "dtype": "f16", "box": [8, 8], "swizzle": 0,
                              "l2": 1})"), "unknown field 'l2'"));
  auto v2Grid = [](const std::string &grid) {
    return errorOf(R"({"version": 2, "arguments": [4], "workspaces": [], "tensor_maps": [],
      "launches": [{"kernel": "k", "block": 1, "smem": 0, "grid": [)" + grid + "]}]}");
  };
  EXPECT(contains(v2Grid(R"({"sm_count": 0})"), "1 to 64 blocks per SM"));
  EXPECT(contains(v2Grid(R"({"min": [{"sm_count": 1}]})"), "'min' must be a list of two"));
  EXPECT(contains(errorOf(R"({"version": 2, "arguments": [4], "tensor_maps": [],
    "workspaces": [{"dtype": "f32", "shape": [{"sm_count": 1}]}],
    "launches": [{"kernel": "k", "block": 1, "smem": 0, "grid": [{"constant": 1}]}]})"),
                  "reads the SM count, which only grids may"));
}
