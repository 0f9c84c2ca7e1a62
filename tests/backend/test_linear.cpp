// linear() against the f64 oracle: decode and prefill sizes, odd K and N, f32 and bf16 weights (the
// bf16 weights also widened to f32 must give the same answer), bias of either dtype, an in-place call,
// every kernel ISA, and CpuBackend's bf16-activation fast mode.
#include "conformance.hpp"

namespace flas::conformance {
namespace {

struct LinearCase {
  std::int64_t M, N, K;
};

// M covers the decode kernel (1, 3, 8), prefill (9, 17, 33, 128) and the AVX-512 prefill kernel's
// groups of 64 rows with a tail (70, 200), several groups over several k-slices (130 x 6200); K covers multiples of the SIMD widths and their tails, odd
// K (a lone last weight), K > 1152 the oneDNN path's split of bf16 weight rows, K > 1024 / 2048 the
// prefill kernel's k-slices, K > 4096 the decode kernel's switch to several rows per pass; N covers
// row-block, 6-row tile and weight-tile (128) tails.
constexpr LinearCase kCases[] = {{1, 1, 1},    {1, 37, 19},   {1, 130, 256}, {3, 67, 100},  {8, 64, 333},
                                 {8, 129, 48}, {9, 40, 31},   {33, 50, 77},  {33, 257, 64}, {128, 96, 257},
                                 {128, 300, 1000}, {17, 130, 2500}, {2, 5000, 40}, {1, 37, 4500},
                                 {2, 11, 4103}, {70, 23, 2049}, {200, 13, 3},
                                 {130, 40, 6200}};

template <class B>
void check_linear(const LinearCase& c, DType wdt, bool with_bias, DType bias_dt) {
  const Tensor x = random_tensor({c.M, c.K});
  const Tensor w = random_tensor({c.N, c.K}, wdt);
  const Tensor bias = random_tensor({c.N}, bias_dt);
  const Tensor* b = with_bias ? &bias : nullptr;
  const Tensor bias64 = to_f64(bias);
  Tensor ref = Tensor::empty({c.M, c.N}, DType::F64);
  Ref::linear(to_f64(x), w, with_bias ? &bias64 : nullptr, ref);

  for_each_variant<B>([&](const std::string& variant) {
    CAPTURE(variant);
    Tensor y = poisoned({c.M, c.N});
    B::linear(x, w, b, y);
    FLAS_CHECK_CLOSE(y, ref, kReduction);
    if (wdt == DType::BF16) {  // the same weights, widened: same result up to summation order
      Tensor y32 = poisoned({c.M, c.N});
      B::linear(x, convert(w, DType::F32), b, y32);
      FLAS_CHECK_CLOSE(y32, ref, kReduction);
    }
  });
}

TEST_CASE_TEMPLATE("linear matches the f64 reference", B, FLAS_CONFORMANCE_BACKENDS) {
  for (const auto& c : kCases)
    for (DType wdt : {DType::F32, DType::BF16})
      for (bool with_bias : {false, true}) {
        CAPTURE(c.M);
        CAPTURE(c.N);
        CAPTURE(c.K);
        CAPTURE(dtype_name(wdt));
        CAPTURE(with_bias);
        check_linear<B>(c, wdt, with_bias, DType::F32);
      }
}

TEST_CASE_TEMPLATE("linear takes a bf16 bias and rank-3 activations", B, FLAS_CONFORMANCE_BACKENDS) {
  const Tensor x = random_tensor({2, 3, 40});
  const Tensor w = random_tensor({24, 40}, DType::BF16);
  const Tensor bias = random_tensor({24}, DType::BF16);
  const Tensor bias64 = to_f64(bias);
  Tensor ref = Tensor::empty({2, 3, 24}, DType::F64);
  Ref::linear(to_f64(x), w, &bias64, ref);
  Tensor y = poisoned({2, 3, 24});
  B::linear(x, w, &bias, y);
  FLAS_CHECK_CLOSE(y, ref, kReduction);
}

TEST_CASE_TEMPLATE("linear may write over its input", B, FLAS_CONFORMANCE_BACKENDS) {
  for (std::int64_t M : {1, 40}) {
    CAPTURE(M);
    Tensor x = random_tensor({M, 48});
    const Tensor w = random_tensor({48, 48}, DType::BF16);
    Tensor ref = Tensor::empty({M, 48}, DType::F64);
    Ref::linear(to_f64(x), w, nullptr, ref);
    B::linear(x, w, nullptr, x);
    FLAS_CHECK_CLOSE(x, ref, kReduction);
  }
}

// Projections of one x in one launch (q/k/v, gate/up): each output within the f64 oracle's tolerance,
// and at prefill sizes exactly what its own linear gives (same kernel, same k order; the decode
// kernel's row blocks, like a lone call's, depend on how rows are split over threads). Decode and
// prefill sizes, N
// off the 6-row tile, several parts large enough for the tail units, f32 weights, mixed weight
// dtypes (the launch then falls back to one linear each).
TEST_CASE_TEMPLATE("linear_shared_input matches one linear per weight", B, FLAS_CONFORMANCE_BACKENDS) {
  struct Case {
    std::int64_t M, K;
    std::int64_t N[3];
    DType last_dtype;
  };
  // Decode: the weight rows end to end split over threads (total rows x K >= 2^17), one split
  // inside a part at a row that is no multiple of 8; f32 weights; two passes of 8 rows.
  for (const Case& c : {Case{1, 64, {40, 24, 24}, DType::BF16}, Case{8, 1000, {70, 90, 13}, DType::BF16},
                        Case{3, 512, {200, 100, 100}, DType::F32}, Case{12, 800, {100, 77, 30}, DType::BF16},
                        Case{17, 100, {50, 7, 13}, DType::BF16},
                        Case{70, 257, {300, 150, 150}, DType::BF16}, Case{130, 3100, {96, 1000, 20}, DType::BF16},
                        Case{128, 64, {64, 32, 32}, DType::F32}}) {
    CAPTURE(c.M);
    CAPTURE(c.K);
    const Tensor x = random_tensor({c.M, c.K});
    const Tensor w[3] = {random_tensor({c.N[0], c.K}, DType::BF16), random_tensor({c.N[1], c.K}, DType::BF16),
                         random_tensor({c.N[2], c.K}, c.last_dtype)};
    for_each_variant<B>([&](const std::string& variant) {
      CAPTURE(variant);
      Tensor y[3] = {poisoned({c.M, c.N[0]}), poisoned({c.M, c.N[1]}), poisoned({c.M, c.N[2]})};
      linear_shared_input<B>(x, {{&w[0], &y[0]}, {&w[1], &y[1]}, {&w[2], &y[2]}});
      for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        if (c.M > 16) {  // the prefill kernel: each column's sum in k order, whatever the units
          Tensor alone = poisoned({c.M, c.N[i]});
          B::linear(x, w[i], nullptr, alone);
          FLAS_CHECK_CLOSE(y[i], alone, 0.0);
        }
        Tensor ref = Tensor::empty({c.M, c.N[i]}, DType::F64);
        Ref::linear(to_f64(x), w[i], nullptr, ref);
        FLAS_CHECK_CLOSE(y[i], ref, kReduction);
      }
    });
  }
}

TEST_CASE_TEMPLATE("linear_shared_input with outputs sharing bytes acts as one linear after another", B,
                   FLAS_CONFORMANCE_BACKENDS) {
  // Decode and prefill sizes: a fused launch would race on the shared output.
  for (const std::int64_t M : {std::int64_t(4), std::int64_t(130)}) {
    CAPTURE(M);
    const Tensor x = random_tensor({M, 600});
    const Tensor w0 = random_tensor({256, 600}, DType::BF16), w1 = random_tensor({256, 600}, DType::BF16);
    Tensor shared = poisoned({M, 256}), other = poisoned({M, 256});
    linear_shared_input<B>(x, {{&w0, &shared}, {&w1, &shared}, {&w0, &other}});
    Tensor last = poisoned({M, 256}), first = poisoned({M, 256});
    B::linear(x, w1, nullptr, last);
    B::linear(x, w0, nullptr, first);
    FLAS_CHECK_CLOSE(shared, last, 0.0);
    FLAS_CHECK_CLOSE(other, first, 0.0);
  }
}

#if !defined(FLAS_TEST_KOKKOS)  // CpuBackend's own precision mode
TEST_CASE("linear's bf16-activation mode stays within bf16 rounding, and is off by default") {
  CHECK(CpuBackend::precision() == CpuBackend::Precision::exact);
  for (const auto& c : {LinearCase{33, 70, 129}, LinearCase{128, 256, 512}, LinearCase{4, 64, 64},
                        LinearCase{200, 70, 4097}}) {
    CAPTURE(c.M);
    const Tensor x = random_tensor({c.M, c.K});
    const Tensor w = random_tensor({c.N, c.K}, DType::BF16);
    const Tensor bias = random_tensor({c.N});
    const Tensor bias64 = to_f64(bias);
    Tensor ref = Tensor::empty({c.M, c.N}, DType::F64);
    Ref::linear(to_f64(x), w, &bias64, ref);
    Tensor y = poisoned({c.M, c.N});
    CpuBackend::linear(x, w, &bias, y, CpuBackend::Precision::bf16_activations);
    FLAS_CHECK_CLOSE(y, ref, kBf16Activations);
    // The global switch routes plain calls the same way.
    CpuBackend::set_precision(CpuBackend::Precision::bf16_activations);
    Tensor y2 = poisoned({c.M, c.N});
    CpuBackend::linear(x, w, &bias, y2);
    CpuBackend::set_precision(CpuBackend::Precision::exact);
    FLAS_CHECK_CLOSE(y2, y, 0.0);
    // Projections of one x in this mode: one launch of the bf16 kernel, each output as its own call.
    const Tensor w2 = random_tensor({c.N + 5, c.K}, DType::BF16);
    Tensor y3 = poisoned({c.M, c.N}), y4 = poisoned({c.M, c.N + 5}), alone = poisoned({c.M, c.N + 5});
    CpuBackend::set_precision(CpuBackend::Precision::bf16_activations);
    linear_shared_input<CpuBackend>(x, {{&w, &y3}, {&w2, &y4}});
    CpuBackend::set_precision(CpuBackend::Precision::exact);
    CpuBackend::linear(x, w2, nullptr, alone, CpuBackend::Precision::bf16_activations);
    FLAS_CHECK_CLOSE(y4, alone, 0.0);
    Tensor no_bias = poisoned({c.M, c.N});
    CpuBackend::linear(x, w, nullptr, no_bias, CpuBackend::Precision::bf16_activations);
    FLAS_CHECK_CLOSE(y3, no_bias, 0.0);
  }
}

#endif

TEST_CASE_TEMPLATE("linear reports mismatched shapes and dtypes", B, FLAS_CONFORMANCE_BACKENDS) {
  const Tensor x = random_tensor({2, 8});
  const Tensor w = random_tensor({4, 9});
  Tensor y = poisoned({2, 4});
  CHECK_THROWS_AS(B::linear(x, w, nullptr, y), Error);
  const Tensor w_ok = random_tensor({4, 8});
  Tensor y_bad = poisoned({2, 5});
  CHECK_THROWS_AS(B::linear(x, w_ok, nullptr, y_bad), Error);
  const Tensor x64 = to_f64(x);
  CHECK_THROWS_AS(B::linear(x64, w_ok, nullptr, y), Error);
}

}  // namespace
}  // namespace flas::conformance
