#pragma once
// What `flas steer` and `flas chat` share: a base model, its tokenizer and a flow, and one call that
// generates for a prompt with a concept at a flow time (T = 0: unsteered).
#include <cstdio>
#include <optional>
#include <string>

#include "commands.hpp"
#include "flas/condition/concept_encoder.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::cli {

struct SteerSettings {
  std::string concept_text;
  float flowtime = -1.0f;  // < 0: the flow's default T (its JSON)
  int steps = 3;
  int layer = -1;
  float temperature = 0.0f;
  std::uint64_t seed = 0;
  std::int64_t max_new_tokens = 96;
  gemma2::FlowSolver solver = gemma2::FlowSolver::euler;
  bool raw = false;  // bos + prompt, without the chat template
};

// B: the backend (flas steer's --backend); chat uses HostBackend.
template <class B>
class BasicSteeringSession {
 public:
  // flow_file may be empty: the session then steers only with the taps given to reply_with().
  BasicSteeringSession(const std::string& model_dir, const std::string& flow_file, int layer_override)
      : model_(gemma2::Model<B>::load(model_dir)), tok_(io::Tokenizer::load(model_dir)) {
    if (flow_file.empty()) return;
    const auto meta_file = field::flow_meta_path(flow_file);
    if (std::filesystem::exists(meta_file)) meta_ = field::read_flow_meta(meta_file);
    if (layer_override >= 0) meta_.layer = layer_override;
    FLAS_CHECK(meta_.layer >= 0, flow_file, ": the steering layer is unknown: give --layer, or put {\"layer\": L} in ",
               meta_file.string());
    FLAS_CHECK(meta_.layer < model_.config().num_hidden_layers, flow_file, ": steering layer ", meta_.layer,
               " does not exist in a model of ", model_.config().num_hidden_layers, " layers");
    flow_.emplace(model_.config(), model_.inv_freq(), field::load_flow_weights(flow_file, model_.config()));
  }

  const field::FlowMeta& meta() const { return meta_; }
  const io::Tokenizer& tokenizer() const { return tok_; }

  const gemma2::Model<B>& model() const { return model_; }

  // Streams the reply to `out` (nullptr: silent) and returns it; T = 0 is unsteered.
  std::string reply(const std::string& prompt, const SteerSettings& s, std::FILE* out) {
    if (s.flowtime == 0.0f) return reply_with(prompt, s, out, gemma2::NoTap{});
    FLAS_CHECK(flow_.has_value(), "steering: no flow loaded");
    const auto& cfg = model_.config();
    auto [cids, cmask] = condition::tokenize_concepts(tok_, {s.concept_text}, cfg.bos_token_id, cfg.pad_token_id);
    const auto concepts = condition::encode_concepts(model_, cids, cmask, meta_.concept_layers);
    gemma2::FlowSteering<B, field::FlasFlow<B>> tap(
        *flow_, flow_->condition(concepts), {s.layer >= 0 ? s.layer : meta_.layer, s.steps, {s.flowtime}, {}, 1.0f, s.solver});
    return reply_with(prompt, s, out, tap);
  }

  // The same with any steering tap (a control vector, say). raw: bos + prompt, no chat template.
  template <class Tap>
  std::string reply_with(const std::string& prompt, const SteerSettings& s, std::FILE* out, Tap&& tap) {
    const auto& cfg = model_.config();
    std::vector<std::int64_t> ids;
    if (s.raw) {
      ids = tok_.encode(prompt);
      if (cfg.bos_token_id >= 0) ids.insert(ids.begin(), cfg.bos_token_id);
    } else {
      ids = io::encode_chat(tok_, prompt, cfg.bos_token_id);
    }
    GenerateOptions opt;
    opt.max_new_tokens = s.max_new_tokens;
    opt.sampling = {s.temperature, 0, 1.0f, s.seed};
    std::string text;
    opt.on_token = [&](std::int64_t, std::int64_t t) {
      if (cfg.is_eos(t)) return;
      const std::string piece = tok_.decode_piece(t);
      text += piece;
      if (out) {
        std::fputs(piece.c_str(), out);
        std::fflush(out);
      }
    };
    const GenerateResult r = generate(model_, {ids}, opt, tap);
    std::fprintf(stderr, "\n[flas] %s: %lld prompt tokens in %.1f ms; %zu new tokens at %.1f tok/s\n", B::name,
                 static_cast<long long>(r.prompt_tokens), r.prefill_seconds * 1e3, r.tokens[0].size(),
                 double(r.decode_steps) / std::max(r.decode_seconds, 1e-9));
    return text;
  }

 private:
  gemma2::Model<B> model_;
  io::Tokenizer tok_;
  field::FlowMeta meta_;
  std::optional<field::FlasFlow<B>> flow_;
};

using SteeringSession = BasicSteeringSession<HostBackend>;

}  // namespace flas::cli
