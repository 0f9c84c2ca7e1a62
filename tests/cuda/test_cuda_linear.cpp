// CudaBackend::linear against the f64 oracle: the decode kernel (M <= 8, vector and scalar paths),
// cuBLAS f32 GEMMs, bf16 weights under both precisions, biases of either dtype, host and device
// weights, in place, rank-3 activations, and the shape checks. Tolerances: conformance.hpp's
// kReduction (f32 sums in another order) for every exact path, kBf16Inputs for bf16_inputs.
#include "cuda_test_support.hpp"

namespace flas::cuda_test {
namespace {

struct LinearCase {
  std::int64_t M, N, K;
};

// As the CPU suite, plus K values that are not multiples of the vector width (scalar decode path).
constexpr LinearCase kCases[] = {{1, 1, 1},     {1, 37, 19},  {1, 130, 256}, {3, 67, 100},     {8, 64, 333},
                                 {8, 129, 48},  {9, 40, 31},  {33, 50, 77},  {33, 257, 64},    {128, 96, 257},
                                 {128, 300, 1000}, {2, 5000, 40}, {4, 24, 2304}, {64, 48, 0}};

void check_linear(const LinearCase& c, DType wdt, bool with_bias, CudaBackend::Precision precision) {
  const Tensor x = random_tensor({c.M, c.K});
  const Tensor w = random_tensor({c.N, c.K}, wdt);
  const Tensor bias = random_tensor({c.N});
  const Tensor bias64 = to_f64(bias);
  Tensor ref = Tensor::empty({c.M, c.N}, DType::F64);
  Ref::linear(to_f64(x), w, with_bias ? &bias64 : nullptr, ref);

  PrecisionScope scope(precision);
  const bool rounded = wdt == DType::BF16 && precision == CudaBackend::Precision::bf16_inputs &&
                       c.M > CudaBackend::small_m_max;
  const double tol = rounded ? kBf16Inputs : kReduction;
  const CudaTensor xd = dev(x);
  CudaTensor y = poisoned_dev({c.M, c.N});
  CudaBackend::linear(xd, w, with_bias ? &bias : nullptr, y);  // host weight, through the weight cache
  FLAS_CHECK_CLOSE(host(y), ref, tol);

  const CudaTensor wd = dev(w), bd = dev(bias);
  CudaTensor y2 = poisoned_dev({c.M, c.N});
  CudaBackend::linear(xd, wd, with_bias ? &bd : nullptr, y2);  // device weight
  FLAS_CHECK_CLOSE(host(y2), ref, tol);
}

TEST_CASE("cuda linear matches the f64 reference") {
  for (const auto& c : kCases)
    for (DType wdt : {DType::F32, DType::BF16})
      for (bool with_bias : {false, true})
        for (auto precision : {CudaBackend::Precision::exact, CudaBackend::Precision::bf16_inputs}) {
          CAPTURE(c.M);
          CAPTURE(c.N);
          CAPTURE(c.K);
          CAPTURE(dtype_name(wdt));
          CAPTURE(with_bias);
          CAPTURE(int(precision));
          check_linear(c, wdt, with_bias, precision);
        }
}

TEST_CASE("cuda linear: a bf16 bias, rank-3 activations, an unaligned weight view") {
  const Tensor x = random_tensor({2, 3, 40});
  const Tensor w = random_tensor({24, 40}, DType::BF16);
  const Tensor bias = random_tensor({24}, DType::BF16);
  const Tensor bias64 = to_f64(bias);
  Tensor ref = Tensor::empty({2, 3, 24}, DType::F64);
  Ref::linear(to_f64(x), w, &bias64, ref);
  CudaTensor y = poisoned_dev({2, 3, 24});
  CudaBackend::linear(dev(x), w, &bias, y);
  FLAS_CHECK_CLOSE(host(y), ref, kReduction);

  // Rows 1..N of a larger weight: the view starts 2·K bytes in, not 16-byte aligned for K = 37.
  const Tensor big = random_tensor({30, 37}, DType::BF16);
  const Tensor view = big.slice(1, 30);
  const Tensor x2 = random_tensor({3, 37});
  Tensor ref2 = Tensor::empty({3, 29}, DType::F64);
  Ref::linear(to_f64(x2), view, nullptr, ref2);
  CudaTensor y2 = poisoned_dev({3, 29});
  CudaBackend::linear(dev(x2), view, nullptr, y2);
  FLAS_CHECK_CLOSE(host(y2), ref2, kReduction);
}

TEST_CASE("cuda linear may write over its input") {
  for (std::int64_t M : {1, 40}) {
    CAPTURE(M);
    const Tensor x = random_tensor({M, 48});
    const Tensor w = random_tensor({48, 48}, DType::BF16);
    Tensor ref = Tensor::empty({M, 48}, DType::F64);
    Ref::linear(to_f64(x), w, nullptr, ref);
    PrecisionScope exact(CudaBackend::Precision::exact);
    CudaTensor xd = dev(x);
    CudaBackend::linear(xd, w, nullptr, xd);
    FLAS_CHECK_CLOSE(host(xd), ref, kReduction);
  }
}

TEST_CASE("cuda linear reports mismatched shapes and dtypes") {
  const CudaTensor x = dev(random_tensor({2, 8}));
  const Tensor w = random_tensor({4, 9});
  CudaTensor y = poisoned_dev({2, 4});
  CHECK_THROWS_AS(CudaBackend::linear(x, w, nullptr, y), Error);
  const Tensor w_ok = random_tensor({4, 8});
  CudaTensor y_bad = poisoned_dev({2, 5});
  CHECK_THROWS_AS(CudaBackend::linear(x, w_ok, nullptr, y_bad), Error);
  const CudaTensor x64 = dev(to_f64(random_tensor({2, 8})));
  CHECK_THROWS_AS(CudaBackend::linear(x64, w_ok, nullptr, y), Error);
  const Tensor w_i64 = convert(w_ok, DType::I64);
  CHECK_THROWS_AS(CudaBackend::linear(x, w_i64, nullptr, y), Error);
}

}  // namespace
}  // namespace flas::cuda_test
