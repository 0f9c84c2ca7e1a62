#pragma once
// An evaluation run, described by one JSON file: the model and the steering artefacts, the concepts
// (held-in and held-out), the instructions, each method's factor grid, samples per cell, generation
// settings and where the run writes. Relative paths are taken from the config file's folder.
#include <filesystem>
#include <limits>
#include <type_traits>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::eval {

inline const std::vector<std::string>& known_methods() {
  static const std::vector<std::string> m{"flas", "diffmean", "prompt", "none"};
  return m;
}

struct EvalConfig {
  std::filesystem::path model, flow, diffmean, out_dir;
  std::vector<std::filesystem::path> concept_data;  // AxBench labelled rows (DiffMean, classifier)
  std::vector<std::string> held_in, held_out;        // concept texts
  std::filesystem::path instructions_file;           // AlpacaEval JSON (a list of {"instruction": ...})
  std::int64_t first_instruction = 0, instruction_count = 8;
  std::map<std::string, std::vector<double>> factors;  // method -> factor grid (its order is kept)
  std::int64_t samples = 1, max_new_tokens = 64, batch_size = 16, flow_steps = 0;  // 0: the flow's
  int layer = -1;  // DiffMean's layer; -1: the flow's steering layer
  double temperature = 0;
  std::uint64_t seed = 1;
  // AxBench's prompt steering asks for the concept in the prompt; {concept} and {instruction} are filled.
  std::string prompt_template =
      "{instruction}\n\nIn your answer, talk about {concept}.";

  std::vector<std::string> methods() const {  // in the fixed order of known_methods()
    std::vector<std::string> out;
    for (const auto& m : known_methods())
      if (factors.count(m)) out.push_back(m);
    return out;
  }
  std::filesystem::path generations_file() const { return out_dir / "generations.jsonl"; }
  std::filesystem::path diffmean_file() const { return diffmean.empty() ? out_dir / "diffmean.safetensors" : diffmean; }
};

namespace detail {
template <class T>
T config_get(const nlohmann::json& j, const char* key, const std::string& file, T fallback) {
  if (!j.contains(key)) return fallback;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann converts a float or an out-of-range integer without a check (undefined behaviour).
    const auto& v = j.at(key);
    constexpr auto most = std::uint64_t(std::numeric_limits<T>::max());
    bool fits = false;
    if (v.is_number_unsigned()) fits = v.template get<std::uint64_t>() <= most;
    else if (v.is_number_integer()) {
      const auto x = v.template get<std::int64_t>();
      fits = x >= 0 ? std::uint64_t(x) <= most : std::is_signed_v<T> && x >= std::int64_t(std::numeric_limits<T>::min());
    }
    if (!fits) fail(file, ": field '", key, "' must be an integer that fits ", sizeof(T) * 8, " bits, found ", v.dump());
  }
  try {
    return j.at(key).get<T>();
  } catch (const std::exception& e) {
    fail(file, ": field '", key, "' has the wrong type (", e.what(), ")");
  }
}
}  // namespace detail

