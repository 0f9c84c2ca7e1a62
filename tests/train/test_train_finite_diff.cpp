// The training maths against central finite differences in f64 (ScalarBackend<double>) on a random tiny
// model (train_test_rig.hpp): one flow evaluation's VJP (∂h and ∂θ, every flow variant), the diversity
// loss, the chunked LM head, and the whole FLAS loss through N Euler steps and the upper layers.
//
// Bound: max|Δ| / max|ref| ≤ 1e-6 per tensor over the sampled entries, ref = the analytic gradient (the
// metric of tests/backward: step 1e-6·max(1, |x|), FD truncation ~1e-12, rounding ~1e-10 relative).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "flas/backends/scalar_backward.hpp"
#include "flas/train/flas_loss.hpp"
#include "support/compare.hpp"
#include "train_test_rig.hpp"

using namespace flas;
using namespace flas::train_test;
using F64 = ScalarBackend<double>;

namespace {

constexpr double fd_bound = 1e-6;

double central_difference(double& x, const std::function<double()>& objective) {
  const double saved = x, h = 1e-6 * std::max(1.0, std::abs(saved));
  x = saved + h;
  const double up = objective();
  x = saved - h;
  const double down = objective();
  x = saved;
  return (up - down) / (2 * h);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(element_as_double(t, i)));
  return m;
}

// Compares `picks` random entries of `analytic` with central differences of `objective` in `x` (F64).
// Returns max|Δ| / max|analytic| (over the whole tensor).
double sampled_fd_error(Tensor& x, const Tensor& analytic, int picks, Rng& rng, const std::function<double()>& objective) {
  const double scale = max_abs(analytic);
  double worst = 0;
  for (int p = 0; p < picks; ++p) {
    const std::int64_t i = rng.integer(0, x.numel() - 1);
    const double fd = central_difference(x.data<double>()[i], objective);
    worst = std::max(worst, std::abs(fd - element_as_double(analytic, i)));
  }
  return scale == 0 ? worst : worst / scale;
}

double weighted_sum(const Tensor& y, const Tensor& r) {
  double s = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += element_as_double(y, i) * element_as_double(r, i);
  return s;
}

struct Rig {
  Rng rng{11};
  gemma2::Config cfg = tiny_config();
  gemma2::Weights base_w = random_base(cfg, rng);
  gemma2::Model<F64> base{cfg, base_w};
  int layer = 1;
};

// Every parameter of the flow against FD of `objective`, and the worst error per check printed.
void check_parameters(const char* what, field::FlowWeights& weights, field::FlowWeights& grads, int picks, Rng& rng,
                      const std::function<double()>& objective) {
  std::vector<Tensor*> g;
  field::for_each_flow_parameter(grads, [&](const std::string&, Tensor& t) { g.push_back(&t); });
  std::size_t i = 0;
  double worst = 0;
  field::for_each_flow_parameter(weights, [&](const std::string& name, Tensor& w) {
    const double err = sampled_fd_error(w, *g[i++], picks, rng, objective);
    worst = std::max(worst, err);
    INFO(what << " " << name << ": max|Δ|/max|ref| = " << err);
    CHECK(err <= fd_bound);
  });
  std::printf("[train fd] %-40s worst max|d|/max|ref| %.2e over %zu parameters\n", what, worst, i);
}

}  // namespace

