// AVX-512 prefill matmuls with bf16 weights (see prefill_gemm.hpp for the idea). Compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -mfma; the bf16 kernel only runs where cpuid reports
// avx512_bf16, the exact one wherever AVX-512 F/BW/VL are present.
//
// Blocking (2 threads of a Zen 5, 1 MB L2 each): x is packed in groups of 64 rows; one group's
// slice of kKc k-values (768 KB exact, 512 KB bf16) stays in L2 while a thread walks its weight rows
// kNr at a time. A tile is 4 vectors of 16 rows × kNr = 6 weight rows: 24 accumulators, the
// largest count that leaves registers for the activations and the broadcast weight. Partial sums
// of a k-slice go to y and are read back by the next slice (only when K > kKc).
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "prefill_gemm.hpp"

#define FLAS_UNROLL _Pragma("GCC unroll 16")

namespace flas::cpu_detail {
namespace {

constexpr std::int64_t kGroup = 64;  // rows of x per packed group (4 vectors of 16)
constexpr int kNr = 6;               // weight rows per tile
// k per slice: long enough that few slices re-read y's partial sums, short enough that a group's
// slice (64 rows: 768 KB exact, 512 KB bf16) stays in a Zen 5's 1 MB L2. Measured against 1024-4096.
constexpr std::int64_t kKcExact = 3072, kKcBf16 = 4096;
constexpr std::int64_t kPrefetchBytes = 1024;            // ahead on each weight row, as in small_gemm

std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }
std::int64_t group_lanes(std::int64_t M, std::int64_t g) { return round_up(std::min(kGroup, M - g * kGroup), 16); }

// Both layouts hold, per group, one 4-byte cell per (row, k pair) or (row, k): group g starts at cell
// g · 64 · cells_per_row, its rows padded to a multiple of 16 with zeros.
std::int64_t packed_cells(std::int64_t M, std::int64_t cells_per_row) {
  const std::int64_t groups = (M + kGroup - 1) / kGroup;
  return ((groups - 1) * kGroup + group_lanes(M, groups - 1)) * cells_per_row;
}

std::uint32_t load_pair(const std::uint16_t* p) {  // w[k], w[k+1] as one dword, alignment-free
  std::uint32_t d;
  std::memcpy(&d, p, 4);
  return d;
}

template <int MV, int NR>
struct TileIo {
  alignas(64) float t[NR][MV * 16];
  // Accumulators start from the bias (first slice) or from y's partial sums.
  void init(__m512 (&acc)[MV][NR], const float* y, std::int64_t ldy, std::int64_t rows, const float* bias, bool first) {
    if (!first)
      for (std::int64_t i = 0; i < MV * 16; ++i)  // padding rows: zero, never stored
        for (int j = 0; j < NR; ++j) t[j][i] = i < rows ? y[i * ldy + j] : 0.0f;
    FLAS_UNROLL
    for (int mv = 0; mv < MV; ++mv)
      FLAS_UNROLL
      for (int j = 0; j < NR; ++j)
        acc[mv][j] = !first ? _mm512_load_ps(&t[j][mv * 16]) : _mm512_set1_ps(bias ? bias[j] : 0.0f);
  }
  void store(const __m512 (&acc)[MV][NR], float* y, std::int64_t ldy, std::int64_t rows) {
    FLAS_UNROLL
    for (int mv = 0; mv < MV; ++mv)
      FLAS_UNROLL
      for (int j = 0; j < NR; ++j) _mm512_store_ps(&t[j][mv * 16], acc[mv][j]);
    for (std::int64_t i = 0; i < rows; ++i)
      for (int j = 0; j < NR; ++j) y[i * ldy + j] = t[j][i];
  }
};

struct TileArgs {
  const void* a;  // the group's packed activations
  std::int64_t lanes;  // rows of the group, padded (= MV · 16)
  const std::uint16_t* w;  // first weight row of the tile
  std::int64_t K, k0, k1;
  const float* bias;  // at the tile's first column, or nullptr
  float* y;           // at the group's first row and the tile's first column
  std::int64_t ldy, rows;
};

// The k loop of a tile, shared by both kernels: `pair(k)` does weights k, k+1 (the activation pointer
// it advances is its own), `last(k)` a lone last weight of odd K. Blocks of 32 weights (a 64-byte
// line per row) start with a prefetch of each row; inside, no branch and no index arithmetic beyond
// one counter, or the scalar bookkeeping rivals the vector work.
template <int NR, class Pair, class Last>
void k_loop(const TileArgs& t, const std::uint16_t* const (&row)[NR], Pair&& pair, Last&& last) {
  std::int64_t k = t.k0;
  for (; k + 32 <= t.k1; k += 32) {
    FLAS_UNROLL
    for (int j = 0; j < NR; ++j) _mm_prefetch(reinterpret_cast<const char*>(row[j] + k) + kPrefetchBytes, _MM_HINT_T0);
#pragma GCC unroll 2
    for (int u = 0; u < 32; u += 2) pair(k + u);
  }
  for (; k + 2 <= t.k1; k += 2) pair(k);
  if (k < t.k1) last(k);  // odd K: reading the pair would run past the row
}

// f32 activations [k][lanes]; each weight pair widened in registers: even = dword << 16, odd = dword
// with its low half cleared. Sequential f32 FMAs in k order. (Widening a 6-row panel to f32 in L1
// first, for plain broadcast FMAs, measured no faster; nor did 2 vectors × 12 rows per tile.)
template <int MV, int NR>
void tile_exact(const TileArgs& t) {
  constexpr std::int64_t L = MV * 16;
  const float* a = static_cast<const float*>(t.a) + t.k0 * L;
  const std::uint16_t* row[NR];
  FLAS_UNROLL
  for (int j = 0; j < NR; ++j) row[j] = t.w + j * t.K;
  const __m512i high_half = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  TileIo<MV, NR> io;
  __m512 acc[MV][NR];
  io.init(acc, t.y, t.ldy, t.rows, t.bias, t.k0 == 0);
  auto half = [&](std::int64_t k, auto widen) {
    __m512 av[MV];
    FLAS_UNROLL
    for (int mv = 0; mv < MV; ++mv) av[mv] = _mm512_load_ps(a + mv * 16);
    a += L;
    FLAS_UNROLL
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = widen(_mm512_set1_epi32(int(load_pair(row[j] + k))));
      FLAS_UNROLL
      for (int mv = 0; mv < MV; ++mv) acc[mv][j] = _mm512_fmadd_ps(av[mv], wv, acc[mv][j]);
    }
  };
  const auto even = [](__m512i d) { return _mm512_castsi512_ps(_mm512_slli_epi32(d, 16)); };
  const auto odd = [&](__m512i d) { return _mm512_castsi512_ps(_mm512_and_si512(d, high_half)); };
  k_loop<NR>(t, row, [&](std::int64_t k) { half(k, even); half(k, odd); }, [&](std::int64_t k) {
    FLAS_UNROLL
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = _mm512_set1_ps(std::bit_cast<float>(std::uint32_t(row[j][k]) << 16));
      FLAS_UNROLL
      for (int mv = 0; mv < MV; ++mv) acc[mv][j] = _mm512_fmadd_ps(_mm512_load_ps(a + mv * 16), wv, acc[mv][j]);
    }
  });
  io.store(acc, t.y, t.ldy, t.rows);
}

