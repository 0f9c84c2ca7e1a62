#pragma once
// What the CPU benchmarks share: random models with Gemma-2-2B shapes (random_model.hpp; 2.6B
// parameters, 5.2 GB in bf16, 10.5 GB in f32 — one at a time fits this 24 GB machine), and the anchors
// (llama.cpp on the same kind of machine, the reference on an H100, measured floors) to print beside ours.
#include <fstream>
#include <string>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "gemma2_2b_config.hpp"
#include "random_model.hpp"

namespace flas::bench {

inline nlohmann::json anchors(const std::string& file) {
  std::ifstream in(std::string(FLAS_ANCHORS) + "/" + file);
  return nlohmann::json::parse(in);
}

}  // namespace flas::bench