TEST_CASE("flow VJP of one evaluation against central differences (f64, every variant)") {
  Rig rig;
  auto batch = random_batch(rig.cfg, {7, 5, 6}, 2, {4, 2, 3}, {0, 1, 2}, 1.0f, 1, rig.rng);
  const train::BatchLayout at = train::BatchLayout::of(3, 7, batch.attention_mask);
  const auto concepts = condition::encode_concepts(rig.base, batch.concept_ids, batch.concept_mask);
  const Tensor h = rig.rng.uniform({3, 7, rig.cfg.hidden_size}, 2.0, DType::F64);
  const Tensor r = rig.rng.uniform(h.shape(), 1.0, DType::F64);
  const std::vector<double> t{0.25, 0.875, 1.625};  // f32-exact row times
  const std::vector<float> tf(t.begin(), t.end());

  field::FlowSwitches full, pooled, no_self, no_time, no_mlp;
  pooled.cross_attn = false, pooled.pooled = true;
  no_self.self_attn = false;
  no_time.time = false;
  no_mlp.mlp = false;
  for (const auto& [name, sw] : {std::pair{"flow vjp: full", full}, {"flow vjp: pooled", pooled},
                                 {"flow vjp: no self-attention", no_self}, {"flow vjp: no time", no_time},
                                 {"flow vjp: no mlp", no_mlp}}) {
    field::FlasFlow<F64> flow(rig.cfg, rig.base.inv_freq(),
                              as_dtype(random_flow(rig.cfg, rig.base_w, rig.layer, sw, 2, rig.rng), DType::F64));
    auto grads = train::zero_flow_gradients(flow.weights(), DType::F64);
    const auto cond = train::record_conditioning(flow, concepts, rig.base.inv_freq());
    train::FlowOdeField<F64> field(flow, cond, at, rig.base.inv_freq(), &grads, false);
    Tensor v = Tensor::empty(h.shape(), DType::F64), cot_h = Tensor::empty(h.shape(), DType::F64);
    const ode::EvalContext ctx{};
    field(h, ode::RowTimes(std::span<const double>(t)), ctx, v);
    field.vjp(h, ode::RowTimes(std::span<const double>(t)), ctx, r, cot_h, {});
    field.finish();

    auto objective_at = [&](const Tensor& hh) {
      const auto c2 = train::record_conditioning(flow, concepts, rig.base.inv_freq());  // depends on θ
      return weighted_sum(train::flow_velocity<F64>(flow, c2, hh, tf, at, rig.base.inv_freq()), r);
    };
    check_parameters(name, flow.weights(), grads, 3, rig.rng, [&] { return objective_at(h); });
    Tensor hp = clone(h);
    const double dh_err = sampled_fd_error(hp, cot_h, 24, rig.rng, [&] { return objective_at(hp); });
    INFO(name << " dL/dh: " << dh_err);
    CHECK(dh_err <= fd_bound);
  }
}

TEST_CASE("diversity loss and its gradient against central differences (f64)") {
  Rng rng(5);
  const Tensor mask = [] {
    Tensor m = zeros({4, 5}, DType::U8);
    const int len[4] = {5, 3, 4, 1};
    for (int b = 0; b < 4; ++b)
      for (int s = 0; s < len[b]; ++s) m.data<std::uint8_t>()[b * 5 + s] = 1;
    return m;
  }();
  const train::BatchLayout at = train::BatchLayout::of(4, 5, mask);
  Tensor v = rng.uniform({4, 5, 6}, 1.0, DType::F64);
  const std::vector<std::int64_t> ids{3, 7, 3, 9};  // rows 0 and 2 share a concept: not paired
  Tensor dv = Tensor::empty(v.shape(), DType::F64);
  const double loss = train::diversity_loss<F64>(v, at, ids, &dv, 0.7);
  // By definition, pair by pair.
  auto mean_row = [&](int b) {
    std::vector<double> m(6, 0.0);
    double n = 0, nrm = 0;
    for (int s = 0; s < 5; ++s)
      if (at.real(b, s)) {
        n += 1;
        for (int d = 0; d < 6; ++d) m[std::size_t(d)] += v.data<double>()[(b * 5 + s) * 6 + d];
      }
    for (double& x : m) x /= n;
    for (double x : m) nrm += x * x;
    for (double& x : m) x /= std::sqrt(nrm);
    return m;
  };
  double sum = 0;
  int pairs = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      if (ids[std::size_t(i)] != ids[std::size_t(j)]) {
        const auto a = mean_row(i), b = mean_row(j);
        for (int d = 0; d < 6; ++d) sum += a[std::size_t(d)] * b[std::size_t(d)];
        ++pairs;
      }
  CHECK(pairs == 10);
  CHECK(std::abs(loss - sum / pairs) <= 1e-14);
  Tensor vp = clone(v);
  const double err = sampled_fd_error(vp, dv, 40, rng, [&] { return 0.7 * train::diversity_loss<F64>(vp, at, ids, nullptr); });
  CHECK(err <= fd_bound);
  for (int s = 3; s < 5; ++s) CHECK(dv.data<double>()[(1 * 5 + s) * 6] == 0.0);  // padding gets no gradient
  // One concept for every row: no pair, a zero loss and a zero gradient.
  const std::vector<std::int64_t> same{1, 1, 1, 1};
  CHECK(train::diversity_loss<F64>(v, at, same, &dv) == 0.0);
  CHECK(max_abs(dv) == 0.0);
}