// bf16 activation pairs [k/2][lanes] (one dword per row: x[k] low, x[k+1] high) against the
// broadcast weight pair: vdpbf16ps adds both products to each lane's f32 sum.
template <int MV, int NR>
void tile_bf16(const TileArgs& t) {
  constexpr std::int64_t L = MV * 16;
  const std::uint32_t* a = static_cast<const std::uint32_t*>(t.a) + (t.k0 / 2) * L;
  const std::uint16_t* row[NR];
  FLAS_UNROLL
  for (int j = 0; j < NR; ++j) row[j] = t.w + j * t.K;
  TileIo<MV, NR> io;
  __m512 acc[MV][NR];
  io.init(acc, t.y, t.ldy, t.rows, t.bias, t.k0 == 0);
  auto step = [&](auto weight_pair) {
    __m512bh av[MV];
    FLAS_UNROLL
    for (int mv = 0; mv < MV; ++mv) av[mv] = (__m512bh)_mm512_load_si512(a + mv * 16);
    a += L;
    FLAS_UNROLL
    for (int j = 0; j < NR; ++j) {
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int(weight_pair(j)));
      FLAS_UNROLL
      for (int mv = 0; mv < MV; ++mv) acc[mv][j] = _mm512_dpbf16_ps(acc[mv][j], av[mv], b);
    }
  };
  k_loop<NR>(t, row, [&](std::int64_t k) { step([&](int j) { return load_pair(row[j] + k); }); },
             [&](std::int64_t k) { step([&](int j) { return std::uint32_t(row[j][k]); }); });  // partner zero, as is x's
  io.store(acc, t.y, t.ldy, t.rows);
}

