#pragma once
// One ConceptClassifier per concept of a set of labelled AxBench files, trained once and saved as one
// JSON file (written atomically) so evaluation runs load it instead of retraining.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/eval/concept_classifier.hpp"
#include "flas/io/atomic_write.hpp"

namespace flas::eval {

class ConceptClassifierSet {
 public:
  static constexpr const char* format_name = "flas.concept_classifiers";
  static constexpr int format_version = 1;

  // Trains a classifier for every concept in `files` (see load_concept_rows for what counts as a
  // positive or a negative of a concept). Fails naming the concept if one lacks positives or negatives.
  static ConceptClassifierSet train(const std::vector<std::filesystem::path>& files,
                                    const ClassifierOptions& options = {}) {
    const auto corpus = load_concept_rows(files);
    ConceptClassifierSet set;
    for (const auto& rows : corpus.concepts)
      set.add(ConceptClassifier::train(rows, corpus.shared_negatives, options));
    return set;
  }

  bool contains(const std::string& concept_text) const { return index_.count(concept_text) > 0; }

  const ConceptClassifier& at(const std::string& concept_text) const {
    const auto it = index_.find(concept_text);
    FLAS_CHECK(it != index_.end(), "concept classifiers: no classifier for concept '", concept_text, "' (the set has ",
               classifiers_.size(), " concepts; train it on files that contain this concept's rows)");
    return classifiers_[it->second];
  }

  double probability(const std::string& concept_text, std::string_view text) const {
    return at(concept_text).probability(text);
  }

  std::size_t size() const { return classifiers_.size(); }
  const std::vector<ConceptClassifier>& classifiers() const { return classifiers_; }

  // (concept, held-out AUROC against all held-out negatives), in training order.
  std::vector<std::pair<std::string, double>> held_out_auroc() const {
    std::vector<std::pair<std::string, double>> out;
    for (const auto& c : classifiers_) out.emplace_back(c.concept_text(), c.held_out().auroc);
    return out;
  }

  void save(const std::filesystem::path& file) const {
    nlohmann::json j = {{"format", format_name}, {"version", format_version}, {"classifiers", nlohmann::json::array()}};
    for (const auto& c : classifiers_) j["classifiers"].push_back(c.to_json());
    const std::string text = j.dump();
    io::write_file_atomically(file, {std::as_bytes(std::span<const char>(text.data(), text.size()))});
  }

  static ConceptClassifierSet load(const std::filesystem::path& file) {
    const std::string where = file.string();
    std::ifstream in(file, std::ios::binary);
    FLAS_CHECK(in, where, ": cannot open the concept classifiers");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    FLAS_CHECK(j.is_object() && j.value("format", std::string()) == format_name, where, ": expected \"format\": \"",
               format_name, "\"");
    FLAS_CHECK(j.value("version", -1) == format_version, where, ": version ", j.value("version", -1),
               " is not the supported version ", format_version);
    FLAS_CHECK(j.contains("classifiers") && j["classifiers"].is_array() && !j["classifiers"].empty(), where,
               ": expected a non-empty array 'classifiers'");
    ConceptClassifierSet set;
    for (std::size_t i = 0; i < j["classifiers"].size(); ++i)
      set.add(ConceptClassifier::from_json(j["classifiers"][i], where + ": classifiers[" + std::to_string(i) + "]"));
    return set;
  }

 private:
  void add(ConceptClassifier c) {
    const auto [it, fresh] = index_.emplace(c.concept_text(), classifiers_.size());
    FLAS_CHECK(fresh, "concept classifiers: concept '", c.concept_text(), "' appears twice");
    classifiers_.push_back(std::move(c));
  }

  std::vector<ConceptClassifier> classifiers_;
  std::map<std::string, std::size_t> index_;
};

}  // namespace flas::eval
