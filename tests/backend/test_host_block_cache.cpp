// HostBlockCache: large freed blocks come back for the same size, small ones never enter, the byte
// budget evicts the least recently freed, and tensors stay correct when their memory is recycled.
#include <cstdint>
#include <cstring>
#include <tuple>
#include <thread>
#include <vector>

#include "conformance.hpp"
#include "flas/core/host_block_cache.hpp"

namespace flas::conformance {
namespace {

constexpr std::size_t kBig = HostBlockCache::kMinBytes * 2;

TEST_CASE("a freed large block is handed out again for the same size and alignment only") {
  HostBlockCache cache(std::size_t(16) << 20);
  void* a = cache.allocate(kBig, 64);
  REQUIRE(reinterpret_cast<std::uintptr_t>(a) % 64 == 0);
  cache.release(a, kBig, 64);
  CHECK(cache.cached_bytes() == kBig);
  void* other_size = cache.allocate(kBig + 64, 64);
  CHECK(other_size != a);
  void* other_alignment = cache.allocate(kBig, 4096);
  CHECK(other_alignment != a);
  CHECK(reinterpret_cast<std::uintptr_t>(other_alignment) % 4096 == 0);
  void* again = cache.allocate(kBig, 64);
  CHECK(again == a);
  CHECK(cache.hits() == 1);
  CHECK(cache.cached_bytes() == 0);
  for (auto [p, bytes, alignment] : {std::tuple{other_size, kBig + 64, std::size_t(64)},
                                     std::tuple{other_alignment, kBig, std::size_t(4096)},
                                     std::tuple{again, kBig, std::size_t(64)}})
    cache.release(p, bytes, alignment);
  CHECK(cache.cached_bytes() == 3 * kBig + 64);
}

TEST_CASE("small blocks bypass the cache, and the budget frees the least recently freed first") {
  HostBlockCache cache(3 * kBig);
  void* small = cache.allocate(1024, 64);
  cache.release(small, 1024, 64);
  CHECK(cache.cached_bytes() == 0);
  void* blocks[4];
  for (auto& b : blocks) b = cache.allocate(kBig, 64);
  for (auto* b : blocks) cache.release(b, kBig, 64);
  CHECK(cache.cached_bytes() == 3 * kBig);  // blocks[0] went back to the allocator
  std::vector<void*> reused;
  for (int i = 0; i < 3; ++i) reused.push_back(cache.allocate(kBig, 64));
  CHECK(reused[0] == blocks[3]);  // newest first
  CHECK(reused[1] == blocks[2]);
  CHECK(reused[2] == blocks[1]);
  for (auto* b : reused) cache.release(b, kBig, 64);
  cache.trim(0);
  CHECK(cache.cached_bytes() == 0);
}

TEST_CASE("a block larger than the budget, or any block with a zero budget, is never kept") {
  HostBlockCache cache(kBig);
  void* huge = cache.allocate(2 * kBig, 64);
  cache.release(huge, 2 * kBig, 64);
  CHECK(cache.cached_bytes() == 0);
  HostBlockCache off(0);
  void* a = off.allocate(kBig, 64);
  off.release(a, kBig, 64);
  CHECK(off.cached_bytes() == 0);
  CHECK(off.hits() == 0);
}

TEST_CASE("threads allocating and freeing at once get distinct blocks") {
  HostBlockCache cache(std::size_t(8) << 20);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto* p = static_cast<std::uint32_t*>(cache.allocate(kBig, 64));
        for (std::size_t j = 0; j < kBig / 4; j += 1024) p[j] = std::uint32_t(t * 1000 + i);
        for (std::size_t j = 0; j < kBig / 4; j += 1024) failures[std::size_t(t)] += p[j] != std::uint32_t(t * 1000 + i);
        cache.release(p, kBig, 64);
      }
    });
  for (auto& t : threads) t.join();
  for (int f : failures) CHECK(f == 0);
}

TEST_CASE("linear into recycled tensors gives the same result as into fresh ones") {
  // The forward's pattern: an output of the same shape freed and reallocated each step. Each output
  // starts as NaN, so a kernel that skipped a block would show through the recycled memory.
  const Tensor x = random_tensor({128, 256});
  const Tensor w = random_tensor({768, 256}, DType::BF16);
  Tensor first = poisoned({128, 768});
  CpuBackend::linear(x, w, nullptr, first);
  REQUIRE(all_finite(first));
  const std::size_t hits_before = HostBlockCache::instance().hits();
  for (int step = 0; step < 3; ++step) {
    Tensor y = poisoned({128, 768});
    CpuBackend::linear(x, w, nullptr, y);
    CHECK(std::memcmp(y.raw(), first.raw(), std::size_t(y.numel()) * 4) == 0);
  }
  if (HostBlockCache::instance().budget_bytes() > 0) CHECK(HostBlockCache::instance().hits() > hits_before);
}

}  // namespace
}  // namespace flas::conformance
