#pragma once
// Training rows for concepts that have no labelled data, by prompt distillation: the base model
// answers an instruction with the concept asked for in the prompt (the `prompt` method of the grid),
// and the reply becomes a FLAS training row *without* the concept in the prompt, so the flow learns
// to produce what prompting produced.
//
// The filter (a reply is kept only if the concept is what made it): the concept gain
//   gain = NLL(reply | plain instruction) - NLL(reply | instruction + concept request)   (per token)
// must reach `min_gain`: the concept request must make the reply markedly likelier than the plain
// instruction does (a reply the model would have written anyway teaches the flow nothing). Replies
// that are empty, that hit the length limit while looping (repeated 4-grams above `max_repetition`),
// or whose concept request made them *less* instruction-bound are dropped too.
#include <filesystem>
#include <string>
#include <vector>

#include "flas/eval/grid_runner.hpp"
#include "flas/eval/lm_scores.hpp"
#include "flas/eval/progress_bar.hpp"
#include "flas/eval/repetition.hpp"

namespace flas::eval {

struct DistillOptions {
  std::vector<std::string> concepts;      // concept texts to distil
  std::vector<std::string> instructions;  // the instruction pool; concept i gets per_concept of them, round robin
  std::int64_t per_concept = 4, max_new_tokens = 64, batch_size = 16;
  double min_gain = 0.3, max_repetition = 0.2;
  std::string prompt_template = EvalConfig{}.prompt_template;
  std::uint64_t seed = 1;
};

struct DistilledRow {
  std::string instruction, reply, concept_text;
  double gain = 0, repetition = 0;
  bool kept = false;
};

template <Backend B>
std::vector<DistilledRow> distil_concepts(const gemma2::Model<B>& model, const io::Tokenizer& tok,
                                          const DistillOptions& opt, bool show_progress = true) {
  FLAS_CHECK(!opt.concepts.empty(), "prompt distillation: no concepts given");
  FLAS_CHECK(!opt.instructions.empty(), "prompt distillation: no instructions given");
  FLAS_CHECK(opt.per_concept >= 1, "prompt distillation: per_concept must be at least 1");
  EvalConfig cfg;
  cfg.max_new_tokens = opt.max_new_tokens;
  cfg.prompt_template = opt.prompt_template;
  GridRunner<B> runner(model, tok, cfg, nullptr, {}, nullptr);

  std::vector<GridCell> cells;
  std::size_t next = 0;
  for (const auto& c : opt.concepts)
    for (std::int64_t k = 0; k < opt.per_concept; ++k, ++next) {
      const std::size_t i = next % opt.instructions.size();
      cells.push_back({{"prompt", c, std::int64_t(i), 0.0, 0}, "", opt.instructions[i]});
    }
  std::vector<DistilledRow> rows;
  std::optional<ProgressBar> bar;
  if (show_progress) bar.emplace("[flas distill] generating and filtering", cells.size());
  for (std::size_t first = 0; first < cells.size(); first += std::size_t(opt.batch_size)) {
    GridBatch batch{"prompt", std::int64_t(first), batch_seed(opt.seed, "distill", std::int64_t(first)), {}};
    batch.cells.assign(cells.begin() + std::ptrdiff_t(first),
                       cells.begin() + std::ptrdiff_t(std::min(cells.size(), first + std::size_t(opt.batch_size))));
    const auto gens = runner.run(batch);
    std::vector<ScoredText> with_concept, plain;
    for (const auto& g : gens) {
      with_concept.push_back({fill_prompt_template(opt.prompt_template, g.instruction, g.cell.concept_text), g.token_ids});
      plain.push_back({g.instruction, g.token_ids});
    }
    const auto nll_c = reply_nll(model, tok, with_concept), nll_p = reply_nll(model, tok, plain);
    for (std::size_t i = 0; i < gens.size(); ++i) {
      DistilledRow r{gens[i].instruction, gens[i].text, gens[i].cell.concept_text, nll_p[i] - nll_c[i],
                     repetition_rate(gens[i].text), false};
      r.kept = !r.reply.empty() && r.gain >= opt.min_gain && r.repetition <= opt.max_repetition;
      rows.push_back(std::move(r));
    }
    if (bar) bar->advance(gens.size());
  }
  return rows;
}

// Kept rows as AxBench JSON Lines (positive rows; dataset_category "prompt_distilled"), the format
// `flas train --data` reads.
inline std::string distilled_jsonl(const std::vector<DistilledRow>& rows) {
  std::string out;
  for (const auto& r : rows)
    if (r.kept)
      out += nlohmann::json{{"input", r.instruction},      {"output", r.reply},       {"output_concept", r.concept_text},
                            {"concept_genre", "text"},     {"category", "positive"}, {"dataset_category", "prompt_distilled"},
                            {"concept_id", -1},            {"concept_gain", r.gain}}
                 .dump() + "\n";
  return out;
}

}  // namespace flas::eval