inline EvalConfig parse_eval_config(const nlohmann::json& j, const std::filesystem::path& file) {
  const std::string where = file.string();
  const std::filesystem::path base = file.parent_path();
  auto path = [&](const char* key, bool required) -> std::filesystem::path {
    if (!j.contains(key)) {
      FLAS_CHECK(!required, where, ": field '", key, "' is required");
      return {};
    }
    FLAS_CHECK(j[key].is_string(), where, ": field '", key, "' must be a path string");
    std::filesystem::path p = j[key].get<std::string>();
    return p.is_absolute() ? p : base / p;
  };
  FLAS_CHECK(j.is_object(), where, ": an evaluation config must be a JSON object");
  static const std::vector<std::string> keys{"model", "flow", "diffmean", "out", "concept_data", "concepts",
                                             "instructions", "methods", "samples", "max_new_tokens", "batch_size",
                                             "temperature", "seed", "prompt_template", "flow_steps", "layer"};
  for (const auto& [k, _] : j.items())
    FLAS_CHECK(std::find(keys.begin(), keys.end(), k) != keys.end(), where, ": unknown field '", k, "'");
  EvalConfig c;
  c.model = path("model", true);
  c.flow = path("flow", false);
  c.diffmean = path("diffmean", false);
  c.out_dir = path("out", true);
  for (const auto& p : detail::config_get<std::vector<std::string>>(j, "concept_data", where, {}))
    c.concept_data.push_back(std::filesystem::path(p).is_absolute() ? std::filesystem::path(p) : base / p);

  FLAS_CHECK(j.contains("concepts") && j["concepts"].is_object(), where,
             ": field 'concepts' must be an object {\"held_in\": [...], \"held_out\": [...]}");
  c.held_in = detail::config_get<std::vector<std::string>>(j["concepts"], "held_in", where, {});
  c.held_out = detail::config_get<std::vector<std::string>>(j["concepts"], "held_out", where, {});
  FLAS_CHECK(!c.held_in.empty() || !c.held_out.empty(), where, ": no concepts to evaluate");

  FLAS_CHECK(j.contains("instructions") && j["instructions"].is_object(), where,
             ": field 'instructions' must be an object {\"file\": ..., \"first\": 0, \"count\": N}");
  const auto& ins = j["instructions"];
  FLAS_CHECK(ins.contains("file") && ins["file"].is_string(), where, ": instructions.file must be a path");
  c.instructions_file = std::filesystem::path(ins["file"].get<std::string>());
  if (c.instructions_file.is_relative()) c.instructions_file = base / c.instructions_file;
  c.first_instruction = detail::config_get<std::int64_t>(ins, "first", where, 0);
  c.instruction_count = detail::config_get<std::int64_t>(ins, "count", where, 8);
  FLAS_CHECK(c.first_instruction >= 0 && c.instruction_count >= 2, where,
             ": instructions need first >= 0 and count >= 2 (factor selection uses two halves)");

  FLAS_CHECK(j.contains("methods") && j["methods"].is_object() && !j["methods"].empty(), where,
             ": field 'methods' must map method names to factor lists, e.g. {\"flas\": [0, 2, 4], \"none\": [0]}");
  for (const auto& [name, grid] : j["methods"].items()) {
    FLAS_CHECK(std::find(known_methods().begin(), known_methods().end(), name) != known_methods().end(), where,
               ": unknown method '", name, "' (expected flas, diffmean, prompt or none)");
    auto f = detail::config_get<std::vector<double>>(j["methods"], name.c_str(), where, {});
    FLAS_CHECK(!f.empty(), where, ": method '", name, "' has no factors");
    for (double x : f) FLAS_CHECK(std::isfinite(x) && x >= 0, where, ": method '", name, "' has factor ", x, " (expected finite, >= 0)");
    c.factors[name] = f;
  }
  FLAS_CHECK(!c.factors.count("flas") || !c.flow.empty(), where, ": method 'flas' needs field 'flow'");
  FLAS_CHECK(!c.factors.count("diffmean") || !c.diffmean.empty() || !c.concept_data.empty(), where,
             ": method 'diffmean' needs field 'diffmean' (saved vectors) or 'concept_data' to compute them");
  c.samples = detail::config_get<std::int64_t>(j, "samples", where, 1);
  c.max_new_tokens = detail::config_get<std::int64_t>(j, "max_new_tokens", where, 64);
  c.batch_size = detail::config_get<std::int64_t>(j, "batch_size", where, 16);
  c.flow_steps = detail::config_get<std::int64_t>(j, "flow_steps", where, 0);
  c.temperature = detail::config_get<double>(j, "temperature", where, 0.0);
  c.layer = detail::config_get<int>(j, "layer", where, -1);
  c.seed = detail::config_get<std::uint64_t>(j, "seed", where, 1);
  c.prompt_template = detail::config_get<std::string>(j, "prompt_template", where, c.prompt_template);
  FLAS_CHECK(c.samples >= 1 && c.max_new_tokens >= 1 && c.batch_size >= 1, where,
             ": samples, max_new_tokens and batch_size must be at least 1");
  FLAS_CHECK(c.temperature >= 0, where, ": temperature must be >= 0");
  FLAS_CHECK(c.prompt_template.find("{instruction}") != std::string::npos &&
                 c.prompt_template.find("{concept}") != std::string::npos,
             where, ": prompt_template must contain {instruction} and {concept}");
  return c;
}

inline EvalConfig load_eval_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  FLAS_CHECK(in, file.string(), ": cannot open the evaluation config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(file.string(), ": not valid JSON (", e.what(), ")");
  }
  return parse_eval_config(j, file);
}

// The run's instructions: `count` AlpacaEval instructions from `first`.
inline std::vector<std::string> load_instructions(const EvalConfig& c) {
  std::ifstream in(c.instructions_file);
  FLAS_CHECK(in, c.instructions_file.string(), ": cannot open the instructions");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(c.instructions_file.string(), ": not valid JSON (", e.what(), ")");
  }
  FLAS_CHECK(j.is_array(), c.instructions_file.string(), ": expected a list of {\"instruction\": ...}");
  FLAS_CHECK(c.first_instruction + c.instruction_count <= std::int64_t(j.size()), c.instructions_file.string(),
             ": holds ", j.size(), " instructions, the run asks for ", c.first_instruction, "..",
             c.first_instruction + c.instruction_count - 1);
  std::vector<std::string> out;
  for (std::int64_t i = c.first_instruction; i < c.first_instruction + c.instruction_count; ++i) {
    const auto& row = j[std::size_t(i)];
    FLAS_CHECK(row.is_object() && row.contains("instruction") && row["instruction"].is_string(),
               c.instructions_file.string(), ": entry ", i, " has no string field 'instruction'");
    out.push_back(row["instruction"].get<std::string>());
  }
  return out;
}

}  // namespace flas::eval
