#pragma once
// The steering extension of a request: {"concept": "...", "flowtime": 2.0, "steps": 3}. `flowtime` and
// `steps` default to the flow's own (its JSON); a request without the field is unsteered.
#include <cmath>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "flas/serve/api_error.hpp"

namespace flas::serve {

// What a flow allows and defaults to, read off its JSON by the caller.
struct SteeringDefaults {
  bool available = false;  // false: the server runs without a flow
  float flowtime = 2.0f;
  int steps = 3;
};

inline constexpr float max_flowtime = 64.0f;
inline constexpr int max_flow_steps = 64;
inline constexpr std::size_t max_concept_chars = 2000;

struct SteeringSpec {
  std::string concept_text;
  float flowtime = 0;
  int steps = 0;
  // T = 0 is exactly the unsteered model: the engine runs such a row without the flow.
  bool steers() const { return flowtime != 0.0f; }
};

// Null or absent: unsteered. Anything else must be an object of the documented fields.
inline std::optional<SteeringSpec> parse_steering(const nlohmann::json* field, const SteeringDefaults& defaults) {
  if (!field || field->is_null()) return std::nullopt;
  if (!field->is_object()) bad_field("steering", std::string("expected an object {\"concept\", \"flowtime\", \"steps\"}, got ") + field->type_name());
  if (!defaults.available)
    throw ApiError(400, "steering: this server was started without a flow (--flow), so it cannot steer", "steering");
  SteeringSpec s{{}, defaults.flowtime, defaults.steps};
  const auto& o = *field;
  if (!o.contains("concept")) bad_field("steering.concept", "required: the concept to steer towards, as text");
  if (!o["concept"].is_string()) bad_field("steering.concept", std::string("expected a string, got ") + o["concept"].type_name());
  s.concept_text = o["concept"].get<std::string>();
  if (s.concept_text.find_first_not_of(" \t\r\n") == std::string::npos)
    bad_field("steering.concept", "must not be empty (e.g. \"the ocean\")");
  if (s.concept_text.size() > max_concept_chars)
    bad_field("steering.concept", "longer than the limit of " + std::to_string(max_concept_chars) + " characters");
  if (o.contains("flowtime") && !o["flowtime"].is_null()) {
    if (!o["flowtime"].is_number()) bad_field("steering.flowtime", std::string("expected a number, got ") + o["flowtime"].type_name());
    const double T = o["flowtime"].get<double>();
    if (!std::isfinite(T) || T < 0 || T > max_flowtime)
      bad_field("steering.flowtime", "expected a number in [0, " + std::to_string(int(max_flowtime)) + "], got " + o["flowtime"].dump());
    s.flowtime = float(T);
  }
  if (o.contains("steps") && !o["steps"].is_null()) {
    if (!o["steps"].is_number_integer()) bad_field("steering.steps", std::string("expected an integer, got ") + o["steps"].type_name());
    const auto n = o["steps"].get<long long>();
    if (n < 1 || n > max_flow_steps)
      bad_field("steering.steps", "expected an integer in [1, " + std::to_string(max_flow_steps) + "], got " + std::to_string(n));
    s.steps = int(n);
  }
  for (const auto& [key, value] : o.items())
    if (key != "concept" && key != "flowtime" && key != "steps")
      bad_field("steering." + key, "unknown field (expected concept, flowtime, steps)");
  return s;
}

}  // namespace flas::serve
