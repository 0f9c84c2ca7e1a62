// ode::StateAlgebra<CudaTensor> (cuda_ode.hpp) against the host tensor algebra: the same field on the
// same start, solved with every fixed-step method (shared clock, and FLAS's per-row flow time), gives
// the same bits on device states — scale_sum rounds exactly as the host algebra; Dopri5 agrees to 1e-10
// (its norms are the same terms summed in another order); the reductions agree to 1e-13; the host
// fallback for arbitrary element operations gives the host's bits.
#include <cmath>

#include "cuda_test_support.hpp"
#include "flas/backends/cuda_ode.hpp"
#include "flas/ode/ode.hpp"

namespace flas::cuda_test {
namespace {

using namespace flas::ode;

// v = f(h, t) element-wise on the host; the device field reads h back, applies it and uploads v, so
// both sides see identical field values and only the stepper arithmetic differs between them.
template <class E>
void toy_velocity(const Tensor& h, RowTimes t, Tensor& v) {
  const std::int64_t rows = h.dim(0), per = h.numel() / rows;
  for (std::int64_t r = 0; r < rows; ++r) {
    const double tr = t[std::size_t(r)];
    for (std::int64_t i = r * per; i < (r + 1) * per; ++i) {
      const E x = h.data<E>()[i];
      v.data<E>()[i] = E(std::tanh(double(x)) * (1.0 + tr) - 0.25 * tr * double(x) + 0.1 * std::sin(2.0 * tr));
    }
  }
}

template <class E>
auto host_field() {
  return make_field([](const Tensor& h, RowTimes t, Tensor& v) { toy_velocity<E>(h, t, v); });
}
template <class E>
auto device_field() {
  return make_field([](const CudaTensor& h, RowTimes t, CudaTensor& v) {
    const Tensor hh = host(h);
    Tensor vh = Tensor::empty(hh.shape(), hh.dtype());
    toy_velocity<E>(hh, t, vh);
    CudaBackend::copy(v, vh);
  });
}

template <class Method, class E, class Axis, class Schedule>
void compare(const Axis& axis, const Schedule& schedule, double tol) {
  const Tensor y0 = convert(random_tensor({3, 4, 5}, DType::F32, -2.0f, 2.0f), dtype_of<E>());
  auto hf = host_field<E>();
  auto df = device_field<E>();
  const auto want = integrate<Method>(hf, y0, axis, schedule);
  const auto got = integrate<Method>(df, dev(y0), axis, schedule);
  REQUIRE(got.ys.size() == want.ys.size());
  for (std::size_t i = 0; i < want.ys.size(); ++i) {
    CAPTURE(i);
    FLAS_CHECK_CLOSE(host(got.ys[i]), want.ys[i], tol);
  }
}

template <class E>
void fixed_step_methods_match() {
  const Times times{{0.0, 0.7, 2.0}};
  compare<Euler, E>(times, StepSize{0.1}, 0.0);
  compare<Midpoint, E>(times, StepSize{0.1}, 0.0);
  compare<Rk4Classic, E>(times, StepSize{0.1}, 0.0);
  compare<Rk4ThreeEighths, E>(times, StepSize{0.1}, 0.0);
  const PerRowTime<E> per_row{{2.0, 0.5, 1.3}};
  compare<Euler, E>(per_row, StepCount{3}, 0.0);
  compare<Rk4Classic, E>(per_row, StepCount{4}, 0.0);
}

TEST_CASE("cuda ode: fixed-step methods on device states give the host algebra's bits") {
  fixed_step_methods_match<float>();
  fixed_step_methods_match<double>();
}

TEST_CASE("cuda ode: Dopri5 on device states follows the host solve") {
  compare<Dopri5, double>(Times{{0.0, 0.7, 2.0}}, Tolerances{.rtol = 1e-8, .atol = 1e-10}, 1e-10);
}

TEST_CASE("cuda ode: scale_sum with per-row coefficients and many terms, reductions, the host fallback") {
  const Tensor y0 = to_f64(random_tensor({4, 50})), x = to_f64(random_tensor({4, 50}));
  std::vector<Tensor> ks;
  std::vector<CudaTensor> kd;
  for (int j = 0; j < 9; ++j) {  // more terms than the host fuses at once (7)
    ks.push_back(to_f64(random_tensor({4, 50})));
    kd.push_back(dev(ks.back()));
  }
  const std::vector<double> a{0.5, 0.0, -1.25, 2.0, 1.0 / 3.0, 0.125, -0.75, 1.5, 0.2};
  const std::vector<double> dt{0.1, 0.3, 1.0 / 7.0, 2.0};
  std::vector<const Tensor*> kp;
  std::vector<const CudaTensor*> kdp;
  for (int j = 0; j < 9; ++j) kp.push_back(&ks[std::size_t(j)]), kdp.push_back(&kd[std::size_t(j)]);
  Tensor want = clone(y0);
  ops::scale_sum(want, &x, RowValues(dt), std::span<const double>(a), std::span<const Tensor* const>(kp));
  CudaTensor got = dev(y0);
  const CudaTensor xd = dev(x);
  ops::scale_sum(got, &xd, RowValues(dt), std::span<const double>(a), std::span<const CudaTensor* const>(kdp));
  FLAS_CHECK_CLOSE(host(got), want, 0.0);

  auto close = [](double g, double w) { return std::abs(g - w) <= 1e-13 * std::max(1.0, std::abs(w)); };
  CHECK(close(ops::dot(xd, kd[0]), ops::dot(x, ks[0])));
  CHECK(close(ops::sum_sq(xd), ops::sum_sq(x)));
  CHECK(ops::max_abs(xd) == ops::max_abs(x));
  CHECK(close(ops::error_norm(kd[1], xd, kd[2], 1e-6, 1e-3), ops::error_norm(ks[1], x, ks[2], 1e-6, 1e-3)));
  CHECK(close(ops::scaled_norm(kd[1], &kd[3], xd, 1e-6, 1e-3), ops::scaled_norm(ks[1], &ks[3], x, 1e-6, 1e-3)));
  CHECK(close(ops::scaled_norm(kd[1], static_cast<const CudaTensor*>(nullptr), xd, 1e-6, 1e-3),
              ops::scaled_norm(ks[1], static_cast<const Tensor*>(nullptr), x, 1e-6, 1e-3)));

  Tensor scaled = clone(x);
  ops::scale(scaled, 0.37);
  CudaTensor scaled_d = dev(x);
  ops::scale(scaled_d, 0.37);  // no device kernel: the host fallback of for_each
  FLAS_CHECK_CLOSE(host(scaled_d), scaled, 0.0);
  CHECK(ops::all_finite(scaled_d));
}

}  // namespace
}  // namespace flas::cuda_test
