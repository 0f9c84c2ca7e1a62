// AVX-512 decode matmul (compiled with -mavx512f -mavx512bw -mavx512vl -mfma; only called where the
// CPU has them). Streams each weight row once and does R rows × M activation rows per pass.
//
// bf16 weights without a conversion step: a 64-byte line holds 32 bf16 = 16 dwords. Shifting each
// dword left by 16 gives the even elements as exact f32, masking off its low half gives the odd ones.
// The activations are packed once per call to match (per 32-wide chunk: 16 even, then 16 odd values),
// so each line costs one load, one shift, one and, and 2·M FMAs — well below what memory can feed.
#include <immintrin.h>

#include "small_gemm.hpp"

// Loops over the M × R accumulators must be unrolled completely, or the accumulators live on the stack.
#define FLAS_UNROLL _Pragma("GCC unroll 16")

namespace flas::cpu_detail {
namespace {

constexpr std::int64_t kBf16Chunk = 32;  // bf16 weights per 64-byte line
constexpr std::int64_t kF32Chunk = 16;   // f32 weights per 64-byte line
// How far ahead (bytes) each weight row is prefetched: with one row per thread this beat both no
// prefetch and 512/2048/4096 bytes on the LM head (the hardware prefetcher stops at 4 KB pages).
constexpr std::int64_t kPrefetchBytes = 1024;

std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }

std::int64_t packed_size(std::int64_t M, std::int64_t K, bool w_bf16) {
  return w_bf16 ? M * round_up(K, kBf16Chunk) : 0;
}

void pack(const float* x, std::int64_t M, std::int64_t K, bool w_bf16, float* out) {
  if (!w_bf16) return;  // f32 weights read x as it is
  const std::int64_t Kp = round_up(K, kBf16Chunk);
  for (std::int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * K;
    float* o = out + m * Kp;
    for (std::int64_t c = 0; c < Kp; c += kBf16Chunk)
      for (std::int64_t i = 0; i < 16; ++i) {
        const std::int64_t ke = c + 2 * i, ko = ke + 1;
        o[c + i] = ke < K ? xr[ke] : 0.0f;
        o[c + 16 + i] = ko < K ? xr[ko] : 0.0f;
      }
  }
}

template <int M, int R>
void store_rows(const SmallGemm& g, std::int64_t n, __m512 (&acc)[M][R]) {
  FLAS_UNROLL
  for (int r = 0; r < R; ++r) {
    const float b = g.bias ? g.bias[n + r] : 0.0f;
    FLAS_UNROLL
    for (int m = 0; m < M; ++m) g.y[m * g.ldy + n + r] = _mm512_reduce_add_ps(acc[m][r]) + b;
  }
}

// Weight rows [n, n + R) against M packed activation rows, bf16 weights.
template <int M, int R>
void bf16_rows(const SmallGemm& g, std::int64_t n) {
  const std::int64_t K = g.K, Kp = round_up(K, kBf16Chunk), full = K / kBf16Chunk;
  const auto* w = static_cast<const std::uint16_t*>(g.w) + n * K;
  const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  // Few accumulators: give the odd products their own, so two FMA chains run side by side.
  constexpr bool kSplit = M * R <= 8;
  __m512 acc[M][R], acc_odd[M][R];
  FLAS_UNROLL
  for (int m = 0; m < M; ++m)
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) acc[m][r] = acc_odd[m][r] = _mm512_setzero_ps();

  auto step = [&](std::int64_t c, __m512i (&raw)[R]) {
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(raw[r], 16));
      const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(raw[r], high_half));
      FLAS_UNROLL
      for (int m = 0; m < M; ++m) {
        const float* xc = g.x + m * Kp + c * kBf16Chunk;
        acc[m][r] = _mm512_fmadd_ps(even, _mm512_loadu_ps(xc), acc[m][r]);
        if constexpr (kSplit) acc_odd[m][r] = _mm512_fmadd_ps(odd, _mm512_loadu_ps(xc + 16), acc_odd[m][r]);
        else acc[m][r] = _mm512_fmadd_ps(odd, _mm512_loadu_ps(xc + 16), acc[m][r]);
      }
    }
  };
  std::int64_t c = 0;
  for (; c < full; ++c) {
    __m512i raw[R];
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const std::uint16_t* p = w + r * K + c * kBf16Chunk;
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      raw[r] = _mm512_loadu_si512(p);
    }
    step(c, raw);
  }
  if (const std::int64_t tail = K - full * kBf16Chunk; tail > 0) {
    const __mmask32 mask = static_cast<__mmask32>((std::uint64_t(1) << tail) - 1);
    __m512i raw[R];
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) raw[r] = _mm512_maskz_loadu_epi16(mask, w + r * K + c * kBf16Chunk);
    step(c, raw);
  }
  if constexpr (kSplit)
    FLAS_UNROLL
    for (int m = 0; m < M; ++m)
      FLAS_UNROLL
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_add_ps(acc[m][r], acc_odd[m][r]);
  store_rows<M, R>(g, n, acc);
}

