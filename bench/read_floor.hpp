#pragma once
// The bandwidth floor measured at the same moment as a benchmark: a plain multi-threaded read loop over
// given buffers (integer adds, vectorised, any order). Shared machines' memory bandwidth drifts by ±20%
// from minute to minute, so a bandwidth-bound kernel is judged against this, read right beside it.
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "flas/core/tensor.hpp"

namespace flas::bench {

// Seconds to read every byte of `buffers` once with `threads` threads.
inline double plain_read_seconds(const std::vector<const Tensor*>& buffers, int threads) {
  std::vector<std::uint64_t> sums(std::size_t(threads), 0);
  std::vector<std::thread> team;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    team.emplace_back([&, t] {
      std::uint64_t s = 0;
      for (const Tensor* c : buffers) {
        const auto* p = static_cast<const std::uint64_t*>(c->raw());
        const std::size_t n = c->bytes() / 8, lo = n * std::size_t(t) / std::size_t(threads),
                          hi = n * std::size_t(t + 1) / std::size_t(threads);
        for (std::size_t i = lo; i < hi; ++i) s += p[i];
      }
      sums[std::size_t(t)] = s;
    });
  for (auto& th : team) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::uint64_t total = 0;
  for (auto s : sums) total += s;
  volatile std::uint64_t sink = total;  // keeps the loop
  (void)sink;
  return seconds;
}

inline std::size_t total_bytes(const std::vector<const Tensor*>& buffers) {
  std::size_t b = 0;
  for (const Tensor* t : buffers) b += t->bytes();
  return b;
}

}  // namespace flas::bench
