#pragma once
// A cache of freed large host blocks, so that a forward pass that allocates the same activations
// every step gets pages that are already mapped.
//
// Why: glibc returns the top of the heap to the kernel whenever a large free leaves more than its trim
// threshold there, and the next forward touches fresh pages again. On the virtual machines we measure
// on, a minor page fault costs ~5 µs: the bundled model's 128-token prefill spent two thirds of its
// time in faults on its own outputs (300k faults per 115 prefills; 7.7 ms with trimming off, 23-25 ms
// with it on, bench_gemma2). Caching by exact size is enough: a model repeats the same shapes.
//
// Blocks of at least kMinBytes are kept, newest first, up to a byte budget (FLAS_HOST_CACHE_MIB,
// default 256; 0 turns the cache off); the least recently freed go back to the allocator beyond it.
// Under AddressSanitizer the cache is off: reusing blocks would hide use-after-free.
#include <cstddef>
#include <cstdlib>
#include <list>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace flas {

class HostBlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t(64) << 10;

  // The process's cache; never destroyed, so blocks freed during static destruction stay valid.
  static HostBlockCache& instance() {
    static HostBlockCache* cache = new HostBlockCache(budget_from_environment());
    return *cache;
  }

  explicit HostBlockCache(std::size_t budget_bytes) : budget_(budget_bytes) {}
  HostBlockCache(const HostBlockCache&) = delete;
  HostBlockCache& operator=(const HostBlockCache&) = delete;
  ~HostBlockCache() { trim(0); }

  // A block of exactly `bytes` (a multiple of `alignment`), from the cache when one was freed.
  void* allocate(std::size_t bytes, std::size_t alignment) {
    if (bytes >= kMinBytes && budget_ > 0) {
      std::lock_guard lock(mutex_);
      for (auto it = blocks_.begin(); it != blocks_.end(); ++it)
        if (it->bytes == bytes && it->alignment == alignment) {
          void* p = it->pointer;
          cached_ -= bytes;
          blocks_.erase(it);
          ++hits_;
          return p;
        }
    }
    void* p = std::aligned_alloc(alignment, bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }

  void release(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    if (bytes < kMinBytes || bytes > budget_) return std::free(p);
    std::lock_guard lock(mutex_);
    try {
      blocks_.push_front(Block{p, bytes, alignment});
    } catch (...) {
      return std::free(p);
    }
    cached_ += bytes;
    trim_locked(budget_);
  }

  // Frees cached blocks until at most `keep_bytes` stay (0: all of them).
  void trim(std::size_t keep_bytes) {
    std::lock_guard lock(mutex_);
    trim_locked(keep_bytes);
  }

  std::size_t cached_bytes() const {
    std::lock_guard lock(mutex_);
    return cached_;
  }
  std::size_t hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
  }
  std::size_t budget_bytes() const { return budget_; }

 private:
  struct Block {
    void* pointer;
    std::size_t bytes, alignment;
  };

  static std::size_t budget_from_environment() {
#if defined(__SANITIZE_ADDRESS__)
    return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 0;
#endif
#endif
    const char* mib = std::getenv("FLAS_HOST_CACHE_MIB");
    if (!mib || !*mib) return std::size_t(256) << 20;
    try {
      std::size_t used = 0;
      const unsigned long long value = std::stoull(mib, &used);
      if (used == std::string(mib).size()) return std::size_t(value) << 20;
    } catch (...) {
    }
    throw std::invalid_argument(std::string("FLAS_HOST_CACHE_MIB is '") + mib +
                                "', expected a whole number of MiB (0 turns the host block cache off)");
  }

  void trim_locked(std::size_t keep_bytes) {
    while (cached_ > keep_bytes && !blocks_.empty()) {
      std::free(blocks_.back().pointer);
      cached_ -= blocks_.back().bytes;
      blocks_.pop_back();
    }
  }

  const std::size_t budget_;
  mutable std::mutex mutex_;
  std::list<Block> blocks_;  // most recently freed first
  std::size_t cached_ = 0, hits_ = 0;
};

}  // namespace flas
