// A minimal test harness, so that the runtime's tests build anywhere the runtime does (the GPU
// machine has no GoogleTest). TEST(name) registers a function; EXPECT* throw on failure.
#ifndef TESSERA_TEST_RUNTIME_TESTHARNESS_H
#define TESSERA_TEST_RUNTIME_TESTHARNESS_H

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tessera::runtime::test {

struct TestCase {
  const char *name;
  void (*run)();
};

inline std::vector<TestCase> &registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct Registrar {
  Registrar(const char *name, void (*run)()) { registry().push_back({name, run}); }
};

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A test that cannot run here (e.g. a missing optional file) and says why.
struct Skip : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Whether `text` (an error message) holds `part`.
inline bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

inline std::string where(const char *file, int line) {
  return std::string(file) + ":" + std::to_string(line) + ": ";
}

} // namespace tessera::runtime::test

#define TEST(name)                                                                                 \
  static void name();                                                                              \
  static ::tessera::runtime::test::Registrar name##Registrar(#name, name);                         \
  static void name()

#define EXPECT(condition)                                                                          \
  do {                                                                                             \
    if (!(condition))                                                                              \
      throw ::tessera::runtime::test::Failure(                                                     \
          ::tessera::runtime::test::where(__FILE__, __LINE__) + "expected " #condition);           \
  } while (0)

#define EXPECT_EQ(actual, expected)                                                                \
  do {                                                                                             \
    const auto &actualValue = (actual);                                                            \
    const auto &expectedValue = (expected);                                                        \
    if (!(actualValue == expectedValue)) {                                                         \
      std::ostringstream message;                                                                  \
      message << ::tessera::runtime::test::where(__FILE__, __LINE__) << #actual " == " #expected   \
              << "\n    actual:   " << actualValue << "\n    expected: " << expectedValue;         \
      throw ::tessera::runtime::test::Failure(message.str());                                      \
    }                                                                                              \
  } while (0)

#define EXPECT_THROWS(statement, ExceptionType)                                                    \
  do {                                                                                             \
    bool thrown = false;                                                                           \
    try {                                                                                          \
      statement;                                                                                   \
    } catch (const ExceptionType &) {                                                              \
      thrown = true;                                                                               \
    }                                                                                              \
    if (!thrown)                                                                                   \
      throw ::tessera::runtime::test::Failure(                                                     \
          ::tessera::runtime::test::where(__FILE__, __LINE__) + #statement                         \
          " did not throw " #ExceptionType);                                                       \
  } while (0)

#endif // TESSERA_TEST_RUNTIME_TESTHARNESS_H
