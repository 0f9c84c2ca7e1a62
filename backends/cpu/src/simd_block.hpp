#pragma once
// Register-blocked inner products for attention, on GCC/Clang vector extensions: a `vec16` is 16 floats,
// one zmm with AVX-512 and split into narrower registers by the compiler otherwise, so the same code
// serves every ISA the unit is built for. Two shapes, both in "axpy form" (no horizontal sums):
//   scores: S[r][0..64) = Σ_d Q[r][d] · Kt[d][0..64)     (Kt: a key block transposed, [hd][64])
//   values: O[r][d..)  += Σ_j P[r][j] · V[j][d..)         (V: a value block, [64][hdp])
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

// All rows [0, rows) of S.
inline void scores(const float* Q, std::int64_t ldq, std::int64_t rows, const float* Kt, std::int64_t hd,
                   float* S) {
  std::int64_t r = 0;
  for (; r + kRowsPerPass <= rows; r += kRowsPerPass)
    score_rows<kRowsPerPass>(Q + r * ldq, ldq, Kt, hd, S + r * kKeyBlock);
  for (; r < rows; ++r) score_rows<1>(Q + r * ldq, ldq, Kt, hd, S + r * kKeyBlock);
}

// All rows of O (width hdp, a multiple of 16): 64 columns at a time, then the remainder.
template <int RR>
void values_for_rows(const float* P, const float* V, std::int64_t hdp, std::int64_t nkeys, float* O) {
  std::int64_t d0 = 0;
  for (; d0 + 64 <= hdp; d0 += 64) value_rows<RR, 4>(P, V, hdp, nkeys, O, hdp, d0);
  switch ((hdp - d0) / 16) {
    case 3: value_rows<RR, 3>(P, V, hdp, nkeys, O, hdp, d0); break;
    case 2: value_rows<RR, 2>(P, V, hdp, nkeys, O, hdp, d0); break;
    case 1: value_rows<RR, 1>(P, V, hdp, nkeys, O, hdp, d0); break;
    default: break;
  }
}

inline void values(const float* P, std::int64_t rows, const float* V, std::int64_t hdp, std::int64_t nkeys,
                   float* O) {
  std::int64_t r = 0;
  for (; r + kRowsPerPass <= rows; r += kRowsPerPass)
    values_for_rows<kRowsPerPass>(P + r * kKeyBlock, V, hdp, nkeys, O + r * hdp);
  for (; r < rows; ++r) values_for_rows<1>(P + r * kKeyBlock, V, hdp, nkeys, O + r * hdp);
}

}  // namespace flas::cpu_detail
