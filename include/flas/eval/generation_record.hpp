#pragma once
// One generation of an evaluation grid and its scores: the unit that the grid writes (one JSON line
// each, append-only), that scorers fill in and that summaries aggregate. Plain data, JSON both ways.
#include <cstdint>
#include <optional>
#include <stdexcept>
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

namespace record_detail {
// A JSON integer that fits int64. nlohmann's get<int64_t> converts a float or an unsigned beyond
// 2^63 without a check (undefined behaviour for 1e300: found by fuzz_generation_store).
inline std::int64_t int64_of(const nlohmann::json& v, const char* key) {
  if (v.is_number_unsigned() && v.get<std::uint64_t>() <= std::uint64_t(INT64_MAX)) return std::int64_t(v.get<std::uint64_t>());
  if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<std::int64_t>();
  throw std::runtime_error(std::string("'") + key + "' must be an integer (int64), found " + v.dump());
}
}  // namespace record_detail

inline void from_json(const nlohmann::json& j, GenerationRecord& r) {
  r.cell.method = j.at("method").get<std::string>();
  r.cell.concept_text = j.at("concept").get<std::string>();
  r.cell.instruction_index = record_detail::int64_of(j.at("instruction_index"), "instruction_index");
  r.cell.factor = j.at("factor").get<double>();
  r.cell.sample = record_detail::int64_of(j.at("sample"), "sample");
  r.split = j.at("split").get<std::string>();
  r.instruction = j.at("instruction").get<std::string>();
  r.text = j.at("text").get<std::string>();
  const auto& ids = j.at("token_ids");
  if (!ids.is_array()) throw std::runtime_error("'token_ids' must be an array of integers, found " + ids.dump());
  r.token_ids.clear();
  for (const auto& id : ids) r.token_ids.push_back(record_detail::int64_of(id, "token_ids"));
  r.prefill_seconds = j.value("prefill_seconds", 0.0);
  r.decode_seconds = j.value("decode_seconds", 0.0);
}

}  // namespace flas::eval