using TileFn = void (*)(const TileArgs&);

template <template <int, int> class Pick>
struct TileTable {
  TileFn fn[4][kNr];
  template <int MV, int... NR>
  static constexpr void fill_row(TileFn (&row)[kNr], std::integer_sequence<int, NR...>) {
    ((row[NR] = &Pick<MV, NR + 1>::run), ...);
  }
  constexpr TileTable() : fn{} {
    fill_row<1>(fn[0], std::make_integer_sequence<int, kNr>{});
    fill_row<2>(fn[1], std::make_integer_sequence<int, kNr>{});
    fill_row<3>(fn[2], std::make_integer_sequence<int, kNr>{});
    fill_row<4>(fn[3], std::make_integer_sequence<int, kNr>{});
  }
};
template <int MV, int NR>
struct PickExact {
  static void run(const TileArgs& t) { tile_exact<MV, NR>(t); }
};
template <int MV, int NR>
struct PickBf16 {
  static void run(const TileArgs& t) { tile_bf16<MV, NR>(t); }
};
constexpr TileTable<PickExact> kExactTiles;
constexpr TileTable<PickBf16> kBf16Tiles;

// k-slices outermost, then the row groups, then kNr weight rows: one group's slice stays in L2 while
// the thread's weight rows stream past it. (Groups innermost re-read each weight row from L1, but two
// groups' slices, 1.2-1.5 MB at M = 128, no longer fit a 1 MB L2: measured 2-5 points of the f32 peak
// slower at M = 128, most at K = 9216, than reading each weight row once per group.)
void run_tiles(const PrefillGemm& g, std::int64_t n0, std::int64_t n1, const TileTable<PickExact>* exact,
               const TileTable<PickBf16>* bf16, std::int64_t kc, std::int64_t cells_per_row) {
  const std::int64_t groups = (g.M + kGroup - 1) / kGroup;
  // Slices of equal length (a multiple of 32, so pairs and prefetch blocks never straddle two).
  const std::int64_t slices = (g.K + kc - 1) / kc;
  kc = round_up((g.K + slices - 1) / slices, 32);
  for (std::int64_t k0 = 0; k0 < g.K; k0 += kc) {
    const std::int64_t k1 = std::min(g.K, k0 + kc);
    for (std::int64_t gi = 0; gi < groups; ++gi) {
      const std::int64_t lanes = group_lanes(g.M, gi);
      for (std::int64_t n = n0; n < n1; n += kNr) {
        const int nr = int(std::min<std::int64_t>(kNr, n1 - n));
        const TileArgs t{static_cast<const std::uint32_t*>(g.xp) + gi * kGroup * cells_per_row,
                         lanes, g.w + n * g.K, g.K, k0, k1, g.bias ? g.bias + n : nullptr,
                         g.y + gi * kGroup * g.ldy + n, g.ldy, std::min(kGroup, g.M - gi * kGroup)};
        const TileFn fn = exact ? exact->fn[lanes / 16 - 1][nr - 1] : bf16->fn[lanes / 16 - 1][nr - 1];
        fn(t);
      }
    }
  }
}