// Weight rows [n, n + R) against M activation rows, f32 weights (x unpacked, row stride K).
template <int M, int R>
void f32_rows(const SmallGemm& g, std::int64_t n) {
  const std::int64_t K = g.K, full = K / kF32Chunk;
  const float* w = static_cast<const float*>(g.w) + n * K;
  constexpr bool kSplit = M * R <= 8;  // as for bf16: alternate chunks between two accumulator sets
  __m512 acc[M][R], acc2[M][R];
  FLAS_UNROLL
  for (int m = 0; m < M; ++m)
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) acc[m][r] = acc2[m][r] = _mm512_setzero_ps();
  auto chunk = [&](std::int64_t c, __m512 (&into)[M][R]) {
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const float* p = w + r * K + c * kF32Chunk;
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      const __m512 wv = _mm512_loadu_ps(p);
      FLAS_UNROLL
      for (int m = 0; m < M; ++m)
        into[m][r] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(g.x + m * K + c * kF32Chunk), into[m][r]);
    }
  };
  std::int64_t c = 0;
  if constexpr (kSplit) {
    for (; c + 2 <= full; c += 2) {
      chunk(c, acc);
      chunk(c + 1, acc2);
    }
    FLAS_UNROLL
    for (int m = 0; m < M; ++m)
      FLAS_UNROLL
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_add_ps(acc[m][r], acc2[m][r]);
  }
  for (; c < full; ++c) chunk(c, acc);
  if (const std::int64_t tail = K - full * kF32Chunk; tail > 0) {
    const __mmask16 mask = static_cast<__mmask16>((1u << tail) - 1);
    FLAS_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_maskz_loadu_ps(mask, w + r * K + c * kF32Chunk);
      FLAS_UNROLL
      for (int m = 0; m < M; ++m)
        acc[m][r] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mask, g.x + m * K + c * kF32Chunk), acc[m][r]);
    }
  }
  store_rows<M, R>(g, n, acc);
}

// R weight rows per pass (measured on Gemma-2-2B shapes streamed from DRAM, docs/cpu_backend.md).
// For M <= 2 one row at a time keeps a single sequential stream per thread, which DRAM prefetching
// likes best (91-97% of a plain read loop, against ~72% with four rows) — as long as the packed x
// stays in L1. For longer rows (the MLP's down projection, K = 9216) four rows share each x load
// instead (92% against 58%). From M = 3 the x loads must be shared anyway: as many rows as the 32
// registers allow (R·M accumulators + 2R weight vectors).
constexpr std::int64_t kSingleRowMaxK = 4096;
// Rows this short (a small model's hidden size) are cache-resident and latency-bound: 8 dependent FMAs
// and a horizontal sum per row at K = 256. Several rows per pass run their chains side by side.
constexpr std::int64_t kShortRowMaxK = 1024;
constexpr int kLongRowsPerPass = 4;

template <int M>
constexpr int rows_per_pass() {
  constexpr int table[] = {1, 1, 4, 4, 4, 4, 3, 3};
  return table[M - 1];
}

#include "small_gemm_dispatch.hpp"

void widen_bf16(const std::uint16_t* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i h = _mm256_maskz_loadu_epi16(mask, src + i);
    _mm512_mask_storeu_ps(dst + i, mask, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
}

}  // namespace

const SmallGemmKernel small_gemm_avx512{"avx512", 8, packed_size, pack, run, widen_bf16};

}  // namespace flas::cpu_detail
