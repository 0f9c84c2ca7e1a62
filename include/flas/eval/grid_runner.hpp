#pragma once
// Generates one batch of an evaluation grid. Every method goes through the model's steering tap with
// its own per-row settings, so one batch mixes concepts and factors:
//   flas      the FLAS flow, each row conditioned on its concept, flow time T = factor;
//   diffmean  a DiffMean vector per row through the same flow-steering tap (one Euler step of the
//             constant field d_c: h <- h + factor * d_c at every position);
//   prompt    no tap; the concept is asked for in the prompt (the config's template);
//   none      no tap.
#include <optional>
#include <string>
#include <vector>

#include "flas/condition/concept_encoder.hpp"
#include "flas/eval/diffmean.hpp"
#include "flas/eval/generation_grid.hpp"
#include "flas/eval/generation_store.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/field/steering_vector.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/models/gemma2/flow_steering.hpp"

namespace flas::eval {

inline std::string fill_prompt_template(std::string t, const std::string& instruction, const std::string& concept_text) {
  auto put = [&t](const std::string& key, const std::string& value) {
    for (std::size_t p = t.find(key); p != std::string::npos; p = t.find(key, p + value.size()))
      t.replace(p, key.size(), value);
  };
  put("{concept}", concept_text);
  put("{instruction}", instruction);
  return t;
}

template <Backend B>
class GridRunner {
 public:
  // `flow` and `diffmean` may be null when the run has no such method.
  GridRunner(const gemma2::Model<B>& model, const io::Tokenizer& tok, const EvalConfig& cfg,
             const field::FlasFlow<B>* flow, field::FlowMeta flow_meta, const DiffMeanVectors* diffmean)
      : model_(model), tok_(tok), cfg_(cfg), flow_(flow), meta_(std::move(flow_meta)), dm_(diffmean) {
    if (dm_) vectors_.emplace(dm_->directions);
  }

  std::vector<GenerationRecord> run(const GridBatch& batch) const {
    const auto& mc = model_.config();
    std::vector<std::vector<std::int64_t>> prompts;
    std::vector<float> factors;
    std::vector<std::string> concepts;
    for (const auto& cell : batch.cells) {
      const std::string user = batch.method == "prompt"
                                   ? fill_prompt_template(cfg_.prompt_template, cell.instruction, cell.key.concept_text)
                                   : cell.instruction;
      prompts.push_back(io::encode_chat(tok_, user, mc.bos_token_id));
      factors.push_back(float(cell.key.factor));
      concepts.push_back(cell.key.concept_text);
    }
    GenerateOptions opt;
    opt.max_new_tokens = cfg_.max_new_tokens;
    opt.sampling = {float(cfg_.temperature), 0, 1.0f, batch.seed};

    GenerateResult r;
    if (batch.method == "flas") {
      FLAS_CHECK(flow_, "evaluation: method 'flas' needs a flow");
      auto [ids, mask] = condition::tokenize_concepts(tok_, concepts, mc.bos_token_id, mc.pad_token_id);
      const auto encoded = condition::encode_concepts(model_, ids, mask, meta_.concept_layers);
      const int steps = cfg_.flow_steps > 0 ? int(cfg_.flow_steps) : meta_.steps;
      gemma2::FlowSteering<B, field::FlasFlow<B>> tap(
          *flow_, flow_->condition(encoded),
          {meta_.layer, steps, factors, {}, 1.0f, gemma2::flow_solver_from_name(meta_.solver)});
      r = generate(model_, prompts, opt, tap);
    } else if (batch.method == "diffmean") {
      FLAS_CHECK(dm_, "evaluation: method 'diffmean' needs DiffMean vectors");
      std::vector<std::int64_t> rows;
      for (const auto& c : concepts) rows.push_back(dm_->index_of(c));
      gemma2::FlowSteering<B, field::SteeringVectorField<B>> tap(*vectors_, vectors_->condition(rows),
                                                                  {dm_->layer, 1, factors, {}, 1.0f});
      r = generate(model_, prompts, opt, tap);
    } else if (batch.method == "prompt" || batch.method == "none") {
      r = generate(model_, prompts, opt, gemma2::NoTap{});
    } else {
      fail("evaluation: unknown method '", batch.method, "' (expected flas, diffmean, prompt or none)");
    }

    std::vector<GenerationRecord> out;
    for (std::size_t i = 0; i < batch.cells.size(); ++i) {
      GenerationRecord rec;
      rec.cell = batch.cells[i].key;
      rec.split = batch.cells[i].split;
      rec.instruction = batch.cells[i].instruction;
      rec.token_ids = r.tokens[i];
      std::vector<std::int64_t> text_ids;
      for (auto t : rec.token_ids)
        if (!mc.is_eos(t)) text_ids.push_back(t);
      rec.text = tok_.decode(text_ids);
      rec.prefill_seconds = r.prefill_seconds;
      rec.decode_seconds = r.decode_seconds;
      out.push_back(std::move(rec));
    }
    return out;
  }

 private:
  const gemma2::Model<B>& model_;
  const io::Tokenizer& tok_;
  const EvalConfig& cfg_;
  const field::FlasFlow<B>* flow_;
  field::FlowMeta meta_;
  const DiffMeanVectors* dm_;
  std::optional<field::SteeringVectorField<B>> vectors_;
};

// Runs every batch of the plan that the store does not hold yet (a batch with some records, from an
// interrupted write, is regenerated whole and only its missing records appended).
template <class Runner, class OnBatch>
void run_grid(const std::vector<GridBatch>& plan, GenerationStore& store, const Runner& runner, OnBatch&& on_batch) {
  for (const auto& batch : plan) {
    std::size_t missing = 0;
    for (const auto& c : batch.cells) missing += store.has(c.key) ? 0 : 1;
    if (missing == 0) continue;
    store.append(runner.run(batch));
    on_batch(batch, missing);
  }
}

}  // namespace flas::eval
