// flas trace: look inside a flow (include/flas/analysis): the trajectory of every prompt token through
// the flow's Euler steps, its curvature, velocity norms, token variation, displacement and (given
// DiffMean vectors) its cosine with the concept's DiffMean direction, as JSON and pictures.
#include <cstdio>

#include "commands.hpp"
#include "flas/analysis/trace_run.hpp"
#include "flas/eval/diffmean.hpp"

namespace flas::cli {

namespace {
struct TraceArgs {
  std::string model_dir, flow, diffmean, out = "trace-out";
  analysis::TraceRequest req;
};

void run_trace(TraceArgs a) {
  const auto model = gemma2::Model<HostBackend>::load(a.model_dir);
  const auto tok = io::Tokenizer::load(a.model_dir);
  const auto meta = field::read_flow_meta(field::flow_meta_path(a.flow));
  const field::FlasFlow<HostBackend> flow(model.config(), model.inv_freq(), field::load_flow_weights(a.flow, model.config()));
  if (a.req.flowtime < 0) a.req.flowtime = meta.flowtime;
  if (a.req.steps <= 0) a.req.steps = meta.steps;
  if (!a.diffmean.empty()) {
    const auto dm = eval::load_diffmean(a.diffmean);
    FLAS_CHECK(dm.layer == meta.layer, a.diffmean, ": DiffMean vectors of layer ", dm.layer, ", the flow steers layer ", meta.layer);
    const Tensor row = dm.directions[dm.index_of(a.req.concept_text)];
    a.req.direction.assign(row.data<float>(), row.data<float>() + row.numel());
  }
  const auto r = analysis::trace_flow(model, tok, flow, meta, a.req);
  const auto files = analysis::write_trace(r, a.req, a.out);
  std::printf("[flas trace] %lld tokens, N = %d, T = %g\n", static_cast<long long>(r.trajectory.positions), a.req.steps,
              double(a.req.flowtime));
  for (std::size_t k = 0; k < r.figures.velocity_norm.size(); ++k)
    std::printf("  step %zu: |v| %.3f, token variation %.3f%s\n", k, r.figures.velocity_norm[k], r.figures.token_variation[k],
                k < r.figures.curvature.size() ? (", cos(v_k, v_k+1) " + std::to_string(r.figures.curvature[k])).c_str() : "");
  if (!a.req.direction.empty())
    std::printf("  cos(h_N - h_0, DiffMean direction), mean over tokens: %.3f\n", r.figures.mean_concept_cosine);
  std::printf("  PCA plane: %.0f%% + %.0f%% of the variance\n", 100 * r.pca.explained1, 100 * r.pca.explained2);
  for (const auto& f : files) std::printf("[flas trace] wrote %s\n", f.c_str());
}
}  // namespace

void add_trace(CLI::App& app) {
  auto a = std::make_shared<TraceArgs>();
  a->req.flowtime = -1;
  a->req.steps = 0;
  auto* cmd = app.add_subcommand("trace", "Trajectory analysis of a flow on one prompt (JSON and pictures)");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--flow", a->flow, "Flow checkpoint (.safetensors, its .json beside it)")->required();
  cmd->add_option("--concept", a->req.concept_text, "The concept")->required();
  cmd->add_option("--prompt", a->req.prompt, "The user's message")->required();
  cmd->add_option("--flowtime", a->req.flowtime, "Flow time T (default: the flow's)");
  cmd->add_option("--steps", a->req.steps, "Euler steps N (default: the flow's)");
  cmd->add_option("--diffmean", a->diffmean, "DiffMean vectors (flas eval writes them): cosine of the displacement with the concept's");
  cmd->add_option("--out", a->out, "Output folder")->capture_default_str();
  cmd->callback([a] { run_trace(*a); });
}

}  // namespace flas::cli
