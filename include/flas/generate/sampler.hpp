#pragma once
// Next-token choice: greedy (temperature 0) or temperature / top-k / top-p sampling from a seeded
// generator, so that a run is reproducible from its seed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "flas/core/error.hpp"

namespace flas {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: no top-k filter
  float top_p = 1.0f;        // 1: no nucleus filter
  std::uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplingOptions o) : opt_(o), rng_(o.seed) {
    FLAS_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), "sampling: temperature must be >= 0, got ",
               o.temperature);
    FLAS_CHECK(o.top_k >= 0, "sampling: top_k must be >= 0, got ", o.top_k);
    FLAS_CHECK(o.top_p > 0 && o.top_p <= 1, "sampling: top_p must be in (0, 1], got ", o.top_p);
  }

  // First index of the largest logit (torch.argmax's tie rule).
  static std::int64_t argmax(const float* logits, std::int64_t n) {
    return std::int64_t(std::max_element(logits, logits + n) - logits);
  }

  std::int64_t sample(const float* logits, std::int64_t n) {
    if (opt_.temperature == 0.0f) return argmax(logits, n);
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return logits[a] > logits[b]; });
    std::size_t keep = order.size();
    if (opt_.top_k > 0) keep = std::min(keep, std::size_t(opt_.top_k));
    std::vector<double> p(keep);
    const double mx = double(logits[order[0]]) / opt_.temperature;
    double z = 0;
    for (std::size_t i = 0; i < keep; ++i) z += p[i] = std::exp(double(logits[order[i]]) / opt_.temperature - mx);
    if (opt_.top_p < 1.0f) {  // smallest prefix whose probability reaches top_p
      double cum = 0;
      std::size_t i = 0;
      while (i < keep && cum < double(opt_.top_p) * z) cum += p[i++];
      keep = std::max<std::size_t>(i, 1);
      z = std::accumulate(p.begin(), p.begin() + std::ptrdiff_t(keep), 0.0);
    }
    double u = std::uniform_real_distribution<double>(0.0, z)(rng_);
    for (std::size_t i = 0; i < keep; ++i) {
      if (u < p[i]) return order[i];
      u -= p[i];
    }
    return order[keep - 1];
  }

 private:
  SamplingOptions opt_;
  std::mt19937_64 rng_;
};

}  // namespace flas
