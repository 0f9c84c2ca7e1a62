#pragma once
// Step 2 of an evaluation, with the real judge: every generation (the unsteered ones once per concept)
// rated by an OpenAI-compatible chat-completions endpoint with AxBench's three questions. Writes
// <out>/judge.jsonl atomically (one line per generation and concept, with each rating, its failure if
// any, and the harmonic mean); the answers themselves are cached in <out>/judge_cache.jsonl, so a
// re-run, or a run after an interruption, never pays for an answer twice.
#include <filesystem>
#include <string>
#include <vector>

#include "flas/eval/generation_store.hpp"
#include "flas/eval/judge/judge.hpp"
#include "flas/eval/offline_scoring.hpp"
#include "flas/eval/factor_selection.hpp"

namespace flas::eval {

inline std::filesystem::path judge_file(const EvalConfig& cfg) { return cfg.out_dir / "judge.jsonl"; }

struct JudgeRunStats {
  std::size_t records = 0, http_attempts = 0, cached = 0;
  std::map<judge::FailureKind, std::size_t> failures;
};

inline JudgeRunStats judge_run(const EvalConfig& cfg, judge::ChatClientConfig client, const judge::JudgeTemplates& templates,
                               const judge::JudgeOptions& options, const judge::ProgressCallback& progress = {}) {
  GenerationStore store(cfg.generations_file());
  FLAS_CHECK(!store.records().empty(), cfg.generations_file().string(), ": no generations to judge");
  if (client.cache_path.empty()) client.cache_path = cfg.out_dir / "judge_cache.jsonl";
  judge::Judge j(client, templates, options);
  std::vector<GenerationRecord> gens;
  for (const auto& s : expand_for_scoring(store.records(), cfg)) gens.push_back(s.gen);
  const auto judged = j.judge(gens, progress);
  std::string text;
  for (std::size_t i = 0; i < gens.size(); ++i) {
    nlohmann::json line = judged[i];
    line["method"] = gens[i].cell.method;
    line["concept"] = gens[i].cell.concept_text;
    line["split"] = gens[i].split;
    line["instruction_index"] = gens[i].cell.instruction_index;
    line["factor"] = gens[i].cell.factor;
    line["sample"] = gens[i].cell.sample;
    line["convention"] = std::string(judge::to_string(options.convention));
    text += line.dump() + "\n";
  }
  io::write_text_atomically(judge_file(cfg), text);
  JudgeRunStats st;
  st.records = gens.size();
  st.http_attempts = j.client().http_attempts();
  st.cached = j.client().cached_answers();
  st.failures = judge::count_failures(judged);
  return st;
}

// Judge rows for the report: score = the judge's harmonic mean; rows without one (a rating dropped by
// the FLAS paper's convention, or a request that failed) are left out and counted in `dropped`.
inline std::vector<ScoredRow> load_judged_rows(const std::filesystem::path& file, std::size_t& dropped) {
  std::ifstream in(file);
  FLAS_CHECK(in, file.string(), ": cannot open the judge's ratings");
  std::vector<ScoredRow> rows;
  std::string line;
  std::int64_t n = 0;
  dropped = 0;
  while (std::getline(in, line)) {
    ++n;
    try {
      const auto j = nlohmann::json::parse(line);
      const auto rec = j.get<judge::JudgedRecord>();
      if (!rec.aggregate) {
        ++dropped;
        continue;
      }
      ScoredRow r{j.at("method"), j.at("concept"), j.at("split"), j.at("instruction_index"), j.at("factor"), *rec.aggregate, {}};
      const char* names[] = {"judge_concept", "judge_instruction", "judge_fluency"};
      for (judge::Question q : judge::all_questions) r.metrics[names[std::size_t(q)]] = rec.rating(q).score.value_or(0.0);
      rows.push_back(std::move(r));
    } catch (const std::exception& e) {
      fail(file.string(), ":", n, ": not a judge row (", e.what(), ")");
    }
  }
  return rows;
}

}  // namespace flas::eval
