#pragma once
// Register-blocked inner products for attention, on GCC/Clang vector extensions: a `vec16` is 16 floats,
// one zmm with AVX-512 and split into narrower registers by the compiler otherwise, so the same code
// serves every ISA the unit is built for. Three shapes:
//   scores:        S[r][0..64) = Σ_d Q[r][d] · Kt[d][0..64)   (Kt: a key block transposed, [hd][64]);
//                  axpy form, no horizontal sums — for many rows, which amortise the transpose
//   scores_direct: S[r][j] = Q[r] · K[j], dot products on keys in place — for decode's few rows
//   values:        O[r][d..) += Σ_j P[r][j] · V[j][d..)
#include <cstdint>
#include <cstring>

namespace flas::cpu_detail {

typedef float vec16 __attribute__((vector_size(64)));

inline constexpr std::int64_t kKeyBlock = 64;  // keys per block (4 vec16 of scores per row)
#if defined(__AVX512F__)
inline constexpr int kRowsPerPass = 4;  // 16 score accumulators + 4 key vectors in 32 zmm
#else
inline constexpr int kRowsPerPass = 2;  // keep spills down with 16 narrower registers
#endif

[[gnu::always_inline]] inline vec16 load16(const float* p) {
  vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void store16(float* p, vec16 v) { std::memcpy(p, &v, sizeof v); }
[[gnu::always_inline]] inline float hsum16(vec16 v) {
  float lanes[16];
  std::memcpy(lanes, &v, sizeof v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

// Rows [r0, r0 + RR) of S (row stride kKeyBlock) from Q (row stride ldq) and Kt ([hd][kKeyBlock]).
template <int RR>
void score_rows(const float* Q, std::int64_t ldq, const float* Kt, std::int64_t hd, float* S) {
  vec16 acc[RR][4] = {};
  for (std::int64_t d = 0; d < hd; ++d) {
    const float* kr = Kt + d * kKeyBlock;
    const vec16 k0 = load16(kr), k1 = load16(kr + 16), k2 = load16(kr + 32), k3 = load16(kr + 48);
    for (int r = 0; r < RR; ++r) {
      const float qv = Q[r * ldq + d];
      acc[r][0] += qv * k0;
      acc[r][1] += qv * k1;
      acc[r][2] += qv * k2;
      acc[r][3] += qv * k3;
    }
  }
  for (int r = 0; r < RR; ++r)
    for (int c = 0; c < 4; ++c) store16(S + r * kKeyBlock + 16 * c, acc[r][c]);
}

// Few rows (decode): S[r][jj] = Q[r] · K[jj] as dot products, four keys at a time, straight from the
// cache layout (row stride ldk) — no transposed copy of the keys. hd must be a multiple of 16.
template <int RR>
void score_rows_direct(const float* Q, std::int64_t ldq, const float* K, std::int64_t ldk, std::int64_t nkeys,
                       std::int64_t hd, float* S) {
  std::int64_t j = 0;
  for (; j + 4 <= nkeys; j += 4) {
    vec16 acc[RR][4] = {};
    for (std::int64_t d = 0; d < hd; d += 16) {
      const vec16 k0 = load16(K + j * ldk + d), k1 = load16(K + (j + 1) * ldk + d);
      const vec16 k2 = load16(K + (j + 2) * ldk + d), k3 = load16(K + (j + 3) * ldk + d);
      for (int r = 0; r < RR; ++r) {
        const vec16 qv = load16(Q + r * ldq + d);
        acc[r][0] += qv * k0;
        acc[r][1] += qv * k1;
        acc[r][2] += qv * k2;
        acc[r][3] += qv * k3;
      }
    }
    for (int r = 0; r < RR; ++r)
      for (int c = 0; c < 4; ++c) S[r * kKeyBlock + j + c] = hsum16(acc[r][c]);
  }
  for (; j < nkeys; ++j) {
    vec16 acc[RR] = {};
    for (std::int64_t d = 0; d < hd; d += 16) {
      const vec16 kv = load16(K + j * ldk + d);
      for (int r = 0; r < RR; ++r) acc[r] += load16(Q + r * ldq + d) * kv;
    }
    for (int r = 0; r < RR; ++r) S[r * kKeyBlock + j] = hsum16(acc[r]);
  }
}

// O[r][d0 .. d0 + 16·C) += Σ_{j < nkeys} P[r][j] · V[j][d0 ..] for RR rows.
template <int RR, int C>
void value_rows(const float* P, const float* V, std::int64_t ldv, std::int64_t nkeys, float* O,
                std::int64_t ldo, std::int64_t d0) {
  vec16 acc[RR][C];
  for (int r = 0; r < RR; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = load16(O + r * ldo + d0 + 16 * c);
  for (std::int64_t j = 0; j < nkeys; ++j) {
    vec16 vv[C];
    for (int c = 0; c < C; ++c) vv[c] = load16(V + j * ldv + d0 + 16 * c);
    for (int r = 0; r < RR; ++r) {
      const float p = P[r * kKeyBlock + j];
      for (int c = 0; c < C; ++c) acc[r][c] += p * vv[c];
    }
  }
  for (int r = 0; r < RR; ++r)
    for (int c = 0; c < C; ++c) store16(O + r * ldo + d0 + 16 * c, acc[r][c]);
}

// Calls fn.template operator()<RR>(r0) over rows [0, rows): blocks of kRowsPerPass, then one block of
// the remaining 1-3 rows (so two or three rows still share each key and value load).
template <class Fn>
void for_row_blocks(std::int64_t rows, Fn&& fn) {
  std::int64_t r = 0;
  for (; r + kRowsPerPass <= rows; r += kRowsPerPass) fn.template operator()<kRowsPerPass>(r);
  switch (rows - r) {
    case 3: fn.template operator()<3>(r); break;
    case 2: fn.template operator()<2>(r); break;
    case 1: fn.template operator()<1>(r); break;
    default: break;
  }
}

// All rows [0, rows) of S, from keys transposed into Kt.
inline void scores(const float* Q, std::int64_t ldq, std::int64_t rows, const float* Kt, std::int64_t hd,
                   float* S) {
  for_row_blocks(rows, [&]<int RR>(std::int64_t r) { score_rows<RR>(Q + r * ldq, ldq, Kt, hd, S + r * kKeyBlock); });
}

// All rows [0, rows) of S, from keys in place (row stride ldk).
inline void scores_direct(const float* Q, std::int64_t ldq, std::int64_t rows, const float* K, std::int64_t ldk,
                          std::int64_t nkeys, std::int64_t hd, float* S) {
  for_row_blocks(rows, [&]<int RR>(std::int64_t r) {
    score_rows_direct<RR>(Q + r * ldq, ldq, K, ldk, nkeys, hd, S + r * kKeyBlock);
  });
}

// All rows of O (width hdp, a multiple of 16): 64 columns at a time, then the remainder.
template <int RR>
void values_for_rows(const float* P, const float* V, std::int64_t ldv, std::int64_t hdp, std::int64_t nkeys,
                     float* O) {
  std::int64_t d0 = 0;
  for (; d0 + 64 <= hdp; d0 += 64) value_rows<RR, 4>(P, V, ldv, nkeys, O, hdp, d0);
  switch ((hdp - d0) / 16) {
    case 3: value_rows<RR, 3>(P, V, ldv, nkeys, O, hdp, d0); break;
    case 2: value_rows<RR, 2>(P, V, ldv, nkeys, O, hdp, d0); break;
    case 1: value_rows<RR, 1>(P, V, ldv, nkeys, O, hdp, d0); break;
    default: break;
  }
}

// O[r] += P[r] · V for all rows; V rows have stride ldv and (at least) hdp readable columns.
inline void values(const float* P, std::int64_t rows, const float* V, std::int64_t ldv, std::int64_t hdp,
                   std::int64_t nkeys, float* O) {
  for_row_blocks(rows, [&]<int RR>(std::int64_t r) {
    values_for_rows<RR>(P + r * kKeyBlock, V, ldv, hdp, nkeys, O + r * hdp);
  });
}

}  // namespace flas::cpu_detail
