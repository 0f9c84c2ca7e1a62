#pragma once
// Bag-of-words text features for the offline proxies: lowercase word unigrams and bigrams, weighted by
// tf-idf (sublinear tf, smoothed idf, l2-normalised rows), as sparse vectors.
//
// Tokenisation (deliberately simple and deterministic): a word is a maximal run of ASCII letters and
// digits and of non-ASCII bytes (so UTF-8 words stay whole); ASCII letters are lowercased; every other
// byte (space, punctuation, apostrophe, markup) separates words. "Don't stop!" -> don, t, stop.
// Terms are the words and the space-joined pairs of adjacent words: don, t, stop, "don t", "t stop".
//
// Weights (the same as scikit-learn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2")):
//   tf(term, doc) = 1 + ln(count),   idf(term) = ln((1 + N) / (1 + df)) + 1,
// N = documents in the fitting corpus, df = documents containing the term; then the row is divided by
// its l2 norm. Terms unseen when fitting are ignored; a text with no known term is the zero vector.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::eval {

// Lowercase words of `text` (see the note at the top).
inline std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ascii_word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (ascii_word || c >= 0x80) {
      current.push_back((c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : ch);
    } else if (!current.empty()) {
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

// Unigrams then bigrams ("w1 w2") of `text`, with repeats (counts matter for tf).
inline std::vector<std::string> unigrams_and_bigrams(std::string_view text) {
  std::vector<std::string> terms = words(text);
  const std::size_t n = terms.size();
  for (std::size_t i = 0; i + 1 < n; ++i) terms.push_back(terms[i] + ' ' + terms[i + 1]);
  return terms;
}

// A sparse vector: strictly increasing feature indices and their values.
struct SparseVector {
  std::vector<std::uint32_t> index;
  std::vector<double> value;
};

inline double dot(const SparseVector& x, const std::vector<double>& dense) {
  double s = 0;
  for (std::size_t k = 0; k < x.index.size(); ++k) s += x.value[k] * dense[x.index[k]];
  return s;
}

class TfidfVectorizer {
 public:
  // Fits the vocabulary (terms in at least `min_document_frequency` documents, sorted, so feature
  // indices do not depend on the corpus order) and the idf weights.
  static TfidfVectorizer fit(const std::vector<std::string>& corpus, std::size_t min_document_frequency = 1) {
    FLAS_CHECK(!corpus.empty(), "tf-idf: cannot fit on an empty corpus");
    FLAS_CHECK(min_document_frequency >= 1, "tf-idf: min_document_frequency must be at least 1");
    std::map<std::string, std::size_t> document_frequency;
    for (const auto& doc : corpus) {
      auto terms = unigrams_and_bigrams(doc);
      std::sort(terms.begin(), terms.end());
      terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
      for (auto& t : terms) ++document_frequency[std::move(t)];
    }
    TfidfVectorizer v;
    const double n = double(corpus.size());
    for (const auto& [term, df] : document_frequency) {
      if (df < min_document_frequency) continue;
      v.terms_.push_back(term);
      v.idf_.push_back(std::log((1 + n) / (1 + double(df))) + 1);
    }
    FLAS_CHECK(!v.terms_.empty(), "tf-idf: no term occurs in at least ", min_document_frequency, " of the ",
               corpus.size(), " documents");
    v.build_lookup();
    return v;
  }

  SparseVector transform(std::string_view text) const {
    std::map<std::uint32_t, double> counts;  // ordered: the output indices come out sorted
    for (const auto& term : unigrams_and_bigrams(text))
      if (const auto it = lookup_.find(term); it != lookup_.end()) counts[it->second] += 1;
    SparseVector x;
    double norm2 = 0;
    for (const auto& [i, c] : counts) {
      const double w = (1 + std::log(c)) * idf_[i];
      x.index.push_back(i);
      x.value.push_back(w);
      norm2 += w * w;
    }
    if (norm2 > 0)
      for (double& w : x.value) w /= std::sqrt(norm2);
    return x;
  }

  std::size_t size() const { return terms_.size(); }
  const std::vector<std::string>& vocabulary() const { return terms_; }
  const std::vector<double>& idf() const { return idf_; }
  std::optional<std::size_t> feature_of(const std::string& term) const {
    const auto it = lookup_.find(term);
    return it == lookup_.end() ? std::nullopt : std::optional<std::size_t>(it->second);
  }

  nlohmann::json to_json() const { return {{"vocabulary", terms_}, {"idf", idf_}}; }

  // `where` names the file and object for messages.
  static TfidfVectorizer from_json(const nlohmann::json& j, const std::string& where) {
    FLAS_CHECK(j.is_object() && j.contains("vocabulary") && j["vocabulary"].is_array() && j.contains("idf") &&
                   j["idf"].is_array(),
               where, ": expected a tf-idf object with arrays 'vocabulary' and 'idf'");
    TfidfVectorizer v;
    try {
      v.terms_ = j["vocabulary"].get<std::vector<std::string>>();
      v.idf_ = j["idf"].get<std::vector<double>>();
    } catch (const std::exception& e) {
      fail(where, ": tf-idf 'vocabulary' must hold strings and 'idf' numbers (", e.what(), ")");
    }
    FLAS_CHECK(!v.terms_.empty() && v.terms_.size() == v.idf_.size(), where, ": tf-idf has ", v.terms_.size(),
               " terms but ", v.idf_.size(), " idf weights (expected equal, non-zero)");
    for (const double w : v.idf_) FLAS_CHECK(std::isfinite(w) && w > 0, where, ": tf-idf weight ", w, " is not positive");
    v.build_lookup();
    FLAS_CHECK(v.lookup_.size() == v.terms_.size(), where, ": tf-idf vocabulary has repeated terms");
    return v;
  }

 private:
  void build_lookup() {
    lookup_.clear();
    lookup_.reserve(terms_.size());
    for (std::size_t i = 0; i < terms_.size(); ++i) lookup_.emplace(terms_[i], std::uint32_t(i));
  }

  std::vector<std::string> terms_;
  std::vector<double> idf_;
  std::unordered_map<std::string, std::uint32_t> lookup_;
};

}  // namespace flas::eval