TEST_CASE("LM head: chunked rows give the loss and gradient of one chunk (f64)") {
  Rig rig;
  auto batch = random_batch(rig.cfg, {7, 4, 6}, 2, {2, 2, 2}, {0, 1, 2}, 1.0f, 1, rig.rng);
  const Tensor h = rig.rng.uniform({3, 7, rig.cfg.hidden_size}, 2.0, DType::F64);
  Tensor d_one = Tensor::empty(h.shape(), DType::F64), d_many = Tensor::empty(h.shape(), DType::F64);
  const auto one = train::lm_head_loss<F64>(rig.base, h, batch.labels, &d_one);
  const auto many = train::lm_head_loss<F64>(rig.base, h, batch.labels, &d_many, 2 * rig.cfg.vocab_size);  // 2 rows
  CHECK(one.tokens == 11);  // 5 + 2 + 4 response labels
  CHECK(many.tokens == one.tokens);
  CHECK(std::abs(many.loss - one.loss) <= 1e-12 * one.loss);
  CHECK(testing::max_rel_diff(d_many, d_one) <= 1e-12);
  Tensor hp = clone(h);
  const double err = sampled_fd_error(hp, d_one, 30, rig.rng, [&] {
    return train::lm_head_loss<F64>(rig.base, hp, batch.labels, nullptr).loss;
  });
  CHECK(err <= fd_bound);
}

TEST_CASE("base model: dLoss/dh of a layer output against central differences (f64, padded batch)") {
  Rig rig;
  auto batch = random_batch(rig.cfg, {7, 5, 6}, 2, {2, 2, 2}, {0, 1, 2}, 1.0f, 1, rig.rng);
  const auto [loss, dh] =
      train::lm_loss_grad_wrt_layer_output(rig.base, 0, batch.input_ids, batch.labels, batch.attention_mask);
  const train::BatchLayout at = train::BatchLayout::of(3, 7, batch.attention_mask);
  Tensor h = train::base_prefix_forward(rig.base, 0, batch.input_ids, at);
  train::UpperStack<F64> upper(rig.base, 1);
  CHECK(upper.forward(h, batch.labels, at, false).loss == loss);
  const double err = sampled_fd_error(h, dh, 40, rig.rng, [&] { return upper.forward(h, batch.labels, at, false).loss; });
  CHECK(err <= fd_bound);
}

TEST_CASE("whole FLAS loss: every flow parameter's gradient against central differences (f64)") {
  Rig rig;
  // Rows 0 and 2 carry the same concept (not paired by the diversity loss); T/N is not exact in f32.
  auto batch = random_batch(rig.cfg, {7, 5, 6}, 2, {4, 2, 4}, {0, 1, 0}, 1.3f, 3, rig.rng);
  for (std::int64_t s = 0; s < batch.concept_ids.dim(1); ++s)
    batch.concept_ids.data<std::int64_t>()[2 * batch.concept_ids.dim(1) + s] = batch.concept_ids.data<std::int64_t>()[s];
  field::FlasFlow<F64> flow(rig.cfg, rig.base.inv_freq(),
                            as_dtype(random_flow(rig.cfg, rig.base_w, rig.layer, {}, 2, rig.rng), DType::F64));
  const train::FlasLoss<F64> loss(rig.base, rig.layer, 0.3f, train::GradientStrategy::direct);
  auto grads = train::zero_flow_gradients(flow.weights(), DType::F64);
  const auto parts = loss(flow, batch, &grads);
  CHECK(parts.div_loss != 0.0);
  CHECK(parts.loss == parts.lm_loss + double(0.3f) * parts.div_loss);
  check_parameters("whole loss (direct)", flow.weights(), grads, 2, rig.rng,
                   [&] { return loss(flow, batch, nullptr).loss; });

  // The same gradient through the checkpointed strategy, bit for bit.
  const train::FlasLoss<F64> ckpt(rig.base, rig.layer, 0.3f, train::GradientStrategy::checkpointed);
  auto g2 = train::zero_flow_gradients(flow.weights(), DType::F64);
  CHECK(ckpt(flow, batch, &g2).loss == parts.loss);
  std::vector<Tensor*> a;
  field::for_each_flow_parameter(grads, [&](const std::string&, Tensor& t) { a.push_back(&t); });
  std::size_t i = 0;
  field::for_each_flow_parameter(g2, [&](const std::string& name, Tensor& t) {
    INFO(name);
    CHECK(std::memcmp(t.raw(), a[i++]->raw(), t.bytes()) == 0);
  });
}
