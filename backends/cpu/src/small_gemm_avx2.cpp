// AVX2 + FMA decode matmul (compiled with -mavx2 -mfma -mno-avx512f): the AVX-512 kernel's scheme on
// 256-bit registers. bf16: 16 weights per 32-byte load, even elements by a 16-bit shift, odd ones by
// masking, activations packed per 16-wide chunk as 8 even then 8 odd values.
#include <immintrin.h>

#include "small_gemm.hpp"

// Loops over the M × R accumulators must be unrolled completely, or the accumulators live on the stack.
#define FLAS_UNROLL _Pragma("GCC unroll 16")

namespace flas::cpu_detail {
namespace {

constexpr std::int64_t kBf16Chunk = 16;
constexpr std::int64_t kF32Chunk = 8;
constexpr std::int64_t kPrefetchBytes = 1024;  // see small_gemm_avx512.cpp

std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }

std::int64_t packed_size(std::int64_t M, std::int64_t K, bool w_bf16) {
  return w_bf16 ? M * round_up(K, kBf16Chunk) : 0;
}

void pack(const float* x, std::int64_t M, std::int64_t K, bool w_bf16, float* out) {
  if (!w_bf16) return;
  const std::int64_t Kp = round_up(K, kBf16Chunk);
  for (std::int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * K;
    float* o = out + m * Kp;
    for (std::int64_t c = 0; c < Kp; c += kBf16Chunk)
      for (std::int64_t i = 0; i < 8; ++i) {
        const std::int64_t ke = c + 2 * i, ko = ke + 1;
        o[c + i] = ke < K ? xr[ke] : 0.0f;
        o[c + 8 + i] = ko < K ? xr[ko] : 0.0f;
      }
  }
}

float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

template <int M, int R>
void store_rows(const SmallGemm& g, std::int64_t n, __m256 (&acc)[M][R]) {
  FLAS_UNROLL
  for (int r = 0; r < R; ++r) {
    const float b = g.bias ? g.bias[n + r] : 0.0f;
    FLAS_UNROLL
    for (int m = 0; m < M; ++m) g.y[m * g.ldy + n + r] = hsum(acc[m][r]) + b;
  }
}

template <int M, int R>
void bf16_rows(const SmallGemm& g, std::int64_t n) {
  const std::int64_t K = g.K, Kp = round_up(K, kBf16Chunk), full = K / kBf16Chunk;
  const auto* w = static_cast<const std::uint16_t*>(g.w) + n * K;
  const __m256i high_half = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  constexpr bool kSplit = M * R <= 4;  // odd products in their own accumulators: two FMA chains
  __m256 acc[M][R], acc_odd[M][R];
  FLAS_UNROLL
  for (int m = 0; m < M; ++m)
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) acc[m][r] = acc_odd[m][r] = _mm256_setzero_ps();
  auto step = [&](std::int64_t c, const __m256i (&raw)[R]) {
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(raw[r], 16));
      const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(raw[r], high_half));
      FLAS_UNROLL
      for (int m = 0; m < M; ++m) {
        const float* xc = g.x + m * Kp + c * kBf16Chunk;
        acc[m][r] = _mm256_fmadd_ps(even, _mm256_loadu_ps(xc), acc[m][r]);
        if constexpr (kSplit) acc_odd[m][r] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(xc + 8), acc_odd[m][r]);
        else acc[m][r] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(xc + 8), acc[m][r]);
      }
    }
  };
  std::int64_t c = 0;
  for (; c < full; ++c) {
    __m256i raw[R];
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const std::uint16_t* p = w + r * K + c * kBf16Chunk;
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      raw[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }
    step(c, raw);
  }
  if (const std::int64_t tail = K - full * kBf16Chunk; tail > 0) {
    // No 16-bit masked loads before AVX-512: copy the tail into a zeroed line (no read past the row).
    __m256i raw[R];
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      alignas(32) std::uint16_t line[kBf16Chunk] = {};
      for (std::int64_t i = 0; i < tail; ++i) line[i] = w[r * K + c * kBf16Chunk + i];
      raw[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(line));
    }
    step(c, raw);
  }
  if constexpr (kSplit)
    FLAS_UNROLL
    for (int m = 0; m < M; ++m)
      FLAS_UNROLL
      for (int r = 0; r < R; ++r) acc[m][r] = _mm256_add_ps(acc[m][r], acc_odd[m][r]);
  store_rows<M, R>(g, n, acc);
}

template <int M, int R>
void f32_rows(const SmallGemm& g, std::int64_t n) {
  const std::int64_t K = g.K, full = K / kF32Chunk;
  const float* w = static_cast<const float*>(g.w) + n * K;
  __m256 acc[M][R];
  FLAS_UNROLL
  for (int m = 0; m < M; ++m)
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  std::int64_t c = 0;
  for (; c < full; ++c)
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const float* p = w + r * K + c * kF32Chunk;
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      const __m256 wv = _mm256_loadu_ps(p);
      FLAS_UNROLL
      for (int m = 0; m < M; ++m)
        acc[m][r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(g.x + m * K + c * kF32Chunk), acc[m][r]);
    }
  if (const std::int64_t tail = K - full * kF32Chunk; tail > 0) {
    alignas(32) int lanes[kF32Chunk];
    for (std::int64_t i = 0; i < kF32Chunk; ++i) lanes[i] = i < tail ? -1 : 0;
    const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_maskload_ps(w + r * K + c * kF32Chunk, mask);
      FLAS_UNROLL
      for (int m = 0; m < M; ++m)
        acc[m][r] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(g.x + m * K + c * kF32Chunk, mask), acc[m][r]);
    }
  }
  store_rows<M, R>(g, n, acc);
}

// Rows per pass, as for AVX-512 (one sequential stream for small M while x fits in L1, shared x
// loads otherwise) within 16 ymm registers.
constexpr std::int64_t kSingleRowMaxK = 4096;
// Rows this short (a small model's hidden size) are cache-resident and latency-bound: 8 dependent FMAs
// and a horizontal sum per row at K = 256. Several rows per pass run their chains side by side.
constexpr std::int64_t kShortRowMaxK = 1024;
constexpr int kLongRowsPerPass = 2;

template <int M>
constexpr int rows_per_pass() {
  constexpr int table[] = {1, 1, 2, 2, 1, 1, 1, 1};
  return table[M - 1];
}

#include "small_gemm_dispatch.hpp"

void widen_bf16(const std::uint16_t* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
  for (; i < n; ++i) {
    const std::uint32_t bits = std::uint32_t(src[i]) << 16;
    __builtin_memcpy(dst + i, &bits, sizeof(float));
  }
}

}  // namespace

const SmallGemmKernel small_gemm_avx2{"avx2", 8, packed_size, pack, run, widen_bf16};

}  // namespace flas::cpu_detail
