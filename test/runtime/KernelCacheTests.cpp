// The on-disk kernel cache: keys, round trips, damage detection, concurrent writers.
#include "TestHarness.h"
#include "runtime/KernelCache.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace tessera::runtime;
namespace fs = std::filesystem;

namespace {

// A fresh directory under $TMPDIR (or /tmp), removed when the test ends.
struct TempDir {
  fs::path path;
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/tessera-rt-test-XXXXXX";
    if (!::mkdtemp(pattern.data()))
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Blobs that describe themselves ("w<writer> i<iteration> n<length>\n" then a pattern), so a
// reader can tell a complete blob from a torn or mixed one without knowing who wrote it.
std::string makeBlob(int writer, int iteration) {
  size_t length = 1000 + (static_cast<size_t>(writer) * 7919 + iteration * 104729) % 300000;
  std::string blob = "w" + std::to_string(writer) + " i" + std::to_string(iteration) + " n" +
                     std::to_string(length) + "\n";
  for (size_t j = 0; j < length; ++j)
    blob += static_cast<char>((writer * 31 + iteration + j) & 0xff);
  return blob;
}

bool isCompleteBlob(const std::string &blob, int *writerOut = nullptr,
                    int *iterationOut = nullptr) {
  int writer = -1, iteration = -1;
  size_t length = 0;
  if (std::sscanf(blob.c_str(), "w%d i%d n%zu\n", &writer, &iteration, &length) != 3)
    return false;
  if (writerOut)
    *writerOut = writer;
  if (iterationOut)
    *iterationOut = iteration;
  return blob == makeBlob(writer, iteration);
}

const std::string kKey =
    KernelCache::makeKey("attn.attention causal", "block_m=128", "sm_90a", "tessera 0.1");

} // namespace

TEST(fnv1aMatchesPublishedVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(hash128IsTwoDifferentHalves) {
  std::string hash = stableHash128Hex("tessera");
  EXPECT_EQ(hash.size(), size_t{32});
  EXPECT(hash.find_first_not_of("0123456789abcdef") == std::string::npos);
  EXPECT(hash.substr(0, 16) != hash.substr(16));
  EXPECT_EQ(stableHash128Hex("tessera"), hash);
}

TEST(keyDependsOnEveryFieldAndOnTheirBoundaries) {
  std::string base = KernelCache::makeKey("spec", "tune", "sm_90a", "v1");
  EXPECT_EQ(KernelCache::makeKey("spec", "tune", "sm_90a", "v1"), base);
  EXPECT(KernelCache::makeKey("spec2", "tune", "sm_90a", "v1") != base);
  EXPECT(KernelCache::makeKey("spec", "tune2", "sm_90a", "v1") != base);
  EXPECT(KernelCache::makeKey("spec", "tune", "sm_80", "v1") != base);
  EXPECT(KernelCache::makeKey("spec", "tune", "sm_90a", "v2") != base);
  EXPECT(KernelCache::makeKey("ab", "c", "", "") != KernelCache::makeKey("a", "bc", "", ""));
  // Pinned: a change here silently orphans every user's cache, so it must be deliberate.
  EXPECT_EQ(base, std::string("f15be7fcfaffd78ec4dec37f8b92f2d3"));
}

TEST(putThenGetRoundTrips) {
  TempDir dir;
  KernelCache cache(dir.path.string());
  EXPECT(!cache.get(kKey));
  std::string ptx = "//\n.version 8.0\n.target sm_90a\n";
  cache.put(kKey, ptx);
  EXPECT_EQ(cache.get(kKey).value_or("<miss>"), ptx);

  std::string binary("\0\x7f"
                     "ELF\n\n\0\xff",
                     10);
  cache.put("binary-entry", binary);
  EXPECT_EQ(cache.get("binary-entry").value_or("<miss>"), binary);

  cache.put("empty-entry", "");
  EXPECT(cache.get("empty-entry").has_value());
  EXPECT_EQ(cache.get("empty-entry")->size(), size_t{0});

  std::string large(5 << 20, 'x');
  cache.put(kKey, large); // overwrite
  EXPECT(cache.get(kKey) == large);

  EXPECT(cache.remove(kKey));
  EXPECT(!cache.remove(kKey));
  EXPECT(!cache.get(kKey));
}

TEST(putCreatesTheDirectoryAndGetDoesNot) {
  TempDir dir;
  fs::path nested = dir.path / "a" / "b" / "c";
  KernelCache cache(nested.string());
  EXPECT(!cache.get(kKey));
  EXPECT(!fs::exists(nested));
  cache.put(kKey, "blob");
  EXPECT(fs::is_directory(nested));
  EXPECT_EQ(cache.get(kKey).value_or("<miss>"), std::string("blob"));
}

TEST(putReportsAnUnwritableDirectory) {
  TempDir dir;
  writeFile((dir.path / "file").string(), "not a directory");
  // A directory below a regular file cannot be created, even by root.
  KernelCache cache((dir.path / "file" / "cache").string());
  EXPECT_THROWS(cache.put(kKey, "blob"), KernelCacheError);
  EXPECT(!cache.get(kKey));
}

TEST(damagedEntriesMissAndAreRemoved) {
  TempDir dir;
  KernelCache cache(dir.path.string());
  const std::string blob = "payload that will be damaged in several ways";
  std::string path = cache.entryPath(kKey);
  auto damage = [&](const char *how, auto edit) {
    cache.put(kKey, blob);
    std::string bytes = readFile(path);
    edit(bytes);
    writeFile(path, bytes);
    if (cache.get(kKey))
      throw test::Failure(std::string("damaged entry was returned: ") + how);
    if (fs::exists(path))
      throw test::Failure(std::string("damaged entry was not removed: ") + how);
  };
  damage("last byte flipped", [](std::string &b) { b.back() ^= 0x01; });
  damage("header byte flipped", [](std::string &b) { b[3] ^= 0x20; });
  damage("truncated payload", [](std::string &b) { b.resize(b.size() - 5); });
  damage("truncated header", [](std::string &b) { b.resize(10); });
  damage("empty file", [](std::string &b) { b.clear(); });
  damage("bytes appended", [](std::string &b) { b += "tail"; });
  damage("length edited", [&](std::string &b) {
    size_t at = b.find(std::to_string(blob.size()));
    b.replace(at, 2, "99");
  });
  cache.put(kKey, blob); // and the key is usable again
  EXPECT_EQ(cache.get(kKey).value_or("<miss>"), blob);
}

TEST(unsafeKeysAreRejected) {
  TempDir dir;
  KernelCache cache(dir.path.string());
  for (const char *key : {"", "../escape", "a/b", ".hidden", "spa ce", "semi;colon"})
    EXPECT_THROWS(cache.put(key, "x"), std::invalid_argument);
  EXPECT_THROWS(cache.get(std::string(200, 'k')), std::invalid_argument);
  cache.put("sm_90a-v1.0_ok", "x"); // the allowed alphabet
}

TEST(defaultDirectoryFollowsTheEnvironment) {
  auto saved = [](const char *name) {
    const char *value = std::getenv(name);
    return value ? std::optional<std::string>(value) : std::nullopt;
  };
  auto restore = [](const char *name, const std::optional<std::string> &value) {
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  };
  auto tessera = saved("TESSERA_CACHE_DIR"), xdg = saved("XDG_CACHE_HOME"), home = saved("HOME");
  ::setenv("TESSERA_CACHE_DIR", "/tmp/explicit", 1);
  ::setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
  ::setenv("HOME", "/tmp/home", 1);
  std::string explicitDir = KernelCache::defaultDirectory();
  ::unsetenv("TESSERA_CACHE_DIR");
  std::string xdgDir = KernelCache::defaultDirectory();
  ::setenv("XDG_CACHE_HOME", "relative/ignored", 1);
  std::string homeDir = KernelCache::defaultDirectory();
  restore("TESSERA_CACHE_DIR", tessera);
  restore("XDG_CACHE_HOME", xdg);
  restore("HOME", home);
  EXPECT_EQ(explicitDir, std::string("/tmp/explicit"));
  EXPECT_EQ(xdgDir, std::string("/tmp/xdg/tessera"));
  EXPECT_EQ(homeDir, std::string("/tmp/home/.cache/tessera"));
}

// Writers race on one shared key (and each on a key of its own) while readers poll the shared
// key. Readers must only ever see complete blobs, and afterwards every key holds one.
TEST(concurrentWritersAndReadersSeeOnlyWholeEntries) {
  TempDir dir;
  KernelCache cache(dir.path.string());
  constexpr int kWriters = 8, kReaders = 3, kIterations = 25;
  std::vector<pid_t> children;
  for (int child = 0; child < kWriters + kReaders; ++child) {
    pid_t pid = ::fork();
    EXPECT(pid >= 0);
    if (pid != 0) {
      children.push_back(pid);
      continue;
    }
    int status = 0;
    try {
      bool writer = child < kWriters;
      for (int i = 0; i < (writer ? kIterations : 8 * kIterations); ++i) {
        if (writer) {
          cache.put("shared", makeBlob(child, i));
          cache.put("own-" + std::to_string(child), makeBlob(child, i));
        }
        if (auto seen = cache.get("shared"); seen && !isCompleteBlob(*seen))
          status = 1;
      }
    } catch (...) {
      status = 2;
    }
    ::_exit(status); // not exit(): the child must not run the parent's atexit handlers
  }
  for (pid_t pid : children) {
    int status = -1;
    EXPECT(::waitpid(pid, &status, 0) == pid);
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  int writer = -1, iteration = -1;
  auto shared = cache.get("shared");
  EXPECT(shared && isCompleteBlob(*shared, &writer, &iteration));
  EXPECT_EQ(iteration, kIterations - 1); // whichever rename came last was someone's last put
  for (int child = 0; child < kWriters; ++child)
    EXPECT(cache.get("own-" + std::to_string(child)) == makeBlob(child, kIterations - 1));
  // No temp file survived: every name in the directory is a final entry.
  for (const fs::directory_entry &entry : fs::directory_iterator(dir.path))
    EXPECT(entry.path().filename().string()[0] != '.');
}
