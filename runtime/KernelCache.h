// The on-disk cache of compiled kernels, shared by every process of a user.
//
// One file per entry, named by the key: a short header (magic, payload length, payload
// checksum) and the payload. Writers publish with write-to-temp + fsync + rename, so readers
// see either a whole old entry, a whole new one, or none; several processes writing the same
// key is fine (the last rename wins). A reader that finds a damaged entry (torn by a crash,
// truncated, edited) treats it as a miss and deletes it.
#ifndef TESSERA_RUNTIME_KERNELCACHE_H
#define TESSERA_RUNTIME_KERNELCACHE_H

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tessera::runtime {

/// 64-bit FNV-1a from `seed` (the standard offset basis by default). Stable across runs,
/// compilers and machines, unlike std::hash.
uint64_t fnv1a64(std::string_view data, uint64_t seed = 0xcbf29ce484222325ULL);

/// A 128-bit hash as 32 lowercase hex digits: two FNV-1a 64 passes with different seeds.
std::string stableHash128Hex(std::string_view data);

/// An I/O failure while writing the cache (reads never throw for I/O; they miss).
class KernelCacheError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class KernelCache {
public:
  /// $TESSERA_CACHE_DIR, else $XDG_CACHE_HOME/tessera, else $HOME/.cache/tessera.
  static std::string defaultDirectory();

  /// The cache key of one compiled kernel: a hash of everything that determines the binary.
  /// Fields are length-prefixed before hashing, so no two field tuples share a key text.
  static std::string makeKey(std::string_view specText, std::string_view tuningText,
                             std::string_view arch, std::string_view compilerVersion);

  /// Uses `directory` (created on the first put, not before).
  explicit KernelCache(std::string directory = defaultDirectory());

  /// The stored blob, or nullopt on a miss (absent, unreadable or damaged; damaged entries are
  /// deleted). Throws std::invalid_argument for a key that is not a safe file name.
  std::optional<std::string> get(const std::string &key) const;
  /// Stores `blob` under `key` atomically, creating the directory if needed. Throws
  /// KernelCacheError on I/O failure (read-only or full disk), std::invalid_argument for a bad
  /// key.
  void put(const std::string &key, std::string_view blob) const;
  /// Deletes the entry; false if there was none.
  bool remove(const std::string &key) const;

  const std::string &directory() const { return directory_; }
  /// The entry file for `key` (tests corrupt it on purpose).
  std::string entryPath(const std::string &key) const;

private:
  std::string directory_;
};

} // namespace tessera::runtime

#endif // TESSERA_RUNTIME_KERNELCACHE_H
