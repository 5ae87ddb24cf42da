// The launch record's decoder (docs/LAUNCH_RECORD.md): a small JSON reader for the subset
// the facade writes (objects, arrays, strings, integers), then the record's checks.
#include "runtime/LaunchRecord.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

using namespace tessera::runtime;

namespace {

/// A JSON value of the subset records use.
struct Json {
  enum class Type { Object, Array, String, Integer };
  Type type = Type::Integer;
  int64_t integer = 0;
  std::string string;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;
};

const char *typeName(Json::Type type) {
  switch (type) {
  case Json::Type::Object:
    return "an object";
  case Json::Type::Array:
    return "a list";
  case Json::Type::String:
    return "a string";
  case Json::Type::Integer:
    return "an integer";
  }
  return "a value";
}

class Reader {
public:
  explicit Reader(const std::string &text) : text(text) {}

  Json document() {
    Json value = parseValue(0);
    skipSpace();
    if (pos != text.size())
      fail("text after the record");
    return value;
  }

private:
  // Records nest four deep; a bound keeps hostile input from exhausting the stack.
  static constexpr int kMaxDepth = 16;
  const std::string &text;
  size_t pos = 0;

  [[noreturn]] void fail(const std::string &what) const {
    throw LaunchRecordError("launch record is not valid JSON of the record's kind: " + what +
                            " at offset " + std::to_string(pos));
  }

  void skipSpace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\t' ||
                                 text[pos] == '\r'))
      ++pos;
  }

  bool consume(char c) {
    skipSpace();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c))
      fail(std::string("expected '") + c + "'");
  }

  Json parseValue(int depth) {
    if (depth > kMaxDepth)
      fail("nested deeper than " + std::to_string(kMaxDepth));
    skipSpace();
    if (pos == text.size())
      fail("unexpected end");
    char c = text[pos];
    Json value;
    if (c == '{') {
      ++pos;
      value.type = Json::Type::Object;
      if (consume('}'))
        return value;
      do {
        skipSpace();
        std::string key = parseString();
        expect(':');
        for (const auto &member : value.members)
          if (member.first == key)
            fail("field '" + key + "' given twice");
        value.members.emplace_back(std::move(key), parseValue(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      ++pos;
      value.type = Json::Type::Array;
      if (consume(']'))
        return value;
      do
        value.items.push_back(parseValue(depth + 1));
      while (consume(','));
      expect(']');
    } else if (c == '"') {
      value.type = Json::Type::String;
      value.string = parseString();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      value.type = Json::Type::Integer;
      value.integer = parseInteger();
    } else {
      // Named by its code, so the message stays text whatever the byte.
      fail("unexpected character code " + std::to_string(static_cast<unsigned char>(c)));
    }
    return value;
  }

  std::string parseString() {
    if (pos >= text.size() || text[pos] != '"')
      fail("expected a string");
    ++pos;
    std::string out;
    while (pos < text.size() && text[pos] != '"') {
      char c = text[pos++];
      // Names are identifiers: ASCII keeps every parsed record valid text for any caller.
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x80)
        fail("a control or non-ASCII character in a string");
      if (c == '\\') {
        if (pos >= text.size())
          break;
        char e = text[pos++];
        if (e == '"' || e == '\\' || e == '/')
          out += e;
        else
          fail("an escape other than \\\", \\\\ or \\/ in a string");
        continue;
      }
      out += c;
    }
    if (pos >= text.size())
      fail("an unterminated string");
    ++pos;
    return out;
  }

  int64_t parseInteger() {
    bool negative = text[pos] == '-';
    if (negative)
      ++pos;
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9')
      fail("expected digits");
    uint64_t magnitude = 0;
    const uint64_t limit = uint64_t(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0);
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      magnitude = magnitude * 10 + uint64_t(text[pos++] - '0');
      if (magnitude > limit)
        fail("an integer outside 64 bits");
    }
    if (pos < text.size() && (text[pos] == '.' || text[pos] == 'e' || text[pos] == 'E'))
      fail("a fraction (records hold integers only)");
    return negative ? int64_t(0 - magnitude) : int64_t(magnitude);
  }
};

/// Reads the fields of one JSON object, each exactly once; `done` refuses fields left over.
class Fields {
public:
  Fields(const Json &value, std::string where) : where(std::move(where)) {
    if (value.type != Json::Type::Object)
      fail(std::string("must be an object, got ") + typeName(value.type));
    object = &value;
  }

  [[noreturn]] void fail(const std::string &what) const {
    throw LaunchRecordError("launch record: " + where + " " + what);
  }

