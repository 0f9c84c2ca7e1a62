#pragma once
// Offline concept-relevance proxy: per concept, a logistic regression on tf-idf features of the reply
// text (the AxBench "output" column), trained on the concept's labelled AxBench rows:
//   positives: rows with category "positive" and output_concept = the concept;
//   negatives: "negative" rows labelled with the concept (_latent_eval), "hard negative" rows of the
//              concept (_latent_eval: output_concept is "word//sense", the concept is the one with the same
//              concept_id in the same file), and the shared negatives (output_concept "EEEEE", _train),
//              which count for every concept loaded together.
// Each concept's rows are split (seeded, stratified by positive / own negative / shared negative) into a
// training part and a held-out part; the tf-idf vocabulary and the model see only the training part;
// held-out AUROC is reported against all held-out negatives and against the concept's own (harder) ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/eval/auroc.hpp"
#include "flas/eval/logistic_regression.hpp"
#include "flas/eval/text_features.hpp"

namespace flas::eval {

struct ConceptRows {
  std::string concept_text;
  std::vector<std::string> positives, own_negatives;  // reply texts; own = negatives and hard negatives
  std::vector<std::string> files;                     // where its rows came from, for messages
};

struct ConceptCorpus {
  std::vector<ConceptRows> concepts;            // in order of first appearance
  std::vector<std::string> shared_negatives;    // "EEEEE" rows: negatives of every concept
};

namespace detail {
inline std::string file_list(const std::vector<std::string>& files) {
  std::string s;
  for (const auto& f : files) s += (s.empty() ? "" : ", ") + f;
  return s;
}
}  // namespace detail

// Reads labelled AxBench JSONL files; refuses a file without rows and a concept without positive or
// without negative rows (naming the concept and the files).
inline ConceptCorpus load_concept_rows(const std::vector<std::filesystem::path>& files) {
  FLAS_CHECK(!files.empty(), "concept rows: no files given");
  ConceptCorpus corpus;
  std::map<std::string, std::size_t> index;
  auto concept_named = [&](const std::string& text, const std::string& file) -> ConceptRows& {
    auto [it, fresh] = index.emplace(text, corpus.concepts.size());
    if (fresh) corpus.concepts.push_back({text, {}, {}, {}});
    auto& c = corpus.concepts[it->second];
    if (c.files.empty() || c.files.back() != file) c.files.push_back(file);
    return c;
  };
  for (const auto& path : files) {
    const std::string file = path.string();
    std::ifstream in(path);
    FLAS_CHECK(in, file, ": cannot open the labelled AxBench rows");
    std::map<std::int64_t, std::string> concept_of_id;  // this file's concept_id -> concept text
    std::vector<std::pair<std::int64_t, std::string>> hard_negatives;  // (concept_id, text), resolved at the end
    std::vector<std::string> hard_negative_where;
    std::string line;
    std::int64_t line_no = 0, rows = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = file + ":" + std::to_string(line_no);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        fail(where, ": not valid JSON (", e.what(), ")");
      }
      for (const char* key : {"output", "output_concept", "category"})
        FLAS_CHECK(j.contains(key) && j[key].is_string(), where, ": field '", key, "' missing or not a string");
      ++rows;
      const auto category = j["category"].get<std::string>();
      const auto concept_text = j["output_concept"].get<std::string>();
      auto output = j["output"].get<std::string>();
      const bool has_id = j.contains("concept_id") && j["concept_id"].is_number_integer();
      if (category == "negative" && concept_text == "EEEEE") {
        corpus.shared_negatives.push_back(std::move(output));
      } else if (category == "positive" || category == "negative") {
        FLAS_CHECK(concept_text.find_first_not_of(" \t\r\n") != std::string::npos, where, ": empty output_concept on a ",
                   category, " row");
        auto& c = concept_named(concept_text, file);
        (category == "positive" ? c.positives : c.own_negatives).push_back(std::move(output));
        if (has_id) {
          const auto [it, fresh] = concept_of_id.emplace(j["concept_id"].get<std::int64_t>(), concept_text);
          FLAS_CHECK(fresh || it->second == concept_text, where, ": concept_id ", it->first, " names both '",
                     it->second, "' and '", concept_text, "'");
        }
      } else if (category == "hard negative") {
        FLAS_CHECK(has_id, where, ": a hard negative needs an integer concept_id (it names the concept it is ",
                   "a hard negative of)");
        hard_negatives.emplace_back(j["concept_id"].get<std::int64_t>(), std::move(output));
        hard_negative_where.push_back(where);
      } else {
        fail(where, ": category '", category, "' is not one of positive, negative, hard negative");
      }
    }
    FLAS_CHECK(rows > 0, file, ": no rows (expected labelled AxBench JSON lines)");
    for (std::size_t k = 0; k < hard_negatives.size(); ++k) {
      const auto it = concept_of_id.find(hard_negatives[k].first);
      FLAS_CHECK(it != concept_of_id.end(), hard_negative_where[k], ": hard negative of concept_id ",
                 hard_negatives[k].first, ", but no positive or negative row of this file has that concept_id");
      concept_named(it->second, file).own_negatives.push_back(std::move(hard_negatives[k].second));
    }
  }
  for (const auto& c : corpus.concepts) {
    FLAS_CHECK(!c.positives.empty(), "concept '", c.concept_text, "': no positive rows in ", detail::file_list(c.files));
    FLAS_CHECK(!c.own_negatives.empty() || !corpus.shared_negatives.empty(), "concept '", c.concept_text,
               "': no negative rows (neither its own nor shared \"EEEEE\" ones) in ", detail::file_list(c.files));
  }
  FLAS_CHECK(!corpus.concepts.empty(), "concept rows: no concept in ", files.size(), " files (only shared negatives)");
  return corpus;
}

