#pragma once
// An ablation study's config (JSON): the base training recipe, the evaluation to run on every flow,
// the seeds, and what to vary: "axes" (a Cartesian product) or "variants" (an explicit list). Paths
// are relative to the config file. Every key is checked: an unknown key, an empty grid or a value out
// of range is an error that names the key. See docs/ablations.md.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "flas/ablate/ablation_axes.hpp"
#include "flas/core/error.hpp"

namespace flas::ablate {

struct Variant {
  std::string name;          // shown in tables and plots
  nlohmann::json overrides;  // axis -> value, on top of the base recipe
};

struct EvalPlan {
  std::filesystem::path config;            // an evaluation config (include/flas/eval/eval_config.hpp)
  std::vector<double> flowtimes{2.0, 4.0};  // factors of "flas"; "none" is always generated
  double report_flowtime = 4.0;            // the headline column of the results table
  std::int64_t instructions = 0;           // > 0: use only this many of the eval config's instructions
};

struct AblationConfig {
  std::filesystem::path file, out_dir;
  train::TrainRecipe base;
  EvalPlan eval;
  std::vector<std::uint64_t> seeds{1};
  std::vector<std::string> axis_order;  // Cartesian axes in config order (empty for an explicit list)
  std::vector<Variant> variants;
};

namespace detail {
inline nlohmann::json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  FLAS_CHECK(in, file.string(), ": cannot open the ablation config");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(file.string(), ": not valid JSON (", e.what(), ")");
  }
}

inline void only_keys(const nlohmann::json& j, const std::set<std::string>& known, const std::string& where) {
  FLAS_CHECK(j.is_object(), where, ": expected a JSON object");
  for (const auto& [k, _] : j.items()) {
    if (known.count(k)) continue;
    std::string list;
    for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
    fail(where, ": unknown key '", k, "' (known: ", list, ")");
  }
}

template <class T>
T get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const std::exception& e) {
    fail(where, ": key '", key, "' has the wrong type (", e.what(), ")");
  }
}

inline std::string slug(const std::string& name) {
  std::string s;
  for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  return s;
}

// Every combination of the axes' values, first axis slowest; named "blocks=2 lr=0.001".
inline std::vector<Variant> cartesian(const nlohmann::json& axes, const std::vector<std::string>& order) {
  std::vector<Variant> out{{"", nlohmann::json::object()}};
  for (const auto& axis : order) {
    std::vector<Variant> next;
    for (const auto& v : out)
      for (const auto& value : axes.at(axis)) {
        Variant w = v;
        w.overrides[axis] = value;
        w.name += (w.name.empty() ? "" : " ") + axis + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
        next.push_back(std::move(w));
      }
    out = std::move(next);
  }
  return out;
}
}  // namespace detail

inline AblationConfig parse_ablation_config(const nlohmann::json& j, const std::filesystem::path& file) {
  const std::string where = file.string();
  const auto dir = file.parent_path();
  detail::only_keys(j, {"out", "train", "eval", "seeds", "axes", "variants"}, where);
  AblationConfig c;
  c.file = file;
  FLAS_CHECK(j.contains("out") && j["out"].is_string(), where, ": key 'out' (the results folder) is required");
  c.out_dir = dir / j["out"].get<std::string>();
  FLAS_CHECK(j.contains("train"), where, ": key 'train' (the base training recipe) is required");
  c.base = base_recipe(j["train"], dir, where + ": train");

  FLAS_CHECK(j.contains("eval"), where, ": key 'eval' is required");
  const auto& e = j["eval"];
  detail::only_keys(e, {"config", "flowtimes", "report_flowtime", "instructions"}, where + ": eval");
  FLAS_CHECK(e.contains("config") && e["config"].is_string(), where, ": eval: key 'config' (an evaluation config file) is required");
  c.eval.config = dir / e["config"].get<std::string>();
  c.eval.flowtimes = detail::get_or(e, "flowtimes", c.eval.flowtimes, where + ": eval");
  FLAS_CHECK(!c.eval.flowtimes.empty(), where, ": eval: key 'flowtimes' is empty");
  for (double t : c.eval.flowtimes)
    FLAS_CHECK(t > 0 && t <= 100, where, ": eval: key 'flowtimes' has ", t, " (expected flow times in (0, 100])");
  c.eval.report_flowtime = detail::get_or(e, "report_flowtime", c.eval.flowtimes.back(), where + ": eval");
  FLAS_CHECK(std::count(c.eval.flowtimes.begin(), c.eval.flowtimes.end(), c.eval.report_flowtime) == 1, where,
             ": eval: key 'report_flowtime' (", c.eval.report_flowtime, ") must be one of 'flowtimes'");
  c.eval.instructions = detail::get_or<std::int64_t>(e, "instructions", 0, where + ": eval");
  FLAS_CHECK(c.eval.instructions >= 0, where, ": eval: key 'instructions' must be >= 0");

  c.seeds = detail::get_or(j, "seeds", c.seeds, where);
  FLAS_CHECK(!c.seeds.empty(), where, ": key 'seeds' is empty (give at least one seed)");
  FLAS_CHECK(std::set<std::uint64_t>(c.seeds.begin(), c.seeds.end()).size() == c.seeds.size(), where,
             ": key 'seeds' repeats a seed");

  FLAS_CHECK(j.contains("axes") != j.contains("variants"), where,
             ": give exactly one of 'axes' (a Cartesian product) and 'variants' (an explicit list)");
  if (j.contains("axes")) {
    const auto& axes = j["axes"];
    FLAS_CHECK(axes.is_object() && !axes.empty(), where, ": key 'axes' is empty (an empty grid)");
    for (const auto& [axis, values] : axes.items()) {
      FLAS_CHECK(values.is_array() && !values.empty(), where, ": axes: key '", axis, "' needs a non-empty list of values");
      for (const auto& v : values) check_axis_value(axis, v, where + ": axes");
      c.axis_order.push_back(axis);
    }
    c.variants = detail::cartesian(axes, c.axis_order);
  } else {
    const auto& vs = j["variants"];
    FLAS_CHECK(vs.is_array() && !vs.empty(), where, ": key 'variants' is empty (an empty grid)");
    std::set<std::string> names;
    for (std::size_t i = 0; i < vs.size(); ++i) {
      const std::string at = where + ": variants[" + std::to_string(i) + "]";
      FLAS_CHECK(vs[i].is_object(), at, ": expected an object like {\"name\": \"...\", \"blocks\": 2}");
      Variant v{detail::get_or<std::string>(vs[i], "name", "", at), nlohmann::json::object()};
      FLAS_CHECK(!v.name.empty(), at, ": key 'name' is required");
      FLAS_CHECK(names.insert(detail::slug(v.name)).second, at, ": key 'name' ('", v.name, "') repeats another variant's name");
      for (const auto& [axis, value] : vs[i].items())
        if (axis != "name") {
          check_axis_value(axis, value, at);
          v.overrides[axis] = value;
        }
      c.variants.push_back(std::move(v));
    }
  }
  return c;
}

inline AblationConfig load_ablation_config(const std::filesystem::path& file) {
  return parse_ablation_config(detail::read_json_file(file), file);
}

// The run folder of one variant and seed.
inline std::filesystem::path run_dir(const AblationConfig& c, const Variant& v, std::uint64_t seed) {
  return c.out_dir / "runs" / detail::slug(v.name) / ("seed" + std::to_string(seed));
}

}  // namespace flas::ablate
