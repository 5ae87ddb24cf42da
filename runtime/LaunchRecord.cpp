// The launch record's decoder (docs/LAUNCH_RECORD.md): a small JSON reader for the subset
// the facade writes (objects, arrays, strings, integers), then the record's checks.
#include "runtime/LaunchRecord.h"

#include <algorithm>
#include <limits>
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

/// Parses an extent; `ranks` are those of the arguments it may read.
Extent parseExtent(const Json &value, const std::string &where,
                   const std::vector<int64_t> &ranks) {
  Fields fields(value, where);
  Extent extent;
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
  if (const Json *product = fields.find("product")) {
    extent.kind = Extent::Kind::Product;
    if (product->type != Json::Type::Array || product->items.size() != 2)
      fields.fail("field 'product' must be a list of two extents");
    for (size_t i = 0; i < 2; ++i)
      extent.factors.push_back(
          parseExtent(product->items[i], where + ".product[" + std::to_string(i) + "]", ranks));
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
  if (version->type != Json::Type::Integer || version->integer != kLaunchRecordVersion)
    throw LaunchRecordError(
        "launch record version " +
        (version->type == Json::Type::Integer ? std::to_string(version->integer) : "(not an integer)") +
        " is not read by this runtime, which reads version " +
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
          parseExtent(shape.items[d], fields.where + ".shape[" + std::to_string(d) + "]", ranks));
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
          parseExtent(grid.items[d], fields.where + ".grid[" + std::to_string(d) + "]", ranks));
    fields.done();
    record.launches_.push_back(std::move(launch));
  }
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
  int64_t constant(int64_t c) const { return c; }
  int64_t ceilDiv(int64_t x, int64_t q) const { return x >= 0 ? (x + q - 1) / q : -(-x / q); }
  int64_t floorDiv(int64_t x, int64_t q) const { return x >= 0 ? x / q : -((-x + q - 1) / q); }
  int64_t mul(int64_t a, int64_t b) const { return a * b; }
  bool equal(int64_t a, int64_t b) const { return a == b; }
};
} // namespace

LaunchPlan LaunchRecord::plan(const std::vector<std::vector<int64_t>> &argumentShapes) const {
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
  LaunchPlan plan;
  for (const Workspace &workspace : workspaces_) {
    std::vector<int64_t> shape;
    for (const Extent &extent : workspace.shape)
      shape.push_back(evaluateExtent<int64_t>(extent, sizeOf, Int64Ops()));
    shapes.push_back(shape);
    plan.workspaceShapes.push_back(std::move(shape));
  }
  for (const Launch &launch : launches_) {
    std::array<int64_t, 3> grid = {1, 1, 1};
    for (size_t d = 0; d < launch.grid.size(); ++d)
      grid[d] = evaluateExtent<int64_t>(launch.grid[d], sizeOf, Int64Ops());
    plan.grids.push_back(grid);
  }
  return plan;
}

PackedParameters LaunchRecord::pack(const std::vector<TensorLayout> &tensors) const {
  size_t expected = argumentRanks_.size() + workspaces_.size();
  if (tensors.size() != expected)
    throw LaunchRecordError("the kernels take " + std::to_string(argumentRanks_.size()) +
                            " arguments and " + std::to_string(workspaces_.size()) +
                            " workspaces, got " + std::to_string(tensors.size()) + " tensors");
  PackedParameters packed;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorLayout &t = tensors[i];
    size_t rank = i < argumentRanks_.size() ? size_t(argumentRanks_[i])
                                            : workspaces_[i - argumentRanks_.size()].shape.size();
    if (t.sizes.size() != rank || t.strides.size() != rank)
      throw LaunchRecordError("tensor " + std::to_string(i) + " must have rank " +
                              std::to_string(rank) + " (sizes and strides), got " +
                              std::to_string(t.sizes.size()) + " sizes and " +
                              std::to_string(t.strides.size()) + " strides");
    packed.pointerSlots.push_back(packed.values.size());
    packed.values.push_back(int64_t(t.data)); // allocated
    packed.values.push_back(int64_t(t.data)); // aligned
    packed.values.push_back(0);               // offset: the pointer is the view's start
    packed.values.insert(packed.values.end(), t.sizes.begin(), t.sizes.end());
    packed.values.insert(packed.values.end(), t.strides.begin(), t.strides.end());
  }
  return packed;
}