struct ClassifierOptions {
  double held_out_fraction = 0.25;
  std::uint64_t seed = 17;
  std::size_t min_document_frequency = 2;
  LogisticOptions logistic;
};

// Held-out evaluation of one classifier.
struct HeldOutReport {
  double auroc = 0;                             // positives vs all held-out negatives
  std::optional<double> auroc_own_negatives;    // positives vs the concept's own (and hard) negatives
  std::size_t positives = 0, negatives = 0, own_negatives = 0;
};

inline void to_json(nlohmann::json& j, const HeldOutReport& r) {
  j = {{"auroc", r.auroc}, {"positives", r.positives}, {"negatives", r.negatives}, {"own_negatives", r.own_negatives}};
  j["auroc_own_negatives"] = r.auroc_own_negatives ? nlohmann::json(*r.auroc_own_negatives) : nlohmann::json(nullptr);
}

class ConceptClassifier {
 public:
  // Splits `rows` (plus `shared_negatives`), fits tf-idf and the model on the training part and
  // evaluates on the held-out part.
  static ConceptClassifier train(const ConceptRows& rows, const std::vector<std::string>& shared_negatives,
                                 const ClassifierOptions& options = {}) {
    const std::string what = "concept '" + rows.concept_text + "'";
    FLAS_CHECK(options.held_out_fraction > 0 && options.held_out_fraction < 1, what, ": held_out_fraction ",
               options.held_out_fraction, " is not in (0, 1)");
    FLAS_CHECK(rows.positives.size() >= 2, what, ": needs at least 2 positive rows (one to train, one held out), has ",
               rows.positives.size());
    FLAS_CHECK(rows.own_negatives.size() + shared_negatives.size() >= 2, what,
               ": needs at least 2 negative rows (one to train, one held out), has ",
               rows.own_negatives.size() + shared_negatives.size());
    std::mt19937_64 rng(options.seed ^ fnv1a(rows.concept_text));
    std::vector<std::string> train_text, held_text;
    std::vector<int> train_label, held_label, held_is_own;
    auto split = [&](const std::vector<std::string>& group, int label, int own) {
      std::vector<std::size_t> order(group.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);  // Fisher-Yates
      std::size_t held = std::size_t(std::llround(options.held_out_fraction * double(group.size())));
      if (group.size() >= 2) held = std::clamp<std::size_t>(held, 1, group.size() - 1);
      for (std::size_t k = 0; k < order.size(); ++k) {
        const bool out = k < held;
        (out ? held_text : train_text).push_back(group[order[k]]);
        (out ? held_label : train_label).push_back(label);
        if (out) held_is_own.push_back(own);
      }
    };
    split(rows.positives, 1, 0);
    split(rows.own_negatives, 0, 1);
    split(shared_negatives, 0, 0);

    ConceptClassifier c;
    c.concept_ = rows.concept_text;
    c.vectorizer_ = TfidfVectorizer::fit(train_text, options.min_document_frequency);
    std::vector<SparseVector> x;
    x.reserve(train_text.size());
    for (const auto& t : train_text) x.push_back(c.vectorizer_.transform(t));
    c.model_ = train_logistic(x, train_label, c.vectorizer_.size(), options.logistic, what);

    std::vector<double> scores;
    for (const auto& t : held_text) scores.push_back(c.probability(t));
    c.held_out_.auroc = eval::auroc(scores, held_label, what + " held-out rows");
    std::vector<double> own_scores;
    std::vector<int> own_labels;
    for (std::size_t i = 0; i < held_text.size(); ++i) {
      c.held_out_.positives += held_label[i];
      c.held_out_.negatives += 1 - held_label[i];
      c.held_out_.own_negatives += held_is_own[i];
      if (held_label[i] == 1 || held_is_own[i]) {
        own_scores.push_back(scores[i]);
        own_labels.push_back(held_label[i]);
      }
    }
    if (c.held_out_.own_negatives > 0)
      c.held_out_.auroc_own_negatives = eval::auroc(own_scores, own_labels, what + " held-out own negatives");
    return c;
  }

