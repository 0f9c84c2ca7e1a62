// Trajectory figures against hand-computed values on constructed trajectories (a straight-line field
// must give curvature 1 and token variation 0), PCA against a known plane, and a real trace of the
// bundled model's flow checked against an independent step: h_N = h_0 + sum dt v_k.
#include <doctest/doctest.h>

#include <cmath>

#include "flas/analysis/trace_run.hpp"
#include "flas/backends/cpu.hpp"

using namespace flas;
using analysis::Trajectory;

namespace {
// N Euler steps of a field with the given velocity at (step k, token s), hidden size 3, dt = T / N.
template <class V>
Trajectory euler_trajectory(int steps, int tokens, double T, V velocity) {
  Trajectory tr;
  tr.positions = tokens;
  tr.hidden = 3;
  std::vector<float> h(std::size_t(tokens) * 3, 0.0f);
  for (int s = 0; s < tokens; ++s) h[std::size_t(s) * 3] = float(s);  // distinct starting points
  for (int k = 0; k < steps; ++k) {
    std::vector<float> v(h.size());
    for (int s = 0; s < tokens; ++s) {
      const auto vs = velocity(k, s);
      for (int d = 0; d < 3; ++d) v[std::size_t(s) * 3 + std::size_t(d)] = vs[std::size_t(d)];
    }
    tr.states.push_back(h);
    tr.velocities.push_back(v);
    tr.times.push_back(float(k * T / steps));
    for (std::size_t i = 0; i < h.size(); ++i) h[i] += float(T / steps) * v[i];
  }
  analysis::finish_euler(tr, T);
  return tr;
}
}  // namespace

TEST_CASE("trajectory figures: a straight, token-independent field") {
  const auto tr = euler_trajectory(4, 5, 2.0, [](int, int) { return std::array<float, 3>{0.0f, 3.0f, 4.0f}; });
  const std::vector<float> dir{0.0f, 3.0f, 4.0f};
  const auto f = analysis::trajectory_figures(tr, dir);
  REQUIRE(f.curvature.size() == 3);
  for (double c : f.curvature) CHECK(c == doctest::Approx(1.0));
  for (double n : f.velocity_norm) CHECK(n == doctest::Approx(5.0));
  for (double t : f.token_variation) CHECK(t == doctest::Approx(0.0).epsilon(1e-12));
  CHECK(f.mean_concept_cosine == doctest::Approx(1.0));
  for (const auto& row : f.displacement)
    for (double d : row) CHECK(d == doctest::Approx(5.0 * 0.5));  // |dt v| with dt = 2 / 4
}

TEST_CASE("trajectory figures: a turning field and tokens that disagree") {
  // Step k moves along angle k * 60 degrees in the (x, y) plane: consecutive velocities at cos 60 = 0.5.
  const auto turning = euler_trajectory(3, 2, 3.0, [](int k, int) {
    const double a = k * M_PI / 3;
    return std::array<float, 3>{float(std::cos(a)), float(std::sin(a)), 0.0f};
  });
  const auto f = analysis::trajectory_figures(turning);
  for (double c : f.curvature) CHECK(c == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(f.concept_cosine.empty());
  // Two tokens moving in opposite directions: the mean unit velocity is 0, token variation 1.
  const auto split = euler_trajectory(2, 2, 1.0, [](int, int s) {
    return std::array<float, 3>{s == 0 ? 1.0f : -1.0f, 0.0f, 0.0f};
  });
  for (double t : analysis::trajectory_figures(split).token_variation) CHECK(t == doctest::Approx(1.0));
  // Orthogonal tokens (x and y): |mean unit| = sqrt(2)/2.
  const auto ortho = euler_trajectory(2, 2, 1.0, [](int, int s) {
    return std::array<float, 3>{s == 0 ? 1.0f : 0.0f, s == 0 ? 0.0f : 1.0f, 0.0f};
  });
  for (double t : analysis::trajectory_figures(ortho).token_variation) CHECK(t == doctest::Approx(1.0 - std::sqrt(0.5)));
  CHECK_THROWS_WITH_AS(analysis::trajectory_figures(ortho, std::vector<float>{1.0f}), doctest::Contains("hidden size of 3"), Error);
}

TEST_CASE("PCA: points spread along two known axes") {
  // x = 3a e1' + b e2' with e1' = (1,1,0)/sqrt2, e2' = (0,0,1): variances 9 and 1 along them.
  std::vector<float> pts;
  const double r = 1 / std::sqrt(2.0);
  for (int i = -2; i <= 2; ++i)
    for (int j = -2; j <= 2; ++j) {
      const double a = 3.0 * i, b = 1.0 * j;
      pts.insert(pts.end(), {float(a * r + 10), float(a * r - 4), float(b + 1)});
    }
  const auto p = analysis::pca_2d(pts, 3);
  CHECK(std::abs(p.axis1[0]) == doctest::Approx(r).epsilon(1e-6));
  CHECK(std::abs(p.axis1[1]) == doctest::Approx(r).epsilon(1e-6));
  CHECK(std::abs(p.axis2[2]) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(p.explained1 == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(p.explained2 == doctest::Approx(0.1).epsilon(1e-6));
  CHECK(std::abs(p.coords.front().first) == doctest::Approx(6.0).epsilon(1e-6));  // the point a = -6, b = -2
  CHECK(std::abs(p.coords.front().second) == doctest::Approx(2.0).epsilon(1e-6));
}

TEST_CASE("trace of the shipped flow: recorded states are the Euler steps the model takes") {
  const auto dir = std::filesystem::path(FLAS_PROJECT_MODELS);
  const auto model = gemma2::Model<CpuBackend>::load(dir / "tiny-gemma2-chat");
  const auto tok = io::Tokenizer::load(dir / "tiny-gemma2-chat");
  const auto flow_file = dir / "tiny-gemma2-chat-flow/flow.safetensors";
  const auto meta = field::read_flow_meta(field::flow_meta_path(flow_file));
  const field::FlasFlow<CpuBackend> flow(model.config(), model.inv_freq(), field::load_flow_weights(flow_file, model.config()));
  analysis::TraceRequest req{"How did US states get their names?", "scientific terms related to research findings and their implications",
                             4.0f, 3, {}};
  const auto r = analysis::trace_flow(model, tok, flow, meta, req);
  const auto& tr = r.trajectory;
  REQUIRE(tr.steps() == 3);
  CHECK(tr.positions == std::int64_t(r.tokens.size()));
  // h_{k+1} = h_k + dt v_k (dt = T / N in f32) for every recorded step.
  const float dt = 4.0f / 3.0f;
  double worst = 0;
  for (std::size_t k = 0; k + 1 < tr.steps(); ++k)
    for (std::size_t i = 0; i < tr.states[k].size(); ++i)
      worst = std::max(worst, double(std::abs(tr.states[k + 1][i] - (tr.states[k][i] + dt * tr.velocities[k][i]))));
  CHECK(worst < 1e-4);
  CHECK(tr.times[1] == doctest::Approx(dt));
  for (double c : r.figures.curvature) CHECK((c > -1.0 && c < 1.0 + 1e-9));
  for (double t : r.figures.token_variation) CHECK((t > 0.0 && t < 1.0));
  CHECK(r.pca.explained1 + r.pca.explained2 <= 1.0 + 1e-9);
  CHECK_THROWS_WITH_AS(analysis::trace_flow(model, tok, flow, meta, {"q", "c", 0.0f, 3, {}}), doctest::Contains("flow time must be > 0"), Error);
}
