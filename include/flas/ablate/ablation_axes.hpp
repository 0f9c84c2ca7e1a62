#pragma once
// What an ablation can vary: each axis is a key of the training recipe (or of inference), with its
// type and range. The same keys set the base recipe (config "train") and vary it ("axes", "variants"),
// so a variant is the base recipe plus a few overrides.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/train/train_run.hpp"

namespace flas::ablate {

struct AxisSpec {
  const char* name;
  const char* meaning;
};

// The axes, in the order tables show them.
inline const std::vector<AxisSpec>& axes() {
  static const std::vector<AxisSpec> a{
      {"blocks", "flow blocks (1..8)"},
      {"euler_steps", "Euler steps N in training (1..64); also at inference unless inference_steps is set"},
      {"inference_steps", "ODE steps N at inference (1..64)"},
      {"solver", "inference solver: euler, midpoint or rk4"},
      {"t_min", "smallest training flow time (0..100)"},
      {"t_max", "largest training flow time (0..100)"},
      {"layer", "steering layer (0..layers-1 of the model)"},
      {"conditioning", "how the concept enters: cross_attention, pooled or none"},
      {"self_attention", "the flow's self-attention sublayer (true/false)"},
      {"mlp", "the flow's MLP sublayer (true/false)"},
      {"time_embedding", "time conditioning (true/false)"},
      {"init", "initialisation: base_layer (copy layer L) or xavier"},
      {"lr", "peak learning rate (0..1]"},
      {"optimizer_steps", "training budget in optimiser steps (1..1000000)"},
      {"div_weight", "weight of the diversity loss (0..100)"},
  };
  return a;
}

namespace detail {
inline bool is_axis(const std::string& k) {
  for (const auto& a : axes())
    if (k == a.name) return true;
  return false;
}
inline std::string axis_list() {
  std::string s;
  for (const auto& a : axes()) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}
inline double number(const nlohmann::json& v, const std::string& at, const std::string& key, double lo, double hi) {
  FLAS_CHECK(v.is_number(), at, ": key '", key, "' expects a number, got ", v.dump());
  const double x = v.get<double>();
  FLAS_CHECK(x >= lo && x <= hi, at, ": key '", key, "' is ", x, ", out of range [", lo, ", ", hi, "]");
  return x;
}
inline int integer(const nlohmann::json& v, const std::string& at, const std::string& key, int lo, int hi) {
  FLAS_CHECK(v.is_number_integer(), at, ": key '", key, "' expects an integer, got ", v.dump());
  return int(number(v, at, key, lo, hi));
}
inline bool boolean(const nlohmann::json& v, const std::string& at, const std::string& key) {
  FLAS_CHECK(v.is_boolean(), at, ": key '", key, "' expects true or false, got ", v.dump());
  return v.get<bool>();
}
inline std::string choice(const nlohmann::json& v, const std::string& at, const std::string& key,
                          std::initializer_list<const char*> options) {
  std::string list;
  for (const char* o : options) {
    if (v.is_string() && v.get<std::string>() == o) return o;
    list += (list.empty() ? "" : ", ") + std::string(o);
  }
  fail(at, ": key '", key, "' is ", v.dump(), " (expected one of: ", list, ")");
}
}  // namespace detail

// Sets axis `key` of `r` to `v` (checked); `at` names the config place for errors.
inline void apply_axis(train::TrainRecipe& r, const std::string& key, const nlohmann::json& v, const std::string& at) {
  using namespace detail;
  if (key == "blocks") r.blocks = integer(v, at, key, 1, 8);
  else if (key == "euler_steps") r.euler_steps = integer(v, at, key, 1, 64);
  else if (key == "inference_steps") r.inference_steps = integer(v, at, key, 1, 64);
  else if (key == "solver") r.solver = choice(v, at, key, {"euler", "midpoint", "rk4"});
  else if (key == "t_min") r.t_min = float(number(v, at, key, 0, 100));
  else if (key == "t_max") r.t_max = float(number(v, at, key, 0, 100));
  else if (key == "layer") r.layer = integer(v, at, key, 0, 1024);
  else if (key == "conditioning") {
    const auto c = choice(v, at, key, {"cross_attention", "pooled", "none"});
    r.switches.cross_attn = c == "cross_attention";
    r.switches.pooled = c == "pooled";
  } else if (key == "self_attention") r.switches.self_attn = boolean(v, at, key);
  else if (key == "mlp") r.switches.mlp = boolean(v, at, key);
  else if (key == "time_embedding") r.switches.time = boolean(v, at, key);
  else if (key == "init") r.from_base_layer = choice(v, at, key, {"base_layer", "xavier"}) == "base_layer";
  else if (key == "lr") {
    r.lr = number(v, at, key, 0, 1);
    FLAS_CHECK(r.lr > 0, at, ": key 'lr' must be positive");
  } else if (key == "optimizer_steps") r.steps = integer(v, at, key, 1, 1000000);
  else if (key == "div_weight") r.div_weight = number(v, at, key, 0, 100);
  else fail(at, ": unknown axis '", key, "' (known: ", axis_list(), ")");
}

// Checks an axis value without a recipe to keep it (config parsing).
inline void check_axis_value(const std::string& key, const nlohmann::json& v, const std::string& at) {
  train::TrainRecipe scratch;
  apply_axis(scratch, key, v, at);
}

// The axis' value in a recipe, as JSON (for tables and the run's recipe record).
inline nlohmann::json axis_value(const train::TrainRecipe& r, const std::string& key) {
  if (key == "blocks") return r.blocks;
  if (key == "euler_steps") return r.euler_steps;
  if (key == "inference_steps") return r.inference_steps > 0 ? r.inference_steps : r.euler_steps;
  if (key == "solver") return r.solver;
  if (key == "t_min") return r.t_min;
  if (key == "t_max") return r.t_max;
  if (key == "layer") return r.layer;
  if (key == "conditioning") return r.switches.cross_attn ? "cross_attention" : r.switches.pooled ? "pooled" : "none";
  if (key == "self_attention") return r.switches.self_attn;
  if (key == "mlp") return r.switches.mlp;
  if (key == "time_embedding") return r.switches.time;
  if (key == "init") return r.from_base_layer ? "base_layer" : "xavier";
  if (key == "lr") return r.lr;
  if (key == "optimizer_steps") return r.steps;
  if (key == "div_weight") return r.div_weight;
  fail("ablation: unknown axis '", key, "'");
}

// The base recipe from the config's "train" object: every axis key, plus the data and budget keys.
inline train::TrainRecipe base_recipe(const nlohmann::json& j, const std::filesystem::path& dir, const std::string& at) {
  FLAS_CHECK(j.is_object(), at, ": expected an object");
  train::TrainRecipe r;
  r.seed = 0;
  r.held_out_concepts = 0;
  for (const auto& [k, v] : j.items()) {
    auto get_int = [&](std::int64_t lo, std::int64_t hi) { return std::int64_t(detail::number(v, at, k, double(lo), double(hi))); };
    if (detail::is_axis(k)) apply_axis(r, k, v, at);
    else if (k == "model") {
      FLAS_CHECK(v.is_string(), at, ": key 'model' expects a model folder (a string)");
      r.model_dir = dir / v.get<std::string>();
    } else if (k == "data") {
      FLAS_CHECK(v.is_array() && !v.empty(), at, ": key 'data' needs a non-empty list of AxBench files");
      for (const auto& f : v) {
        FLAS_CHECK(f.is_string(), at, ": key 'data' expects file names (strings), got ", f.dump());
        r.data.push_back(dir / f.get<std::string>());
      }
    } else if (k == "held_out_concepts") {
      FLAS_CHECK(v.is_array(), at, ": key 'held_out_concepts' expects a list of concept texts");
      for (const auto& c : v) {
        FLAS_CHECK(c.is_string(), at, ": key 'held_out_concepts' expects concept texts (strings), got ", c.dump());
        r.held_out_named.push_back(c.get<std::string>());
      }
      r.held_out_concepts = int(r.held_out_named.size());
    } else if (k == "batch_size") r.batch_size = get_int(1, 4096);
    else if (k == "warmup") r.warmup = get_int(0, 1000000);
    else if (k == "val_every") r.val_every = get_int(0, 1000000);
    else if (k == "val_samples") r.val_samples = get_int(1, 1000000);
    else if (k == "max_len") r.max_len = get_int(8, 1000000);
    else if (k == "grad_accum") r.grad_accum = int(get_int(1, 4096));
    else if (k == "patience") r.patience = get_int(0, 1000000);
    else fail(at, ": unknown key '", k, "' (axes: ", detail::axis_list(),
              "; and model, data, held_out_concepts, batch_size, warmup, val_every, val_samples, max_len, grad_accum, patience)");
  }
  FLAS_CHECK(!r.model_dir.empty(), at, ": key 'model' is required");
  FLAS_CHECK(!r.data.empty(), at, ": key 'data' is required");
  FLAS_CHECK(r.layer >= 0, at, ": key 'layer' is required");
  return r;
}

// The base recipe with a variant's overrides and a seed.
inline train::TrainRecipe variant_recipe(train::TrainRecipe r, const nlohmann::json& overrides, std::uint64_t seed,
                                         const std::string& at) {
  for (const auto& [k, v] : overrides.items()) apply_axis(r, k, v, at);
  r.seed = seed;
  FLAS_CHECK(r.t_min <= r.t_max, at, ": t_min (", r.t_min, ") is above t_max (", r.t_max, ")");
  return r;
}

// The recipe as JSON: what a run folder records, to refuse resuming with a changed config.
inline nlohmann::json recipe_json(const train::TrainRecipe& r) {
  nlohmann::json j;
  for (const auto& a : axes()) j[a.name] = axis_value(r, a.name);
  std::vector<std::string> data;
  for (const auto& f : r.data) data.push_back(std::filesystem::weakly_canonical(f).string());
  j["model"] = std::filesystem::weakly_canonical(r.model_dir).string();
  j["data"] = data;
  j["held_out_concepts"] = r.held_out_named;
  j["batch_size"] = r.batch_size;
  j["warmup"] = r.warmup;
  j["val_every"] = r.val_every;
  j["val_samples"] = r.val_samples;
  j["max_len"] = r.max_len;
  j["grad_accum"] = r.grad_accum;
  j["patience"] = r.patience;
  j["seed"] = r.seed;
  return j;
}

}  // namespace flas::ablate