  double probability(std::string_view text) const { return model_.probability(vectorizer_.transform(text)); }

  // AUROC of probability() on any labelled texts (labels 1 = shows the concept).
  double auroc(const std::vector<std::string>& texts, const std::vector<int>& labels) const {
    std::vector<double> scores;
    for (const auto& t : texts) scores.push_back(probability(t));
    return eval::auroc(scores, labels, "concept '" + concept_ + "'");
  }

  const std::string& concept_text() const { return concept_; }
  const HeldOutReport& held_out() const { return held_out_; }
  const TfidfVectorizer& vectorizer() const { return vectorizer_; }
  const LogisticModel& model() const { return model_; }

  nlohmann::json to_json() const {
    return {{"concept", concept_}, {"tfidf", vectorizer_.to_json()}, {"weights", model_.weights},
            {"bias", model_.bias}, {"held_out", held_out_}};
  }

  static ConceptClassifier from_json(const nlohmann::json& j, const std::string& where) {
    FLAS_CHECK(j.is_object() && j.contains("concept") && j["concept"].is_string(), where,
               ": expected a classifier object with a string 'concept'");
    ConceptClassifier c;
    c.concept_ = j["concept"].get<std::string>();
    const std::string here = where + " (concept '" + c.concept_ + "')";
    FLAS_CHECK(j.contains("tfidf") && j.contains("weights") && j["weights"].is_array() && j.contains("bias") &&
                   j["bias"].is_number() && j.contains("held_out") && j["held_out"].is_object(),
               here, ": expected fields tfidf, weights (array), bias (number), held_out (object)");
    c.vectorizer_ = TfidfVectorizer::from_json(j["tfidf"], here);
    try {
      c.model_.weights = j["weights"].get<std::vector<double>>();
      const auto& h = j["held_out"];
      c.held_out_.auroc = h.at("auroc").get<double>();
      c.held_out_.positives = h.at("positives").get<std::size_t>();
      c.held_out_.negatives = h.at("negatives").get<std::size_t>();
      c.held_out_.own_negatives = h.at("own_negatives").get<std::size_t>();
      if (!h.at("auroc_own_negatives").is_null()) c.held_out_.auroc_own_negatives = h["auroc_own_negatives"].get<double>();
    } catch (const std::exception& e) {
      fail(here, ": malformed weights or held_out (", e.what(), ")");
    }
    c.model_.bias = j["bias"].get<double>();
    FLAS_CHECK(c.model_.weights.size() == c.vectorizer_.size(), here, ": ", c.model_.weights.size(),
               " weights for ", c.vectorizer_.size(), " tf-idf features (expected equal)");
    return c;
  }

 private:
  static std::uint64_t fnv1a(const std::string& s) {  // seeds each concept's split independently of order
    std::uint64_t h = 1469598103934665603ull;
    for (const unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return h;
  }

  std::string concept_;
  TfidfVectorizer vectorizer_;
  LogisticModel model_;
  HeldOutReport held_out_;
};

}  // namespace flas::eval
