// AdamW, clipping and the schedule against independent formulations.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "flas/train/adamw.hpp"
#include "flas/train/lr_schedule.hpp"

using namespace flas;

TEST_CASE("AdamW matches the textbook update with bias-corrected moments and decoupled decay") {
  train::AdamW opt({0.9, 0.95, 1e-8, 0.1});
  Tensor w = Tensor::empty({5}, DType::F32), g = Tensor::empty({5}, DType::F32);
  std::vector<double> ref(5), m(5, 0), v(5, 0);
  for (int i = 0; i < 5; ++i) ref[std::size_t(i)] = w.data<float>()[i] = float(0.3 * i - 0.5);
  std::mt19937 rng(3);
  std::normal_distribution<double> n;
  for (int t = 1; t <= 20; ++t) {
    const double lr = 1e-2 * (1 + 0.1 * t);
    for (int i = 0; i < 5; ++i) g.data<float>()[i] = float(n(rng));
    opt.begin_step();
    opt.update("w", w, g, lr);
    for (std::size_t i = 0; i < 5; ++i) {  // Loshchilov & Hutter, Algorithm 2 with Adam's bias correction
      const double gi = g.data<float>()[i];
      m[i] = 0.9 * m[i] + 0.1 * gi;
      v[i] = 0.95 * v[i] + 0.05 * gi * gi;
      const double mhat = m[i] / (1 - std::pow(0.9, t)), vhat = v[i] / (1 - std::pow(0.95, t));
      ref[i] = ref[i] - lr * 0.1 * ref[i] - lr * mhat / (std::sqrt(vhat) + 1e-8);
    }
  }
  for (std::size_t i = 0; i < 5; ++i) CHECK(w.data<float>()[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  CHECK(opt.steps_taken() == 20);
  Tensor bad = Tensor::empty({4}, DType::F32);
  CHECK_THROWS_AS(opt.update("w", w, bad, 0.1), flas::Error);
}

TEST_CASE("gradient clipping scales to the global norm and leaves small gradients alone") {
  Tensor a = Tensor::empty({2}, DType::F32), b = Tensor::empty({1}, DType::F32);
  a.data<float>()[0] = 3, a.data<float>()[1] = 0, b.data<float>()[0] = 4;
  auto each = [&](auto&& f) { f(a), f(b); };
  CHECK(train::clip_grad_norm(each, 1.0) == doctest::Approx(5.0));
  CHECK(a.data<float>()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(b.data<float>()[0] == doctest::Approx(0.8).epsilon(1e-5));
  CHECK(train::clip_grad_norm(each, 10.0) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(b.data<float>()[0] == doctest::Approx(0.8).epsilon(1e-5));
}

TEST_CASE("warmup then cosine, clamped after the last step") {
  train::LrSchedule s{1e-3, 10, 110};
  CHECK(s.at(0) == 0);
  CHECK(s.at(5) == doctest::Approx(5e-4));
  CHECK(s.at(10) == doctest::Approx(1e-3));
  CHECK(s.at(60) == doctest::Approx(5e-4));
  CHECK(s.at(110) == doctest::Approx(0).epsilon(1e-12));
  CHECK(s.at(500) == s.at(110));  // the reference's unclamped cosine would climb back here
}
