#pragma once
// What one ablation run leaves behind: its training record (train.json), the validation curve
// (validation.jsonl, appended as training goes) and its result (result.json: the training record and
// the flow's strength rows at the study's flow times). result.json is written last and atomically: its
// presence is what "this run is done" means.
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "flas/eval/report.hpp"
#include "flas/io/atomic_write.hpp"
#include "flas/train/train_run.hpp"
#include "flas/train/train_state.hpp"

namespace flas::ablate {

struct TrainRecord {
  std::int64_t steps = 0;
  bool stopped_early = false;
  double val_on = 0, val_off = 0;            // last validation LM loss at T = 1 and T = 0
  double held_out_on = 0, held_out_off = 0;  // held-out concepts' rows
  double seconds = 0;                        // wall time of the training call that finished it
  std::vector<train::ValidationPoint> curve;
};

struct RunResult {
  std::string variant;
  std::uint64_t seed = 0;
  nlohmann::json overrides, recipe;
  TrainRecord train;
  std::vector<eval::StrengthRow> strength;  // method "flas", each split and flow time
  double eval_seconds = 0;
};

inline std::filesystem::path result_file(const std::filesystem::path& run) { return run / "result.json"; }

// Validation points appended one line each; a line cut by a kill is dropped when the log is reopened,
// and a step validated twice (a resumed run repeats the steps after its last state) keeps the later.
class ValidationLog {
 public:
  explicit ValidationLog(std::filesystem::path file) : file_(std::move(file)) {
    if (!std::filesystem::exists(file_)) return;
    const std::string text = train::read_text(file_);
    std::size_t start = 0, kept = 0;
    while (start < text.size()) {
      const auto end = text.find('\n', start);
      if (end == std::string::npos) break;  // a torn last line
      try {
        const auto j = nlohmann::json::parse(text.substr(start, end - start));
        points_[j.at("step").get<std::int64_t>()] = {j.at("step"), j.at("loss_on"), j.at("loss_off")};
      } catch (const std::exception& e) {
        fail(file_.string(), ": line ", kept + 1, " is not a validation point (", e.what(), ")");
      }
      ++kept;
      start = end + 1;
    }
    if (start < text.size()) io::write_text_atomically(file_, text.substr(0, start));
  }
  void append(const train::ValidationPoint& p) {
    points_[p.step] = p;
    std::ofstream out(file_, std::ios::app);
    out << nlohmann::json{{"step", p.step}, {"loss_on", p.loss_on}, {"loss_off", p.loss_off}}.dump() << "\n";
    out.flush();
    FLAS_CHECK(out, file_.string(), ": cannot append a validation point");
  }
  std::vector<train::ValidationPoint> points() const {
    std::vector<train::ValidationPoint> out;
    for (const auto& [_, p] : points_) out.push_back(p);
    return out;
  }

 private:
  std::filesystem::path file_;
  std::map<std::int64_t, train::ValidationPoint> points_;
};

inline TrainRecord train_record(const train::TrainReport& r, std::vector<train::ValidationPoint> curve) {
  return {r.steps, r.stopped_early, r.last_validation.loss_on, r.last_validation.loss_off, r.held_out_on,
          r.held_out_off, r.seconds, std::move(curve)};
}

inline nlohmann::json to_json(const TrainRecord& t) {
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& p : t.curve) curve.push_back({p.step, p.loss_on, p.loss_off});
  return {{"steps", t.steps}, {"stopped_early", t.stopped_early}, {"val_on", t.val_on}, {"val_off", t.val_off},
          {"held_out_on", t.held_out_on}, {"held_out_off", t.held_out_off}, {"seconds", t.seconds}, {"curve", curve}};
}
inline TrainRecord train_record_from_json(const nlohmann::json& j) {
  TrainRecord t{j.at("steps"), j.at("stopped_early"), j.at("val_on"), j.at("val_off"),
                j.at("held_out_on"), j.at("held_out_off"), j.at("seconds"), {}};
  for (const auto& p : j.at("curve")) t.curve.push_back({p.at(0), p.at(1), p.at(2)});
  return t;
}

inline nlohmann::json to_json(const eval::StrengthRow& s) {
  return {{"split", s.split}, {"factor", s.factor}, {"concepts", s.concepts},
          {"concept_probability", s.concept_probability}, {"concept_score", s.concept_score}, {"nll", s.nll},
          {"concept_ratio", {s.concept_ratio, s.concept_ratio_ci.low, s.concept_ratio_ci.high}},
          {"score_ratio", {s.score_ratio, s.score_ratio_ci.low, s.score_ratio_ci.high}},
          {"nll_ratio", {s.nll_ratio, s.nll_ratio_ci.low, s.nll_ratio_ci.high}}};
}
inline eval::StrengthRow strength_from_json(const nlohmann::json& j) {
  eval::StrengthRow s{"flas", j.at("split"), j.at("factor")};
  s.concepts = j.at("concepts");
  s.concept_probability = j.at("concept_probability");
  s.concept_score = j.at("concept_score");
  s.nll = j.at("nll");
  auto ratio = [&](const char* k, double& v, eval::ConfidenceInterval& ci) {
    v = j.at(k).at(0), ci.low = j.at(k).at(1), ci.high = j.at(k).at(2);
  };
  ratio("concept_ratio", s.concept_ratio, s.concept_ratio_ci);
  ratio("score_ratio", s.score_ratio, s.score_ratio_ci);
  ratio("nll_ratio", s.nll_ratio, s.nll_ratio_ci);
  return s;
}

template <class T>
T parse_record(const std::filesystem::path& file, T (*from)(const nlohmann::json&)) {
  try {
    return from(nlohmann::json::parse(train::read_text(file)));
  } catch (const std::exception& e) {
    fail(file.string(), ": not a valid record (", e.what(), "); delete it to redo that stage");
  }
}

inline void save_train_record(const std::filesystem::path& file, const TrainRecord& t) {
  io::write_text_atomically(file, to_json(t).dump(1) + "\n");
}
inline TrainRecord load_train_record(const std::filesystem::path& file) { return parse_record(file, &train_record_from_json); }

inline RunResult run_result_from_json(const nlohmann::json& j) {
  RunResult r{j.at("variant"), j.at("seed"), j.at("overrides"), j.at("recipe"), train_record_from_json(j.at("train"))};
  for (const auto& s : j.at("strength")) r.strength.push_back(strength_from_json(s));
  r.eval_seconds = j.at("eval_seconds");
  return r;
}
inline void save_run_result(const std::filesystem::path& file, const RunResult& r) {
  nlohmann::json strength = nlohmann::json::array();
  for (const auto& s : r.strength) strength.push_back(to_json(s));
  const nlohmann::json j{{"variant", r.variant}, {"seed", r.seed}, {"overrides", r.overrides}, {"recipe", r.recipe},
                         {"train", to_json(r.train)}, {"strength", strength}, {"eval_seconds", r.eval_seconds}};
  io::write_text_atomically(file, j.dump(1) + "\n");
}
inline RunResult load_run_result(const std::filesystem::path& file) { return parse_record(file, &run_result_from_json); }

// The strength row of a split at a flow time (fails when the run has none: a config changed since?).
inline const eval::StrengthRow& strength_at(const RunResult& r, const std::string& split, double flowtime) {
  for (const auto& s : r.strength)
    if (s.split == split && s.factor == flowtime) return s;
  fail("ablation: run '", r.variant, "' seed ", r.seed, " has no ", split, " result at T = ", flowtime);
}

}  // namespace flas::ablate
