#pragma once
// Step 2 of an evaluation, offline: every generation scored by proxies that need no judge (see
// score_scale.hpp for the 0-2 rules and docs/evaluation.md):
//   concept      P(concept | text) from a tf-idf logistic-regression classifier per concept, trained
//                on the run's AxBench labelled rows (its held-out AUROC is reported);
//   fluency      the reply's NLL per token under the unsteered model, and its 4-gram repetition;
//   instruction  PMI: NLL given another instruction of the run minus NLL given its own.
// Calibrated on the unsteered model's own replies ("none"), which are scored against every concept.
// NLL and PMI score the generated token ids, a stop token included. Writes <out>/scores.jsonl
// atomically: one line per (generation, concept).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "flas/eval/concept_classifier_set.hpp"
#include "flas/eval/eval_config.hpp"
#include "flas/eval/generation_store.hpp"
#include "flas/eval/lm_scores.hpp"
#include "flas/eval/progress_bar.hpp"
#include "flas/eval/repetition.hpp"
#include "flas/eval/score_scale.hpp"
#include "flas/io/atomic_write.hpp"

namespace flas::eval {

struct ProxyScore {
  GenerationRecord gen;    // "none" records carry the concept they are scored against
  double concept_probability = 0, nll = 0, nll_other = 0, repetition = 0;
  int concept_score = 0, fluency_score = 0, instruction_score = 0;
  double harmonic_mean = 0;
  double pmi() const { return nll_other - nll; }
};

inline void to_json(nlohmann::json& j, const ProxyScore& s) {
  j = {{"method", s.gen.cell.method}, {"concept", s.gen.cell.concept_text}, {"split", s.gen.split},
       {"instruction_index", s.gen.cell.instruction_index}, {"factor", s.gen.cell.factor},
       {"sample", s.gen.cell.sample}, {"concept_probability", s.concept_probability}, {"nll", s.nll},
       {"nll_other_instruction", s.nll_other}, {"pmi", s.pmi()}, {"repetition", s.repetition},
       {"concept_score", s.concept_score}, {"fluency_score", s.fluency_score},
       {"instruction_score", s.instruction_score}, {"proxy_harmonic_mean", s.harmonic_mean}};
}

inline std::filesystem::path classifiers_file(const EvalConfig& cfg) { return cfg.out_dir / "concept_classifiers.json"; }
inline std::filesystem::path scores_file(const EvalConfig& cfg) { return cfg.out_dir / "scores.jsonl"; }

// The run's classifiers: loaded from <out>, or trained on concept_data and saved there.
inline ConceptClassifierSet classifiers_for_run(const EvalConfig& cfg) {
  const auto file = classifiers_file(cfg);
  if (std::filesystem::exists(file)) return ConceptClassifierSet::load(file);
  FLAS_CHECK(!cfg.concept_data.empty(), "offline scoring: the config names no concept_data to train concept classifiers on");
  auto set = ConceptClassifierSet::train(cfg.concept_data);
  std::filesystem::create_directories(cfg.out_dir);
  set.save(file);
  return set;
}

// Pairs each generation with the concepts it is scored against; "none" is scored against them all.
inline std::vector<ProxyScore> expand_for_scoring(const std::vector<GenerationRecord>& gens, const EvalConfig& cfg) {
  std::vector<ProxyScore> out;
  for (const auto& g : gens) {
    if (g.cell.method != "none") {
      out.push_back({g});
      continue;
    }
    for (const auto* list : {&cfg.held_in, &cfg.held_out})
      for (const auto& c : *list) {
        ProxyScore s{g};
        s.gen.cell.concept_text = c;
        s.gen.split = list == &cfg.held_in ? "held_in" : "held_out";
        out.push_back(std::move(s));
      }
  }
  return out;
}

template <Backend B>
std::vector<ProxyScore> score_offline(const EvalConfig& cfg, const gemma2::Model<B>& model, const io::Tokenizer& tok,
                                      const ConceptClassifierSet& classifiers, bool show_progress = true) {
  GenerationStore store(cfg.generations_file());
  FLAS_CHECK(!store.records().empty(), cfg.generations_file().string(), ": no generations to score (run `flas eval generate` first)");
  const auto instructions = load_instructions(cfg);
  const auto& gens = store.records();

  // NLL given the own and given another instruction (the one half the run away), per generation.
  std::vector<ScoredText> own, other;
  const auto n = std::int64_t(instructions.size());
  for (const auto& g : gens) {
    // The reply as generated, its stop token included: an immediate stop is a reply too (and an
    // unlikely one), so no generation goes unscored.
    const auto& reply = g.token_ids;
    const std::int64_t i = g.cell.instruction_index - cfg.first_instruction;
    FLAS_CHECK(0 <= i && i < n, cfg.generations_file().string(), ": instruction ", g.cell.instruction_index,
               " is outside the run's instructions (the config changed since generating?)");
    own.push_back({g.instruction, reply});
    other.push_back({instructions[std::size_t((i + n / 2) % n)], reply});
  }
  std::vector<double> nll, nll_other;
  {
    std::optional<ProgressBar> bar;
    if (show_progress) bar.emplace("[flas eval] scoring NLL", own.size() * 2);
    for (std::size_t first = 0; first < own.size(); first += 64) {
      const std::size_t end = std::min(own.size(), first + 64);
      for (auto* dst : {&nll, &nll_other}) {
        const auto& src = dst == &nll ? own : other;
        const auto part = reply_nll(model, tok, std::vector<ScoredText>(src.begin() + std::ptrdiff_t(first), src.begin() + std::ptrdiff_t(end)));
        dst->insert(dst->end(), part.begin(), part.end());
        if (bar) bar->advance(end - first);
      }
    }
  }
  std::map<std::string, std::size_t> gen_index;
  for (std::size_t i = 0; i < gens.size(); ++i) gen_index[gens[i].cell.key()] = i;

  auto scores = expand_for_scoring(gens, cfg);
  for (auto& s : scores) {
    CellKey k = s.gen.cell;
    if (k.method == "none") k.concept_text.clear();
    const std::size_t i = gen_index.at(k.key());
    FLAS_CHECK(classifiers.contains(s.gen.cell.concept_text), "offline scoring: no concept classifier for \"",
               s.gen.cell.concept_text, "\" (is it in the config's concept_data?)");
    s.concept_probability = classifiers.probability(s.gen.cell.concept_text, s.gen.text);
    FLAS_CHECK(!std::isnan(nll[i]), cfg.generations_file().string(), ": generation '", gens[i].cell.method, "' of \"",
               gens[i].cell.concept_text, "\", instruction ", gens[i].cell.instruction_index, " has no tokens");
    s.nll = nll[i];
    s.nll_other = nll_other[i];
    s.repetition = repetition_rate(s.gen.text);
  }

  // Calibration on the unsteered replies: NLL, repetition and PMI once per reply, the concept
  // probability once per (reply, concept).
  std::vector<double> ref_nll, ref_rep, ref_pmi;
  for (std::size_t i = 0; i < gens.size(); ++i)
    if (gens[i].cell.method == "none") {
      ref_nll.push_back(nll[i]);
      ref_pmi.push_back(nll_other[i] - nll[i]);
      ref_rep.push_back(repetition_rate(gens[i].text));
    }
  std::map<std::string, std::vector<double>> ref_concept;
  for (const auto& s : scores)
    if (s.gen.cell.method == "none") ref_concept[s.gen.cell.concept_text].push_back(s.concept_probability);
  FLAS_CHECK(!ref_nll.empty(), "offline scoring: the run has no unsteered ('none') generations to calibrate on; "
             "add \"none\": [0] to the config's methods");
  const auto cal_nll = Calibration::fit(ref_nll, calibration_rules::fluency_nll());
  const auto cal_rep = Calibration::fit(ref_rep, calibration_rules::repetition());
  const auto cal_pmi = Calibration::fit(ref_pmi, calibration_rules::instruction_pmi());
  std::map<std::string, Calibration> cal_concept;
  for (const auto& [c, ref] : ref_concept) cal_concept.emplace(c, Calibration::fit(ref, calibration_rules::concept_probability()));
  for (auto& s : scores) {
    s.concept_score = cal_concept.at(s.gen.cell.concept_text).score(s.concept_probability);
    s.fluency_score = std::min(cal_nll.score(s.nll), cal_rep.score(s.repetition));
    s.instruction_score = cal_pmi.score(s.pmi());
    s.harmonic_mean = harmonic_mean_score(s.concept_score, s.instruction_score, s.fluency_score);
  }
  return scores;
}

inline void save_scores(const std::filesystem::path& file, const std::vector<ProxyScore>& scores) {
  std::string text;
  for (const auto& s : scores) text += nlohmann::json(s).dump() + "\n";
  std::filesystem::create_directories(file.parent_path());
  io::write_text_atomically(file, text);
}

}  // namespace flas::eval
