// Portable decode matmul for CPUs without AVX2: plain C++ the compiler may vectorise for whatever the
// build targets. Weight rows are widened to f32 in blocks on the stack and reused for all M rows; eight
// partial sums per dot product keep the adds independent (and the result close to the SIMD kernels').
#include <cstring>

#include "small_gemm.hpp"

namespace flas::cpu_detail {
namespace {

constexpr std::int64_t kBlock = 256;  // weights widened at a time (1 KB on the stack)
constexpr int kLanes = 8;
constexpr int kMaxM = 8;

std::int64_t packed_size(std::int64_t, std::int64_t, bool) { return 0; }
void pack(const float*, std::int64_t, std::int64_t, bool, float*) {}

void widen_block(const SmallGemm& g, std::int64_t n, std::int64_t k0, std::int64_t len, float* out) {
  if (g.w_bf16) {
    const auto* w = static_cast<const std::uint16_t*>(g.w) + n * g.K + k0;
    for (std::int64_t i = 0; i < len; ++i) {
      const std::uint32_t bits = std::uint32_t(w[i]) << 16;
      std::memcpy(out + i, &bits, sizeof(float));
    }
  } else {
    std::memcpy(out, static_cast<const float*>(g.w) + n * g.K + k0, std::size_t(len) * sizeof(float));
  }
}

void run(const SmallGemm& g, std::int64_t n0, std::int64_t n1) {
  float wblock[kBlock];
  for (std::int64_t n = n0; n < n1; ++n) {
    float acc[kMaxM][kLanes] = {};
    for (std::int64_t k0 = 0; k0 < g.K; k0 += kBlock) {
      const std::int64_t len = g.K - k0 < kBlock ? g.K - k0 : kBlock;
      widen_block(g, n, k0, len, wblock);
      for (std::int64_t m = 0; m < g.M; ++m) {
        const float* x = g.x + m * g.K + k0;
        std::int64_t i = 0;
        for (; i + kLanes <= len; i += kLanes)
          for (int l = 0; l < kLanes; ++l) acc[m][l] += x[i + l] * wblock[i + l];
        for (; i < len; ++i) acc[m][i % kLanes] += x[i] * wblock[i];
      }
    }
    const float b = g.bias ? g.bias[n] : 0.0f;
    for (std::int64_t m = 0; m < g.M; ++m) {
      float s = 0;
      for (int l = 0; l < kLanes; ++l) s += acc[m][l];
      g.y[m * g.ldy + n] = s + b;
    }
  }
}

void widen_bf16(const std::uint16_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint32_t bits = std::uint32_t(src[i]) << 16;
    std::memcpy(dst + i, &bits, sizeof(float));
  }
}

}  // namespace

const SmallGemmKernel small_gemm_generic{"generic", kMaxM, packed_size, pack, run, widen_bf16};

}  // namespace flas::cpu_detail
