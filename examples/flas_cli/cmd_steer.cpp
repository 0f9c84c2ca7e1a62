// flas steer: one steered reply (optionally beside the unsteered one).
#include <cstdio>

#include "flas/eval/concept_classifier.hpp"
#include "flas/interop/control_vector_steering.hpp"
#include "backend_choice.hpp"
#include "steering_session.hpp"

namespace flas::cli {

namespace {
struct SteerArgs {
  std::string model_dir, flow, prompt, solver = "euler";
  SteerSettings s;
  bool compare = false;
  std::vector<std::string> score_with;  // AxBench labelled rows: print each reply's concept probability
  std::vector<std::string> control_vectors;  // llama.cpp control vectors, FILE or FILE:SCALE
  std::vector<int> control_vector_layers;    // inclusive range [first, last]
  std::string backend;
};

// Steering with llama.cpp control vectors (no flow, no concept): summed and applied as llama.cpp does.
template <class B>
void run_control_vectors(const SteerArgs& a) {
  std::vector<interop::ScaledControlVector> files;
  for (const auto& arg : a.control_vectors) files.push_back(interop::parse_scaled_control_vector(arg));
  const auto cv = interop::sum_control_vectors(files);
  BasicSteeringSession<B> session(a.model_dir, "", -1);
  const auto& cfg = session.model().config();
  interop::LayerRange range;
  if (!a.control_vector_layers.empty()) range = {a.control_vector_layers[0], a.control_vector_layers[1]};
  interop::ControlVectorSteering<B> tap(cv, cfg.hidden_size, int(cfg.num_hidden_layers), range);
  if (a.compare) {
    std::printf("== unsteered ==\n");
    session.reply_with(a.prompt, a.s, stdout, gemma2::NoTap{});
    std::printf("\n\n== steered: %zu control vector file(s), %zu layer(s) ==\n", files.size(), tap.layers());
  }
  session.reply_with(a.prompt, a.s, stdout, tap);
  std::printf("\n");
}

// The concept's offline classifier (flas eval's concept proxy), trained on the given labelled rows.
std::optional<eval::ConceptClassifier> concept_classifier(const SteerArgs& a) {
  if (a.score_with.empty()) return std::nullopt;
  const auto corpus = eval::load_concept_rows(std::vector<std::filesystem::path>(a.score_with.begin(), a.score_with.end()));
  for (const auto& c : corpus.concepts)
    if (c.concept_text == a.s.concept_text) return eval::ConceptClassifier::train(c, corpus.shared_negatives);
  fail("--score-with: no labelled rows for the concept \"", a.s.concept_text, "\" in the given files");
}

template <class B>
void run_steer(SteerArgs a) {
  if (!a.control_vectors.empty()) {
    FLAS_CHECK(a.flow.empty(), "steer: give --flow or --control-vector, not both");
    return run_control_vectors<B>(a);
  }
  FLAS_CHECK(!a.flow.empty() && !a.s.concept_text.empty(), "steer: --flow and --concept are required (or --control-vector)");
  a.s.solver = gemma2::flow_solver_from_name(a.solver);
  BasicSteeringSession<B> session(a.model_dir, a.flow, a.s.layer);
  if (a.s.steps <= 0) a.s.steps = session.meta().steps;
  if (a.s.flowtime < 0) a.s.flowtime = session.meta().flowtime;
  const auto classifier = concept_classifier(a);
  auto show_score = [&](const std::string& text) {
    if (classifier)
      std::printf("\n[offline concept score: P(concept | text) = %.3f, tf-idf classifier, held-out AUROC %.3f]",
                  classifier->probability(text), classifier->held_out().auroc);
  };
  if (a.compare) {
    SteerSettings off = a.s;
    off.flowtime = 0;
    std::printf("== unsteered (T = 0) ==\n");
    show_score(session.reply(a.prompt, off, stdout));
    std::printf("\n\n== steered: \"%s\" (T = %g, N = %d) ==\n", a.s.concept_text.c_str(), double(a.s.flowtime), a.s.steps);
  }
  show_score(session.reply(a.prompt, a.s, stdout));
  std::printf("\n");
}
}  // namespace

void add_steer(CLI::App& app) {
  auto a = std::make_shared<SteerArgs>();
  a->s.steps = 0;
  auto* cmd = app.add_subcommand("steer", "Generate a reply steered towards a concept by a FLAS flow (or llama.cpp control vectors)");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--flow", a->flow, "Flow checkpoint (.safetensors; its .json beside it gives layer, steps, T)");
  cmd->add_option("--concept", a->s.concept_text, "The concept to steer towards, as text (with --flow)");
  cmd->add_option("--control-vector", a->control_vectors,
                  "llama.cpp control vector FILE or FILE:SCALE (repeatable; summed as llama.cpp sums them)");
  cmd->add_option("--control-vector-layers", a->control_vector_layers,
                  "Apply control vectors to layers A..B only (inclusive, as llama.cpp's --control-vector-layer-range)")
      ->expected(2);
  cmd->add_option("--flowtime", a->s.flowtime, "Flow time T (steering strength); 0 = unsteered (default: the flow's)");
  cmd->add_option("--prompt", a->prompt, "The user's message")->required();
  cmd->add_option("--steps", a->s.steps, "Integration steps N (default: the flow's)");
  cmd->add_option("--solver", a->solver, "Fixed-step solver")->check(CLI::IsMember({"euler", "midpoint", "rk4"}))->capture_default_str();
  cmd->add_option("--layer", a->s.layer, "Steering layer (default: the flow's)");
  cmd->add_option("--max-new-tokens", a->s.max_new_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", a->s.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--seed", a->s.seed, "Random seed for sampling")->capture_default_str();
  cmd->add_flag("--raw", a->s.raw, "Use the prompt as-is (bos + text), without the chat template");
  cmd->add_flag("--compare", a->compare, "Print the unsteered reply first, then the steered one");
  cmd->add_option("--score-with", a->score_with, "AxBench labelled rows (JSONL): print each reply's offline concept score");
  add_backend_option(cmd, a->backend);
  cmd->callback([a] { with_backend(a->backend, [&]<class B>(std::type_identity<B>) { run_steer<B>(*a); }); });
}

}  // namespace flas::cli
