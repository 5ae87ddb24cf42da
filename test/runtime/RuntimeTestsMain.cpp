// Runs every registered runtime test (or those whose name contains argv[1]).
#include "TestHarness.h"

#include <cstdio>
#include <cstring>
#include <exception>

int main(int argc, char **argv) {
  using namespace tessera::runtime::test;
  const char *filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0, skipped = 0;
  for (const TestCase &test : registry()) {
    if (filter && !std::strstr(test.name, filter))
      continue;
    try {
      test.run();
      std::printf("[ PASS ] %s\n", test.name);
      ++passed;
    } catch (const Skip &skip) {
      std::printf("[ SKIP ] %s: %s\n", test.name, skip.what());
      ++skipped;
    } catch (const std::exception &error) {
      std::printf("[ FAIL ] %s: %s\n", test.name, error.what());
      ++failed;
    }
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 && passed > 0 ? 0 : 1;
}