  const Json *find(const std::string &key) {
    for (const auto &member : object->members)
      if (member.first == key) {
        used.push_back(key);
        return &member.second;
      }
    return nullptr;
  }

  const Json &get(const std::string &key) {
    if (const Json *value = find(key))
      return *value;
    fail("has no field '" + key + "'");
  }

  const Json &get(const std::string &key, Json::Type type) {
    const Json &value = get(key);
    if (value.type != type)
      fail("field '" + key + "' must be " + typeName(type) + ", got " + typeName(value.type));
    return value;
  }

  void done() const {
    for (const auto &member : object->members)
      if (std::find(used.begin(), used.end(), member.first) == used.end())
        fail("has an unknown field '" + member.first + "'");
  }

  const std::string where;

private:
  const Json *object = nullptr;
  std::vector<std::string> used;
};

std::vector<int64_t> integers(Fields &fields, const std::string &key, size_t count) {
  const Json &list = fields.get(key, Json::Type::Array);
  std::vector<int64_t> out;
  for (const Json &item : list.items) {
    if (item.type != Json::Type::Integer)
      fields.fail("field '" + key + "' must hold integers");
    out.push_back(item.integer);
  }
  if (count && out.size() != count)
    fields.fail("field '" + key + "' must hold " + std::to_string(count) + " integers, got " +
                std::to_string(out.size()));
  return out;
}

/// What an extent may use: the ranks of the arguments it may read, the record's version
/// (SM counts and minimums came with version 2), and where a grid uses the SM count.
struct ExtentScope {
  const std::vector<int64_t> &ranks;
  int64_t version;
  bool *usesSmCount;
};

/// Parses an extent within `scope`.
Extent parseExtent(const Json &value, const std::string &where, const ExtentScope &scope) {
  Fields fields(value, where);
  Extent extent;
  const std::vector<int64_t> &ranks = scope.ranks;
  auto sinceVersion2 = [&](const char *key) {
    if (scope.version < 2)
      fields.fail("has '" + std::string(key) + "', which needs record version 2");
  };
  auto argumentDim = [&](const std::string &key, int64_t &arg, int64_t &dim) {
    std::vector<int64_t> pair = integers(fields, key, 2);
    arg = pair[0], dim = pair[1];
    if (arg < 0 || size_t(arg) >= ranks.size())
      fields.fail("reads argument " + std::to_string(arg) + " of " +
                  std::to_string(ranks.size()) + " it may read");
    if (dim < 0 || dim >= ranks[arg])
      fields.fail("reads dim " + std::to_string(dim) + " of argument " + std::to_string(arg) +
                  ", which has rank " + std::to_string(ranks[arg]));
  };
  for (const char *key : {"product", "min"}) {
    const Json *pair = fields.find(key);
    if (!pair)
      continue;
    bool isMin = key == std::string("min");
    if (isMin)
      sinceVersion2(key);
    extent.kind = isMin ? Extent::Kind::Min : Extent::Kind::Product;
    if (pair->type != Json::Type::Array || pair->items.size() != 2)
      fields.fail("field '" + std::string(key) + "' must be a list of two extents");
    for (size_t i = 0; i < 2; ++i)
      extent.factors.push_back(parseExtent(
          pair->items[i], where + "." + key + "[" + std::to_string(i) + "]", scope));
    fields.done();
    return extent;
  }
  if (fields.find("sm_count")) {
    sinceVersion2("sm_count");
    if (!scope.usesSmCount)
      fields.fail("reads the SM count, which only grids may");
    const Json &perSm = fields.get("sm_count", Json::Type::Integer);
    if (perSm.integer < 1 || perSm.integer > 64)
      fields.fail("has sm_count " + std::to_string(perSm.integer) +
                  "; 1 to 64 blocks per SM expected");
    extent.kind = Extent::Kind::SmCount;
    extent.value = perSm.integer;
    *scope.usesSmCount = true;
    fields.done();
    return extent;
  }
  if (fields.find("constant")) {
    const Json &constant = fields.get("constant", Json::Type::Integer);
    if (constant.integer < 0)
      fields.fail("has a negative constant " + std::to_string(constant.integer));
    extent.kind = Extent::Kind::Constant;
    extent.value = constant.integer;
  } else {
    extent.kind = Extent::Kind::Dim;
    argumentDim("dim", extent.arg, extent.dim);
  }
  bool ifEqual = fields.find("zero_if_equal"), unlessEqual = fields.find("zero_unless_equal");
  if (ifEqual || unlessEqual) {
    if (extent.kind != Extent::Kind::Dim || (ifEqual && unlessEqual))
      fields.fail("compares a dim with one other dim: 'dim' and one of 'zero_if_equal', "
                  "'zero_unless_equal'");
    extent.kind = ifEqual ? Extent::Kind::ZeroIfEqual : Extent::Kind::ZeroUnlessEqual;
    argumentDim(ifEqual ? "zero_if_equal" : "zero_unless_equal", extent.otherArg,
                extent.otherDim);
  } else if (fields.find("divide")) {
    extent.divisors = integers(fields, "divide", 0);
    if (std::count(extent.divisors.begin(), extent.divisors.end(), 0))
      fields.fail("divides by 0");
  }
  fields.done();
  return extent;
}

