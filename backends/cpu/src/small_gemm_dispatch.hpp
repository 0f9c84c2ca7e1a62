// How an ISA's decode kernel walks its weight rows: R rows per pass of bf16_rows<M, R> / f32_rows<M, R>,
// the table rows_per_pass<M>() choosing R, and a wider pass (kLongRowsPerPass) for M <= 2 once a row
// no longer lets the packed x stay in L1 (K > kSingleRowMaxK), or is so short (K <= kShortRowMaxK) that
// one row's FMA chains and horizontal sum cost more than its bytes. Each ISA's unit includes this INSIDE its
// anonymous namespace, after defining those names: every instantiation is then compiled with that
// unit's ISA flags and has internal linkage, so no AVX-512 instance can stand in for an AVX2 caller
// (small_gemm.hpp). No include guard on purpose: one inclusion per kernel unit.

template <int M, int R>
void run_rows(const SmallGemm& g, std::int64_t n0, std::int64_t n1) {
  std::int64_t n = n0;
  if (g.w_bf16) {
    for (; n + R <= n1; n += R) bf16_rows<M, R>(g, n);
    for (; n < n1; ++n) bf16_rows<M, 1>(g, n);
  } else {
    for (; n + R <= n1; n += R) f32_rows<M, R>(g, n);
    for (; n < n1; ++n) f32_rows<M, 1>(g, n);
  }
}

template <int M>
void run_m(const SmallGemm& g, std::int64_t n0, std::int64_t n1) {
  if constexpr (rows_per_pass<M>() == 1 && M <= 2) {
    if (g.K > kSingleRowMaxK || g.K <= kShortRowMaxK) return run_rows<M, kLongRowsPerPass>(g, n0, n1);
  }
  run_rows<M, rows_per_pass<M>()>(g, n0, n1);
}

void run(const SmallGemm& g, std::int64_t n0, std::int64_t n1) {
  switch (g.M) {
    case 1: return run_m<1>(g, n0, n1);
    case 2: return run_m<2>(g, n0, n1);
    case 3: return run_m<3>(g, n0, n1);
    case 4: return run_m<4>(g, n0, n1);
    case 5: return run_m<5>(g, n0, n1);
    case 6: return run_m<6>(g, n0, n1);
    case 7: return run_m<7>(g, n0, n1);
    case 8: return run_m<8>(g, n0, n1);
    default: return;  // callers split M into pieces of at most max_m
  }
}
