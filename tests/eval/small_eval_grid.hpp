#pragma once
// The small evaluation grid the generation tests run (one process, or ranks of mpirun): the bundled chat
// model and flow, two held-in and one held-out concept, two instructions, every method, 8 new tokens,
// sampled; and its generations file with the timings (which differ run to run) removed, for comparing.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace flas::testing {

inline nlohmann::json small_eval_config(const std::filesystem::path& out) {
  const std::filesystem::path data(FLAS_PROJECT_DATA), models(FLAS_PROJECT_MODELS);
  return {{"model", (models / "tiny-gemma2-chat").string()},
          {"flow", (models / "tiny-gemma2-chat-flow/flow.safetensors").string()},
          {"diffmean", (out / "diffmean.safetensors").string()},
          {"concept_data", {(data / "axbench/concept10_prod_2b_l20_v1_train.jsonl").string()}},
          {"concepts",
           {{"held_in", {"references to rental services and associated equipment",
                         "terms related to root in mathematical contexts"}},
            {"held_out", {"layout attributes in a UI design context"}}}},
          {"instructions", {{"file", (data / "alpaca_eval.json").string()}, {"first", 3}, {"count", 2}}},
          {"methods", {{"flas", {0, 3}}, {"diffmean", {0, 2}}, {"prompt", {0}}, {"none", {0}}}},
          {"max_new_tokens", 8},
          {"batch_size", 5},
          {"temperature", 0.8},
          {"seed", 7},
          {"out", out.string()}};
}

inline std::string generations_without_timings(const std::filesystem::path& jsonl) {
  std::ifstream in(jsonl);
  std::string line, out;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("prefill_seconds");
    j.erase("decode_seconds");
    out += j.dump() + "\n";
  }
  return out;
}

}  // namespace flas::testing