/// The version-2 field 'tensor_maps': TMA descriptors of tensors among `ranks` (the
/// caller's arguments, then the workspaces).
std::vector<TensorMapParameter> parseTensorMaps(Fields &top, const std::vector<int64_t> &ranks) {
  std::vector<TensorMapParameter> maps;
  if (!top.find("tensor_maps")) // optional: a module without descriptors leaves it out
    return maps;
  const Json &list = top.get("tensor_maps", Json::Type::Array);
  for (size_t i = 0; i < list.items.size(); ++i) {
    Fields fields(list.items[i], "tensor_maps[" + std::to_string(i) + "]");
    TensorMapParameter map;
    map.argument = fields.get("argument", Json::Type::Integer).integer;
    if (map.argument < 0 || size_t(map.argument) >= ranks.size())
      fields.fail("describes argument " + std::to_string(map.argument) + " of " +
                  std::to_string(ranks.size()) + " (arguments, then workspaces)");
    map.dtype = fields.get("dtype", Json::Type::String).string;
    try {
      tensorMapElementBytes(map.dtype);
    } catch (const TensorMapError &) {
      fields.fail("has dtype '" + map.dtype + "'; one of i32, f32, bf16, f16 expected");
    }
    map.box = integers(fields, "box", 0);
    int64_t rank = ranks[map.argument];
    if (rank < 1 || rank > 5 || map.box.size() != size_t(rank))
      fields.fail("has a box of " + std::to_string(map.box.size()) + " dims for argument " +
                  std::to_string(map.argument) + " of rank " + std::to_string(rank) +
                  " (TMA: rank 1 to 5, one box dim per dim)");
    for (int64_t b : map.box)
      if (b < 1 || b > 256)
        fields.fail("has box dim " + std::to_string(b) + "; TMA copies 1 to 256 per dim");
    map.swizzle = fields.get("swizzle", Json::Type::Integer).integer;
    if (map.swizzle != 0 && map.swizzle != 32 && map.swizzle != 64 && map.swizzle != 128)
      fields.fail("has swizzle " + std::to_string(map.swizzle) + "; 0, 32, 64 or 128 expected");
    fields.done();
    maps.push_back(std::move(map));
  }
  return maps;
}

int64_t nonNegative(Fields &fields, const std::string &key) {
  int64_t value = fields.get(key, Json::Type::Integer).integer;
  if (value < 0)
    fields.fail("field '" + key + "' must not be negative, got " + std::to_string(value));
  return value;
}

} // namespace

