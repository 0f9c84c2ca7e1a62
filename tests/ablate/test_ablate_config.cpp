// Ablation configs: a grid expands to the Cartesian product, variants apply exactly their overrides,
// and every bad config (unknown axis or key, empty grid, a value out of range or of the wrong type)
// fails with a message that names the key.
#include <doctest/doctest.h>

#include "flas/ablate/ablation_config.hpp"

using namespace flas;

namespace {
nlohmann::json base_config() {
  return {{"out", "out"},
          {"train", {{"model", "m"}, {"data", {"d.jsonl"}}, {"layer", 3}, {"optimizer_steps", 10}}},
          {"eval", {{"config", "eval.json"}, {"flowtimes", {2, 4}}}},
          {"seeds", {1, 2}},
          {"variants", {{{"name", "base"}}, {{"name", "two blocks"}, {"blocks", 2}}}}};
}

std::string error_of(const nlohmann::json& j) {
  try {
    ablate::parse_ablation_config(j, "/tmp/study.json");
  } catch (const flas::Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("a grid is the Cartesian product of its axes, first axis slowest") {
  auto j = base_config();
  j.erase("variants");
  j["axes"] = {{"blocks", {1, 2}}, {"conditioning", {"cross_attention", "pooled", "none"}}};
  const auto c = ablate::parse_ablation_config(j, "/tmp/study.json");
  REQUIRE(c.variants.size() == 6);
  CHECK(c.variants[0].name == "blocks=1 conditioning=cross_attention");
  CHECK(c.variants[4].name == "blocks=2 conditioning=pooled");
  CHECK(c.axis_order == std::vector<std::string>{"blocks", "conditioning"});
  const auto r = ablate::variant_recipe(c.base, c.variants[4].overrides, 7, "test");
  CHECK(r.blocks == 2);
  CHECK(r.switches.pooled);
  CHECK_FALSE(r.switches.cross_attn);
  CHECK(r.seed == 7);
  CHECK(r.steps == 10);
  CHECK(r.model_dir == std::filesystem::path("/tmp/m"));  // relative to the config file
  const auto none = ablate::variant_recipe(c.base, c.variants[5].overrides, 1, "test");
  CHECK_FALSE(none.switches.pooled);
  CHECK_FALSE(none.switches.cross_attn);
  CHECK(c.eval.report_flowtime == 4.0);  // the last flow time unless given
}

TEST_CASE("each axis sets its own recipe field and reads back the same value") {
  const std::vector<std::pair<std::string, nlohmann::json>> settings{
      {"blocks", 3},         {"euler_steps", 5},         {"inference_steps", 7},      {"solver", "rk4"},
      {"t_min", 0.25},       {"t_max", 3.5},             {"layer", 2},                {"conditioning", "pooled"},
      {"self_attention", false}, {"mlp", false},         {"time_embedding", false},   {"init", "xavier"},
      {"lr", 0.002},         {"optimizer_steps", 123},   {"div_weight", 0.5}};
  CHECK(settings.size() == ablate::axes().size());
  for (const auto& [key, value] : settings) {
    train::TrainRecipe r;
    const auto before = ablate::axis_value(r, key);
    ablate::apply_axis(r, key, value, "test");
    CAPTURE(key);
    CHECK(ablate::axis_value(r, key) == value);
    CHECK(before != value);
  }
}

TEST_CASE("bad configs name the key and what was expected") {
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases{
      {"unknown axis", [](auto& j) { j["variants"][1]["blokcs"] = 2; }, {"variants[1]", "unknown axis 'blokcs'", "blocks"}},
      {"unknown top key", [](auto& j) { j["sedes"] = {1}; }, {"unknown key 'sedes'"}},
      {"empty variant list", [](auto& j) { j["variants"] = nlohmann::json::array(); }, {"'variants' is empty"}},
      {"empty axes", [](auto& j) { j.erase("variants"); j["axes"] = nlohmann::json::object(); }, {"'axes' is empty"}},
      {"empty axis values", [](auto& j) { j.erase("variants"); j["axes"] = {{"blocks", nlohmann::json::array()}}; },
       {"'blocks'", "non-empty list"}},
      {"both axes and variants", [](auto& j) { j["axes"] = {{"blocks", {1}}}; }, {"exactly one of 'axes'"}},
      {"blocks out of range", [](auto& j) { j["variants"][1]["blocks"] = 0; }, {"'blocks' is 0", "out of range [1, 8]"}},
      {"lr out of range", [](auto& j) { j["variants"][1]["lr"] = 5; }, {"'lr' is 5"}},
      {"wrong type", [](auto& j) { j["variants"][1]["mlp"] = "off"; }, {"'mlp' expects true or false"}},
      {"bad choice", [](auto& j) { j["variants"][1]["solver"] = "dopri5"; }, {"'solver'", "euler, midpoint, rk4"}},
      {"unnamed variant", [](auto& j) { j["variants"][1].erase("name"); }, {"variants[1]", "'name' is required"}},
      {"repeated name", [](auto& j) { j["variants"][1]["name"] = "base"; }, {"repeats another variant's name"}},
      {"no seeds", [](auto& j) { j["seeds"] = nlohmann::json::array(); }, {"'seeds' is empty"}},
      {"repeated seed", [](auto& j) { j["seeds"] = {3, 3}; }, {"'seeds' repeats"}},
      {"report T not evaluated", [](auto& j) { j["eval"]["report_flowtime"] = 3; }, {"'report_flowtime'"}},
      {"unknown train key", [](auto& j) { j["train"]["stepz"] = 3; }, {"train", "unknown key 'stepz'"}},
      {"no model", [](auto& j) { j["train"].erase("model"); }, {"'model' is required"}},
      {"no out", [](auto& j) { j.erase("out"); }, {"'out'"}},
      {"flow time out of range", [](auto& j) { j["eval"]["flowtimes"] = {-1}; }, {"'flowtimes'"}},
  };
  for (const auto& c : cases) {
    auto j = base_config();
    c.edit(j);
    const auto msg = error_of(j);
    CAPTURE(c.what);
    CAPTURE(msg);
    CHECK(msg.find("/tmp/study.json") != std::string::npos);
    for (const auto& s : c.says) CHECK(msg.find(s) != std::string::npos);
  }
}

TEST_CASE("a variant whose t_min exceeds t_max fails when its recipe is made") {
  auto j = base_config();
  j["variants"][1]["t_min"] = 3.0;
  const auto c = ablate::parse_ablation_config(j, "/tmp/study.json");
  CHECK_THROWS_WITH_AS(ablate::variant_recipe(c.base, c.variants[1].overrides, 1, "variant 'two blocks'"),
                       doctest::Contains("t_min (3) is above t_max (2)"), flas::Error);
}
