#pragma once
// One generation of an evaluation grid and its scores: the unit that the grid writes (one JSON line
// each, append-only), that scorers fill in and that summaries aggregate. Plain data, JSON both ways.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flas::eval {

// What a generation was asked for: a grid cell and a sample index. Its key() names it uniquely in a run.
struct CellKey {
  std::string method;          // "flas", "diffmean", "prompt", "none"
  std::string concept_text;    // the concept steered towards (for "none": the concept it is scored against)
  std::int64_t instruction_index = 0;  // index into the run's instruction list
  double factor = 0;           // flow time T (flas), strength (diffmean), 0 (prompt, none)
  std::int64_t sample = 0;
  std::string key() const;
};

struct GenerationRecord {
  CellKey cell;
  std::string split;           // "held_in" or "held_out"
  std::string instruction;
  std::string text;            // the reply, stop token removed
  std::vector<std::int64_t> token_ids;
  double prefill_seconds = 0, decode_seconds = 0;  // of the batch it was generated in
};

inline std::string CellKey::key() const {
  return method + "\x1f" + concept_text + "\x1f" + std::to_string(instruction_index) + "\x1f" +
         nlohmann::json(factor).dump() + "\x1f" + std::to_string(sample);
}

inline void to_json(nlohmann::json& j, const GenerationRecord& r) {
  j = {{"method", r.cell.method},        {"concept", r.cell.concept_text}, {"split", r.split},
       {"instruction_index", r.cell.instruction_index}, {"instruction", r.instruction},
       {"factor", r.cell.factor},        {"sample", r.cell.sample},        {"text", r.text},
       {"token_ids", r.token_ids},       {"prefill_seconds", r.prefill_seconds},
       {"decode_seconds", r.decode_seconds}};
}

inline void from_json(const nlohmann::json& j, GenerationRecord& r) {
  r.cell.method = j.at("method").get<std::string>();
  r.cell.concept_text = j.at("concept").get<std::string>();
  r.cell.instruction_index = j.at("instruction_index").get<std::int64_t>();
  r.cell.factor = j.at("factor").get<double>();
  r.cell.sample = j.at("sample").get<std::int64_t>();
  r.split = j.at("split").get<std::string>();
  r.instruction = j.at("instruction").get<std::string>();
  r.text = j.at("text").get<std::string>();
  r.token_ids = j.at("token_ids").get<std::vector<std::int64_t>>();
  r.prefill_seconds = j.value("prefill_seconds", 0.0);
  r.decode_seconds = j.value("decode_seconds", 0.0);
}

}  // namespace flas::eval