LaunchRecord LaunchRecord::parse(const std::string &json) {
  Json document = Reader(json).document();
  Fields top(document, "record");
  LaunchRecord record;
  record.text_ = json;
  const Json *version = top.find("version");
  if (!version)
    throw LaunchRecordError("launch record has no version (written before version " +
                            std::to_string(kLaunchRecordVersion) + "); recompile the kernel");
  if (version->type != Json::Type::Integer || version->integer < kOldestLaunchRecordVersion ||
      version->integer > kLaunchRecordVersion)
    throw LaunchRecordError(
        "launch record version " +
        (version->type == Json::Type::Integer ? std::to_string(version->integer) : "(not an integer)") +
        " is not read by this runtime, which reads versions " +
        std::to_string(kOldestLaunchRecordVersion) + " to " +
        std::to_string(kLaunchRecordVersion));
  record.version_ = version->integer;
  record.argumentRanks_ = integers(top, "arguments", 0);
  for (int64_t rank : record.argumentRanks_)
    if (rank < 0 || rank > 8)
      top.fail("field 'arguments' holds a rank outside [0, 8]: " + std::to_string(rank));
  // A workspace's shape may read the caller's arguments and the workspaces before it; a
  // grid reads them all.
  std::vector<int64_t> ranks = record.argumentRanks_;
  const Json &workspaces = top.get("workspaces", Json::Type::Array);
  for (size_t i = 0; i < workspaces.items.size(); ++i) {
    Fields fields(workspaces.items[i], "workspaces[" + std::to_string(i) + "]");
    Workspace workspace;
    workspace.dtype = fields.get("dtype", Json::Type::String).string;
    static const char *const dtypes[] = {"i32", "f32", "bf16", "f16"};
    if (std::find(std::begin(dtypes), std::end(dtypes), workspace.dtype) == std::end(dtypes))
      fields.fail("has dtype '" + workspace.dtype + "'; one of i32, f32, bf16, f16 expected");
    const Json &shape = fields.get("shape", Json::Type::Array);
    for (size_t d = 0; d < shape.items.size(); ++d)
      workspace.shape.push_back(
          parseExtent(shape.items[d], fields.where + ".shape[" + std::to_string(d) + "]",
                      {ranks, record.version_, nullptr}));
    fields.done();
    ranks.push_back(int64_t(workspace.shape.size()));
    record.workspaces_.push_back(std::move(workspace));
  }
  const Json &launches = top.get("launches", Json::Type::Array);
  if (launches.items.empty())
    top.fail("has no launches");
  for (size_t i = 0; i < launches.items.size(); ++i) {
    Fields fields(launches.items[i], "launches[" + std::to_string(i) + "]");
    Launch launch;
    launch.kernel = fields.get("kernel", Json::Type::String).string;
    if (launch.kernel.empty())
      fields.fail("has an empty kernel name");
    launch.block = nonNegative(fields, "block");
    if (launch.block < 1 || launch.block > 1024)
      fields.fail("has block " + std::to_string(launch.block) + "; a block holds 1 to 1024 threads");
    launch.sharedBytes = nonNegative(fields, "smem");
    const Json &grid = fields.get("grid", Json::Type::Array);
    if (grid.items.empty() || grid.items.size() > 3)
      fields.fail("has a grid of " + std::to_string(grid.items.size()) + " dims; 1 to 3 expected");
    for (size_t d = 0; d < grid.items.size(); ++d)
      launch.grid.push_back(
          parseExtent(grid.items[d], fields.where + ".grid[" + std::to_string(d) + "]",
                      {ranks, record.version_, &record.usesSmCount_}));
    fields.done();
    record.launches_.push_back(std::move(launch));
  }
  if (record.version_ >= 2)
    record.tensorMaps_ = parseTensorMaps(top, ranks);
  top.done();
  return record;
}

void LaunchRecord::checkArgumentRanks(const std::vector<size_t> &ranks) const {
  if (ranks.size() != argumentRanks_.size())
    throw LaunchRecordError("the kernels take " + std::to_string(argumentRanks_.size()) +
                            " arguments, got " + std::to_string(ranks.size()));
  for (size_t i = 0; i < ranks.size(); ++i)
    if (ranks[i] != size_t(argumentRanks_[i]))
      throw LaunchRecordError("argument " + std::to_string(i) + " must have rank " +
                              std::to_string(argumentRanks_[i]) + ", got rank " +
                              std::to_string(ranks[i]));
}

namespace {
struct Int64Ops {
  int64_t sms;
  int64_t smCount() const { return sms; }
  int64_t min(int64_t a, int64_t b) const { return std::min(a, b); }
  int64_t constant(int64_t c) const { return c; }
  int64_t ceilDiv(int64_t x, int64_t q) const { return x >= 0 ? (x + q - 1) / q : -(-x / q); }
  int64_t floorDiv(int64_t x, int64_t q) const { return x >= 0 ? x / q : -((-x + q - 1) / q); }
  int64_t mul(int64_t a, int64_t b) const { return a * b; }
  bool equal(int64_t a, int64_t b) const { return a == b; }
};
} // namespace

void LaunchRecord::checkSmCount(int64_t smCount) const {
  if (usesSmCount_ && smCount < 1)
    throw LaunchRecordError("launch record: a grid is a number of SMs (a persistent kernel); "
                            "planning it needs the device's SM count, got " +
                            std::to_string(smCount));
}