// Packing transposes x in 16 × 16 blocks of 4-byte cells (loads along rows, an in-register transpose,
// stores along k); bf16 cells are (x[k], x[k+1]) pairs rounded by one vcvtne2ps2bf16 (nearest even,
// as flas::f32_to_bf16) before the transpose. Scalar packing had cost a third of a K = 9216 matmul,
// gathers still 5%. Rows past M are zeros, and so is the partner of an odd K's last value.
void transpose16(__m512 (&r)[16]) {
  __m512 u[16];  // u[4g + j], lane L: column 4L + j of rows 4g .. 4g + 3
  for (int g = 0; g < 4; ++g) {
    const __m512 a_lo = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]), a_hi = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    const __m512 b_lo = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]), b_hi = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    const auto pd = [](__m512 v) { return _mm512_castps_pd(v); };
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a_lo), pd(b_lo)));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a_lo), pd(b_lo)));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a_hi), pd(b_hi)));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a_hi), pd(b_hi)));
  }
  for (int j = 0; j < 4; ++j) {  // 128-bit lanes: columns j, 4 + j, 8 + j, 12 + j
    const __m512 va = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), vb = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    const __m512 wa = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), wb = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_f32x4(va, wa, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(va, wa, 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(vb, wb, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(vb, wb, 0xdd);
  }
}

// For every 16-row vector of the groups in [m0, m1): `cells(row pointer, c0, r)` fills the 16 cells
// c0 .. c0 + 15 of one row (as f32 bit patterns); they are transposed and stored, `per_row` cells in all.
template <class Cells>
void pack_transposed(const float* x, std::int64_t M, std::int64_t K, std::int64_t m0, std::int64_t m1, void* out,
                     std::int64_t per_row, Cells cells) {
  for (std::int64_t g = m0 / kGroup; g * kGroup < m1; ++g) {
    const std::int64_t lanes = group_lanes(M, g);
    float* o = static_cast<float*>(out) + g * kGroup * per_row;
    for (std::int64_t v = 0; v < lanes / 16; ++v) {
      const std::int64_t first = g * kGroup + v * 16, rows = std::min<std::int64_t>(16, M - first);
      for (std::int64_t c0 = 0; c0 < per_row; c0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = i < rows ? cells(x + (first + i) * K, c0) : _mm512_setzero_ps();
        transpose16(r);
        for (std::int64_t c = c0; c < std::min(per_row, c0 + 16); ++c) _mm512_store_ps(o + c * lanes + v * 16, r[c - c0]);
      }
    }
  }
}

__mmask16 first_n16(std::int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

std::int64_t exact_bytes(std::int64_t M, std::int64_t K) { return 4 * packed_cells(M, K); }
std::int64_t bf16_bytes(std::int64_t M, std::int64_t K) { return 4 * packed_cells(M, (K + 1) / 2); }

void exact_pack(const float* x, std::int64_t M, std::int64_t K, std::int64_t m0, std::int64_t m1, void* out) {
  pack_transposed(x, M, K, m0, m1, out, K, [K](const float* row, std::int64_t k0) {
    return _mm512_maskz_loadu_ps(first_n16(K - k0), row + k0);
  });
}

void bf16_pack(const float* x, std::int64_t M, std::int64_t K, std::int64_t m0, std::int64_t m1, void* out) {
  pack_transposed(x, M, K, m0, m1, out, (K + 1) / 2, [K](const float* row, std::int64_t c0) {
    const std::int64_t k0 = 2 * c0;
    const __m512 lo = _mm512_maskz_loadu_ps(first_n16(K - k0), row + k0);
    const __m512 hi = K - k0 > 16 ? _mm512_maskz_loadu_ps(first_n16(K - k0 - 16), row + k0 + 16) : _mm512_setzero_ps();
    return _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  });
}

void exact_run(const PrefillGemm& g, std::int64_t n0, std::int64_t n1) {
  run_tiles(g, n0, n1, &kExactTiles, nullptr, kKcExact, g.K);
}
void bf16_run(const PrefillGemm& g, std::int64_t n0, std::int64_t n1) {
  run_tiles(g, n0, n1, nullptr, &kBf16Tiles, kKcBf16, (g.K + 1) / 2);
}

}  // namespace

bool cpu_has_avx512_bf16() {
  unsigned a, b, c, d;
  // CPUID.(EAX=7, ECX=1):EAX bit 5 is AVX512_BF16; AVX-512 F/BW/VL are checked by the caller's ISA.
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) != 0;
}

bool cpu_has_amx_bf16() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22)) != 0;  // EDX bit 22: AMX-BF16
}

const PrefillGemmKernel prefill_gemm_avx512_exact{"avx512-exact", exact_bytes, exact_pack, exact_run, kGroup, kNr};
const PrefillGemmKernel prefill_gemm_avx512_bf16{"avx512-bf16", bf16_bytes, bf16_pack, bf16_run, kGroup, kNr};

}  // namespace flas::cpu_detail
