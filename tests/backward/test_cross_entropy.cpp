// cross_entropy (mean over non-ignored rows, with its gradient) against finite differences and closed
// forms, shift_labels against HF's logits[:, :−1] / labels[:, 1:] convention, and the TrainableBackend
// concept itself.
#include "backward_test_support.hpp"

namespace flas::backward_test {
namespace {

Tensor labels_of(const Shape& shape, std::initializer_list<std::int64_t> values) {
  Tensor t = Tensor::empty(shape, DType::I64);
  std::int64_t i = 0;
  for (std::int64_t v : values) t.data<std::int64_t>()[i++] = v;
  FLAS_CHECK(i == t.numel(), "labels_of: ", i, " values for shape ", shape);
  return t;
}

TEST_CASE("cross_entropy: dlogits against finite differences, with ignored rows") {
  Rng rng(201);
  struct Case {
    Shape logits;
    double ignored_fraction;
  };
  const Case cases[] = {{{1, 2}, 0.0}, {{5, 3}, 0.4}, {{6, 11}, 0.3}, {{2, 3, 7}, 0.5}, {{4, 1}, 0.0}};
  for (const Case& c : cases) {
    CAPTURE(c.logits);
    const std::int64_t V = c.logits[-1], M = c.logits.numel() / V;
    Tensor logits = rng.uniform(c.logits, -5, 5);
    Tensor labels = Tensor::empty(Shape{M}, DType::I64);
    for (std::int64_t m = 0; m < M; ++m)
      labels.data<std::int64_t>()[m] = (m > 0 && rng.integer(0, 99) < c.ignored_fraction * 100)
                                            ? ignore_label : rng.integer(0, V - 1);
    auto objective = [&] { return Ops64::cross_entropy(logits, labels, nullptr); };
    Tensor dlogits = poisoned(c.logits);
    const double loss = Ops64::cross_entropy(logits, labels, &dlogits);
    CHECK(loss == objective());
    check_close("cross_entropy dlogits", dlogits, fd_gradient(logits, objective), kFdBound);

    // The loss is the mean over counted rows of logsumexp − logit[label].
    double total = 0;
    std::int64_t count = 0;
    for (std::int64_t m = 0; m < M; ++m) {
      const std::int64_t y = labels.data<std::int64_t>()[m];
      if (y == ignore_label) {
        for (std::int64_t c2 = 0; c2 < V; ++c2) CHECK(dlogits.data<double>()[m * V + c2] == 0);
        continue;
      }
      double z = 0;
      for (std::int64_t c2 = 0; c2 < V; ++c2) z += std::exp(logits.data<double>()[m * V + c2]);
      total += std::log(z) - logits.data<double>()[m * V + y];
      ++count;
    }
    CHECK(loss == doctest::Approx(total / double(count)).epsilon(1e-13));

    Tensor in_place = clone(logits);
    CHECK(Ops64::cross_entropy(in_place, labels, &in_place) == loss);
    CHECK(testing::max_rel_diff(in_place, dlogits) == 0);
  }
}

TEST_CASE("cross_entropy: closed forms, all rows ignored, bad labels") {
  const Tensor zero_logits = zeros({3, 8}, DType::F64);
  const Tensor labels = labels_of({3}, {0, 7, ignore_label});
  CHECK(Ops64::cross_entropy(zero_logits, labels, nullptr) == doctest::Approx(std::log(8.0)).epsilon(1e-15));

  Tensor d = poisoned({3, 8});
  const Tensor all_ignored = labels_of({3}, {ignore_label, ignore_label, ignore_label});
  CHECK(Ops64::cross_entropy(zero_logits, all_ignored, &d) == 0);
  for (std::int64_t i = 0; i < d.numel(); ++i) CHECK(d.data<double>()[i] == 0);

  CHECK_THROWS_AS(Ops64::cross_entropy(zero_logits, labels_of({3}, {0, 8, 1}), nullptr), Error);
  CHECK_THROWS_AS(Ops64::cross_entropy(zero_logits, labels_of({3}, {0, -1, 1}), nullptr), Error);
  CHECK_THROWS_AS(Ops64::cross_entropy(zero_logits, labels_of({2}, {0, 1}), nullptr), Error);
}

TEST_CASE("shift_labels + cross_entropy over all positions equals HF's shifted loss") {
  const Tensor labels = labels_of({2, 4}, {5, 1, ignore_label, 2, 3, 3, 0, 4});
  const Tensor shifted = shift_labels(labels);
  const std::int64_t expect[] = {1, ignore_label, 2, ignore_label, 3, 0, 4, ignore_label};
  for (int i = 0; i < 8; ++i) CHECK(shifted.data<std::int64_t>()[i] == expect[i]);

  Rng rng(202);
  const std::int64_t B = 2, S = 4, V = 6;
  const Tensor logits = rng.uniform({B, S, V}, -3, 3);
  Tensor dlogits = poisoned({B, S, V});
  const double ours = Ops64::cross_entropy(logits, shifted, &dlogits);

  // HF: logits[:, :−1] against labels[:, 1:], built by hand.
  Tensor hf_logits = Tensor::empty({B, S - 1, V}, DType::F64), hf_labels = Tensor::empty({B, S - 1}, DType::I64);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s + 1 < S; ++s) {
      hf_labels.data<std::int64_t>()[b * (S - 1) + s] = labels.data<std::int64_t>()[b * S + s + 1];
      for (std::int64_t c = 0; c < V; ++c)
        hf_logits.data<double>()[(b * (S - 1) + s) * V + c] = logits.data<double>()[(b * S + s) * V + c];
    }
  Tensor hf_dlogits = poisoned({B, S - 1, V});
  CHECK(ours == doctest::Approx(Ops64::cross_entropy(hf_logits, hf_labels, &hf_dlogits)).epsilon(1e-15));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < V; ++c) {
      for (std::int64_t s = 0; s + 1 < S; ++s)
        CHECK(dlogits.data<double>()[(b * S + s) * V + c] == hf_dlogits.data<double>()[(b * (S - 1) + s) * V + c]);
      CHECK(dlogits.data<double>()[(b * S + S - 1) * V + c] == 0);  // the last position has no target
    }
}

// A backend with forward ops only: it is a Backend, not a TrainableBackend.
struct ForwardOnlyBackend : ScalarBackend<double> {};

TEST_CASE("TrainableBackend requires a BackwardOps specialisation") {
  static_assert(TrainableBackend<ScalarBackend<double>>);
  static_assert(TrainableBackend<ScalarBackend<float>>);
  static_assert(Backend<ForwardOnlyBackend>);
  static_assert(!TrainableBackend<ForwardOnlyBackend>);
  CHECK(true);
}

}  // namespace
}  // namespace flas::backward_test