LaunchPlan LaunchRecord::plan(const std::vector<std::vector<int64_t>> &argumentShapes,
                              int64_t smCount) const {
  checkSmCount(smCount);
  std::vector<size_t> ranks;
  for (const auto &shape : argumentShapes)
    ranks.push_back(shape.size());
  checkArgumentRanks(ranks);
  for (size_t i = 0; i < argumentShapes.size(); ++i)
    for (int64_t size : argumentShapes[i])
      if (size < 0)
        throw LaunchRecordError("argument " + std::to_string(i) + " has a negative size");
  // Workspaces follow the caller's arguments: a later shape may read an earlier one.
  std::vector<std::vector<int64_t>> shapes = argumentShapes;
  auto sizeOf = [&](int64_t arg, int64_t dim) { return shapes[arg][dim]; };
  Int64Ops ops{smCount};
  LaunchPlan plan;
  for (const Workspace &workspace : workspaces_) {
    std::vector<int64_t> shape;
    for (const Extent &extent : workspace.shape)
      shape.push_back(evaluateExtent<int64_t>(extent, sizeOf, ops));
    shapes.push_back(shape);
    plan.workspaceShapes.push_back(std::move(shape));
  }
  for (const Launch &launch : launches_) {
    std::array<int64_t, 3> grid = {1, 1, 1};
    for (size_t d = 0; d < launch.grid.size(); ++d)
      grid[d] = evaluateExtent<int64_t>(launch.grid[d], sizeOf, ops);
    plan.grids.push_back(grid);
  }
  return plan;
}

void LaunchRecord::checkTensors(const std::vector<TensorLayout> &tensors) const {
  size_t expected = argumentRanks_.size() + workspaces_.size();
  if (tensors.size() != expected)
    throw LaunchRecordError("the kernels take " + std::to_string(argumentRanks_.size()) +
                            " arguments and " + std::to_string(workspaces_.size()) +
                            " workspaces, got " + std::to_string(tensors.size()) + " tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorLayout &t = tensors[i];
    size_t rank = i < argumentRanks_.size() ? size_t(argumentRanks_[i])
                                            : workspaces_[i - argumentRanks_.size()].shape.size();
    if (t.sizes.size() != rank || t.strides.size() != rank)
      throw LaunchRecordError("tensor " + std::to_string(i) + " must have rank " +
                              std::to_string(rank) + " (sizes and strides), got " +
                              std::to_string(t.sizes.size()) + " sizes and " +
                              std::to_string(t.strides.size()) + " strides");
  }
}

PackedParameters LaunchRecord::pack(const std::vector<TensorLayout> &tensors) const {
  checkTensors(tensors);
  PackedParameters packed;
  for (const TensorLayout &t : tensors) {
    packed.pointerSlots.push_back(packed.values.size());
    packed.values.push_back(int64_t(t.data)); // allocated
    packed.values.push_back(int64_t(t.data)); // aligned
    packed.values.push_back(0);               // offset: the pointer is the view's start
    packed.values.insert(packed.values.end(), t.sizes.begin(), t.sizes.end());
    packed.values.insert(packed.values.end(), t.strides.begin(), t.strides.end());
  }
  return packed;
}

std::vector<TensorMap> LaunchRecord::encodeTensorMaps(const std::vector<TensorLayout> &tensors,
                                                      TensorMapCache &cache) const {
  checkTensors(tensors);
  // Every request is checked before any reaches the driver, so a call refused for one
  // argument encodes (and caches) nothing.
  std::vector<std::optional<TensorMapRequest>> requests;
  for (size_t i = 0; i < tensorMaps_.size(); ++i) {
    const TensorMapParameter &p = tensorMaps_[i];
    const TensorLayout &t = tensors[p.argument];
    if (std::count(t.sizes.begin(), t.sizes.end(), 0)) {
      requests.emplace_back(); // an empty tensor: nothing to copy, no grid reads it
      continue;
    }
    TensorMapRequest request;
    request.address = t.data;
    request.dtype = p.dtype;
    request.sizes = t.sizes;
    int64_t elementBytes = tensorMapElementBytes(p.dtype);
    for (int64_t stride : t.strides)
      request.strideBytes.push_back(stride * elementBytes);
    request.box = p.box;
    request.swizzleBytes = p.swizzle;
    try {
      tiledEncoding(request);
    } catch (const TensorMapError &e) {
      throw LaunchRecordError("argument " + std::to_string(p.argument) + " (tensor_maps[" +
                              std::to_string(i) + "]): " + e.what());
    }
    requests.push_back(std::move(request));
  }
  std::vector<TensorMap> maps(requests.size());
  for (size_t i = 0; i < requests.size(); ++i)
    if (requests[i])
      maps[i] = cache.get(*requests[i]);
  return maps;
}
