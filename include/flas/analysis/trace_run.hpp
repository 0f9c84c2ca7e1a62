#pragma once
// `flas trace` as a library call: steer one prompt's prefill with a flow (Euler, N steps, flow time T),
// record the trajectory of every token, and write its figures as JSON and gnuplot pictures:
//   trace.json               every figure of trajectory.hpp, the PCA plane and the tokens;
//   trace_pca.png            each token's path h_0 -> h_N in the plane of the two leading components;
//   trace_steps.png          curvature, velocity norm and token variation per step;
//   trace_displacement.png   |h_{k+1} - h_k| per token and step (a heat map).
#include <filesystem>
#include <string>

#include "flas/analysis/pca.hpp"
#include "flas/analysis/trajectory.hpp"
#include "flas/condition/concept_encoder.hpp"
#include "flas/eval/factor_plots.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/models/gemma2/flow_steering.hpp"

namespace flas::analysis {

struct TraceRequest {
  std::string prompt, concept_text;
  float flowtime = 1;
  int steps = 3;
  std::vector<float> direction;  // optional reference direction (e.g. the concept's DiffMean vector)
};

struct TraceResult {
  Trajectory trajectory;
  TrajectoryFigures figures;
  Projection2D pca;
  std::vector<std::string> tokens;
};

template <Backend B>
TraceResult trace_flow(const gemma2::Model<B>& model, const io::Tokenizer& tok, const field::FlasFlow<B>& flow,
                       const field::FlowMeta& meta, const TraceRequest& req) {
  FLAS_CHECK(meta.solver == "euler", "flas trace: the flow's solver is '", meta.solver, "'; tracing follows Euler steps");
  FLAS_CHECK(req.flowtime > 0, "flas trace: the flow time must be > 0 (T = 0 does not move anything), got ", req.flowtime);
  const auto& cfg = model.config();
  const auto ids = io::encode_chat(tok, req.prompt, cfg.bos_token_id);
  auto [cids, cmask] = condition::tokenize_concepts(tok, {req.concept_text}, cfg.bos_token_id, cfg.pad_token_id);
  const auto concepts = condition::encode_concepts(model, cids, cmask, meta.concept_layers);
  gemma2::FlowSteering<B, field::FlasFlow<B>, TrajectoryRecorder> tap(
      flow, flow.condition(concepts), {meta.layer, req.steps, {req.flowtime}, {}, 1.0f}, TrajectoryRecorder{0, req.steps, {}});
  Tensor t = Tensor::empty({1, std::int64_t(ids.size())}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  auto cache = model.new_cache(1, t.dim(1));
  model.forward(t, Tensor{}, cache, tap);

  TraceResult r;
  r.trajectory = tap.observer().trajectory;
  finish_euler(r.trajectory, double(req.flowtime));
  r.figures = trajectory_figures(r.trajectory, req.direction);
  std::vector<float> points;  // every token's h_0 .. h_N
  for (std::int64_t s = 0; s < r.trajectory.positions; ++s) {
    for (std::size_t k = 0; k <= r.trajectory.steps(); ++k) {
      const auto& m = k < r.trajectory.steps() ? r.trajectory.states[k] : r.trajectory.final_state;
      points.insert(points.end(), r.trajectory.at(m, s), r.trajectory.at(m, s) + r.trajectory.hidden);
    }
  }
  r.pca = pca_2d(points, std::size_t(r.trajectory.hidden));
  for (auto id : ids) r.tokens.push_back(tok.decode_piece(id));
  return r;
}

inline nlohmann::json trace_json(const TraceResult& r, const TraceRequest& req) {
  nlohmann::json pca = nlohmann::json::array();
  for (const auto& [a, b] : r.pca.coords) pca.push_back({a, b});
  return {{"prompt", req.prompt},
          {"concept", req.concept_text},
          {"flowtime", req.flowtime},
          {"steps", req.steps},
          {"tokens", r.tokens},
          {"times", r.trajectory.times},
          {"curvature", r.figures.curvature},
          {"velocity_norm", r.figures.velocity_norm},
          {"token_variation", r.figures.token_variation},
          {"concept_cosine", r.figures.concept_cosine},
          {"mean_concept_cosine", r.figures.mean_concept_cosine},
          {"displacement", r.figures.displacement},
          {"pca_explained", {r.pca.explained1, r.pca.explained2}},
          {"pca_points", pca},
          {"pca_points_layout", "token-major: token s, states h_0..h_N"}};
}

namespace detail {
inline std::string short_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}
using eval::run_gnuplot;
}  // namespace detail

inline std::vector<std::filesystem::path> write_trace(const TraceResult& r, const TraceRequest& req,
                                                      const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::string json = trace_json(r, req).dump(1);
  io::write_text_atomically(dir / "trace.json", json);
  const std::size_t S = std::size_t(r.trajectory.positions), K = r.trajectory.steps();
  std::string pca_dat, steps_dat, heat_dat;
  for (std::size_t s = 0; s < S; ++s) {
    for (std::size_t k = 0; k <= K; ++k) {
      const auto& c = r.pca.coords[s * (K + 1) + k];
      pca_dat += std::to_string(c.first) + " " + std::to_string(c.second) + "\n";
    }
    pca_dat += "\n\n";
  }
  for (std::size_t k = 0; k < K; ++k)
    steps_dat += std::to_string(k) + " " + std::to_string(r.figures.velocity_norm[k]) + " " +
                 std::to_string(r.figures.token_variation[k]) + " " +
                 (k + 1 < K ? std::to_string(r.figures.curvature[k]) : std::string("NaN")) + "\n";
  for (std::size_t s = 0; s < S; ++s)
    for (std::size_t k = 0; k < K; ++k) heat_dat += std::to_string(k) + " " + std::to_string(s) + " " + std::to_string(r.figures.displacement[s][k]) + "\n";
  for (const auto& [name, text] : {std::pair<std::string, const std::string*>{"trace_pca.dat", &pca_dat},
                                   {"trace_steps.dat", &steps_dat}, {"trace_displacement.dat", &heat_dat}})
    io::write_text_atomically(dir / name, *text);
  using detail::short_number;
  const auto q = [&](const std::string& f) { return eval::gnuplot_quote((dir / f).string()); };
  const auto percent = [](double x) { return std::to_string(int(std::lround(100 * x))) + "% of the variance"; };
  const std::string axes = "set xlabel " + eval::gnuplot_quote("PC1, " + percent(r.pca.explained1)) + "\nset ylabel " +
                           eval::gnuplot_quote("PC2, " + percent(r.pca.explained2)) + "\n";
  const std::string head = "set terminal pngcairo size 900,640 font \"DejaVu Sans,10\"\nset termoption noenhanced\nset grid\n";
  detail::run_gnuplot(dir / "trace_pca.gp",
                      head + "set output " + q("trace_pca.png") + "\nset title " +
                          eval::gnuplot_quote("Token trajectories h_0 -> h_N (T = " + short_number(req.flowtime) +
                                              ", N = " + std::to_string(req.steps) + "): " + req.concept_text.substr(0, 60)) +
                          "\n" + axes + "set key off\nplot " + q("trace_pca.dat") +
                          " using 1:2 with linespoints pt 7 ps 0.6 lw 1.5\n");
  detail::run_gnuplot(dir / "trace_steps.gp",
                      head + "set output " + q("trace_steps.png") +
                          "\nset multiplot layout 1,3 title \"Per Euler step (means over the prompt's tokens)\"\n"
                          "set xlabel \"step k\"\nset xtics 1\nset key off\n"
                          "set title \"cos(v_k, v_k+1) (1 = straight)\"\nset yrange [-1:1]\nplot " + q("trace_steps.dat") +
                          " using 1:4 with linespoints pt 7 lw 2\nset autoscale y\n"
                          "set title \"|v_k|\"\nplot " + q("trace_steps.dat") + " using 1:2 with linespoints pt 7 lw 2\n"
                          "set title \"token variation (0 = one direction)\"\nset yrange [0:1]\nplot " +
                          q("trace_steps.dat") + " using 1:3 with linespoints pt 7 lw 2\nunset multiplot\n");
  detail::run_gnuplot(dir / "trace_displacement.gp",
                      head + "set output " + q("trace_displacement.png") +
                          "\nset title \"|h_k+1 - h_k| per token and step\"\nset xlabel \"step k\"\nset ylabel \"token position\"\n"
                          "set xtics 1\nset key off\nset xrange [-0.5:" + std::to_string(double(K) - 0.5) + "]\nset yrange [" +
                          std::to_string(double(S) - 0.5) + ":-0.5]\n"
                          "plot " + q("trace_displacement.dat") + " using 1:2:3 with image\n");
  return {dir / "trace.json", dir / "trace_pca.png", dir / "trace_steps.png", dir / "trace_displacement.png"};
}

}  // namespace flas::analysis
