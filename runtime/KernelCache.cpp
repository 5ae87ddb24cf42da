#include "runtime/KernelCache.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <system_error>

namespace tessera::runtime {

namespace {

// First line of every entry; bump the version when the layout changes so old entries miss.
constexpr std::string_view kMagic = "tessera-kernel-cache v1\n";
constexpr size_t kMaxKeyLength = 128; // leaves room for the temp suffix within NAME_MAX (255)

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// Keys become file names: allow only characters that are safe everywhere, and no leading dot
// (temp files start with one, so they can never be mistaken for entries; no "..").
void validateKey(const std::string &key) {
  bool ok = !key.empty() && key.size() <= kMaxKeyLength && key[0] != '.';
  for (char c : key)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  if (!ok)
    throw std::invalid_argument("kernel cache key '" + key +
                                "' is not a file name of [A-Za-z0-9_.-] (no leading '.')");
}

std::string ioError(const std::string &what, const std::string &path, int error) {
  return "kernel cache: " + what + " " + path + ": " + std::strerror(error);
}

bool writeAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return false;
    data += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

// A temp-file suffix unique across threads (counter), processes (pid) and hosts sharing the
// directory over NFS (random bits).
std::string uniqueSuffix() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t randomBits = [] {
    uint64_t bits =
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    try {
      std::random_device device;
      bits ^= (static_cast<uint64_t>(device()) << 32) ^ device();
    } catch (...) { // some platforms have no entropy source; the clock alone will do
    }
    return bits;
  }();
  return std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)) + "." +
         hex64(randomBits);
}

// Parses an entry file; nullopt if it is not a whole, intact entry.
std::optional<std::string> parseEntry(const std::string &file) {
  if (file.compare(0, kMagic.size(), kMagic) != 0)
    return std::nullopt;
  size_t lengthEnd = file.find('\n', kMagic.size());
  if (lengthEnd == std::string::npos)
    return std::nullopt;
  size_t checksumEnd = file.find('\n', lengthEnd + 1);
  if (checksumEnd == std::string::npos)
    return std::nullopt;
  std::string lengthText = file.substr(kMagic.size(), lengthEnd - kMagic.size());
  std::string checksumText = file.substr(lengthEnd + 1, checksumEnd - lengthEnd - 1);
  size_t payloadStart = checksumEnd + 1;
  if (lengthText.empty() || lengthText.find_first_not_of("0123456789") != std::string::npos ||
      lengthText != std::to_string(file.size() - payloadStart))
    return std::nullopt;
  std::string payload = file.substr(payloadStart);
  if (checksumText != hex64(fnv1a64(payload)))
    return std::nullopt;
  return payload;
}

} // namespace

uint64_t fnv1a64(std::string_view data, uint64_t seed) {
  uint64_t hash = seed;
  for (unsigned char byte : data) {
    hash ^= byte;
    hash *= 0x100000001b3ULL; // the 64-bit FNV prime
  }
  return hash;
}

std::string stableHash128Hex(std::string_view data) {
  // The second seed is the standard basis xor the golden-ratio constant: any other basis makes
  // the two halves collide on different inputs.
  return hex64(fnv1a64(data)) + hex64(fnv1a64(data, 0xcbf29ce484222325ULL ^ 0x9e3779b97f4a7c15ULL));
}

std::string KernelCache::defaultDirectory() {
  if (const char *dir = std::getenv("TESSERA_CACHE_DIR"); dir && *dir)
    return dir;
  // The XDG spec says to ignore relative values.
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/')
    return std::string(xdg) + "/tessera";
  if (const char *home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/tessera";
  if (const passwd *entry = ::getpwuid(::getuid()); entry && entry->pw_dir && *entry->pw_dir)
    return std::string(entry->pw_dir) + "/.cache/tessera";
  return "/tmp/tessera-cache-" + std::to_string(::getuid());
}

std::string KernelCache::makeKey(std::string_view specText, std::string_view tuningText,
                                 std::string_view arch, std::string_view compilerVersion) {
  std::string text = "tessera-kernel-key v1\n";
  for (std::string_view field : {specText, tuningText, arch, compilerVersion}) {
    text += std::to_string(field.size());
    text += ':';
    text += field;
    text += '\n';
  }
  return stableHash128Hex(text);
}

KernelCache::KernelCache(std::string directory) : directory_(std::move(directory)) {
  if (directory_.empty())
    throw std::invalid_argument("kernel cache: empty directory name");
}

std::string KernelCache::entryPath(const std::string &key) const {
  validateKey(key);
  return directory_ + "/" + key + ".kernel";
}

std::optional<std::string> KernelCache::get(const std::string &key) const {
  std::string path = entryPath(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  struct stat opened {};
  std::string file;
  bool readOk = ::fstat(fd, &opened) == 0;
  char buffer[1 << 16];
  while (readOk) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      readOk = got == 0;
      break;
    }
    file.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  if (!readOk)
    return std::nullopt;
  if (std::optional<std::string> payload = parseEntry(file))
    return payload;
  // Damaged: delete it, but only if the name still points at the file we read; a writer may
  // have renamed a good entry over it meanwhile, and that one must stay.
  struct stat now {};
  if (::stat(path.c_str(), &now) == 0 && now.st_dev == opened.st_dev && now.st_ino == opened.st_ino)
    ::unlink(path.c_str());
  return std::nullopt;
}

void KernelCache::put(const std::string &key, std::string_view blob) const {
  std::string path = entryPath(key);
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error)
    throw KernelCacheError("kernel cache: cannot create directory " + directory_ + ": " +
                           error.message());

  std::string header(kMagic);
  header += std::to_string(blob.size()) + "\n" + hex64(fnv1a64(blob)) + "\n";
  std::string temp = directory_ + "/." + key + ".tmp." + uniqueSuffix();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw KernelCacheError(ioError("cannot create", temp, errno));
  // fsync before rename: otherwise a crash can leave the new name pointing at empty blocks.
  bool written = writeAll(fd, header.data(), header.size()) &&
                 writeAll(fd, blob.data(), blob.size()) && ::fsync(fd) == 0;
  int writeErrno = errno;
  if (::close(fd) != 0 && written) {
    written = false;
    writeErrno = errno;
  }
  if (!written) {
    ::unlink(temp.c_str());
    throw KernelCacheError(ioError("cannot write", temp, writeErrno));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int renameErrno = errno;
    ::unlink(temp.c_str());
    throw KernelCacheError(ioError("cannot rename onto", path, renameErrno));
  }
  // Best effort: make the rename itself durable.
  if (int dirFd = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
}

bool KernelCache::remove(const std::string &key) const {
  return ::unlink(entryPath(key).c_str()) == 0;
}

} // namespace tessera::runtime
