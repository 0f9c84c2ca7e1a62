#pragma once
// AxBench training rows (JSON Lines: input, output, output_concept, category, concept_id, ...) as FLAS
// trains on them: positive rows only, a concept identified by its text (concept_id restarts in every
// file), concept text = output_concept. Splits are seeded: whole concepts held out, then a validation
// sample of the remaining rows.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::train {

struct SteeringSample {
  std::string prompt, response, concept_text;
  std::int64_t concept_index = 0;  // index into the dataset's concept list
};

struct SteeringDataset {
  std::vector<std::string> concepts;  // distinct concept texts, in order of first appearance
  std::vector<SteeringSample> samples;
};

inline SteeringDataset load_axbench(const std::vector<std::filesystem::path>& files) {
  SteeringDataset d;
  std::map<std::string, std::int64_t> index;
  for (const auto& file : files) {
    std::ifstream in(file);
    FLAS_CHECK(in, file.string(), ": cannot open the training data");
    std::string line;
    std::int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json row;
      try {
        row = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        fail(file.string(), ":", line_no, ": not valid JSON (", e.what(), ")");
      }
      for (const char* key : {"input", "output", "output_concept", "category"})
        FLAS_CHECK(row.contains(key) && row[key].is_string(), file.string(), ":", line_no, ": field '", key,
                   "' missing or not a string");
      if (row["category"].get<std::string>() != "positive") continue;
      SteeringSample s{row["input"].get<std::string>(), row["output"].get<std::string>(),
                       row["output_concept"].get<std::string>(), 0};
      FLAS_CHECK(s.concept_text.find_first_not_of(" \t\r\n") != std::string::npos, file.string(), ":", line_no,
                 ": empty output_concept on a positive row");
      auto [it, fresh] = index.emplace(s.concept_text, std::int64_t(d.concepts.size()));
      if (fresh) d.concepts.push_back(s.concept_text);
      s.concept_index = it->second;
      d.samples.push_back(std::move(s));
    }
  }
  FLAS_CHECK(!d.samples.empty(), "training data: no positive rows in the given files");
  return d;
}

struct DataSplit {
  std::vector<std::size_t> train, validation, held_out;  // sample indices
  std::vector<std::int64_t> held_out_concepts;
};

// Holds out `held_out_concepts` whole concepts (their rows go to held_out), then `validation_samples`
// random rows of the rest (at most a tenth of them) for validation.
// `named_held_out` (concept texts), when given, are the held-out concepts instead of a random draw: an
// evaluation's held-out split stays fixed when training data with more concepts is added.
inline DataSplit split_dataset(const SteeringDataset& d, std::size_t held_out_concepts, std::size_t validation_samples,
                               std::uint64_t seed, const std::vector<std::string>& named_held_out = {}) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> order(d.concepts.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  DataSplit s;
  held_out_concepts = std::min(held_out_concepts, d.concepts.empty() ? 0 : d.concepts.size() - 1);
  s.held_out_concepts.assign(order.begin(), order.begin() + std::ptrdiff_t(held_out_concepts));
  if (!named_held_out.empty()) {
    s.held_out_concepts.clear();
    for (const auto& name : named_held_out) {
      const auto it = std::find(d.concepts.begin(), d.concepts.end(), name);
      FLAS_CHECK(it != d.concepts.end(), "training data: held-out concept \"", name, "\" has no positive rows in the data");
      s.held_out_concepts.push_back(std::int64_t(it - d.concepts.begin()));
    }
  }
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < d.samples.size(); ++i) {
    const bool out = std::find(s.held_out_concepts.begin(), s.held_out_concepts.end(), d.samples[i].concept_index) !=
                     s.held_out_concepts.end();
    (out ? s.held_out : rest).push_back(i);
  }
  std::shuffle(rest.begin(), rest.end(), rng);
  const std::size_t n_val = std::min(validation_samples, rest.size() / 10);
  s.validation.assign(rest.begin(), rest.begin() + std::ptrdiff_t(n_val));
  s.train.assign(rest.begin() + std::ptrdiff_t(n_val), rest.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.held_out.begin(), s.held_out.end());
  return s;
}

}  // namespace flas::train
