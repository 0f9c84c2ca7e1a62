#pragma once
// Repetition of a reply, on the words of text_features.hpp (lowercase, punctuation dropped):
//   repeated_ngram_fraction(text, n) = 1 - distinct n-grams / n-grams   (Welleck et al. 2019, "seq-rep-n")
//   distinct_n(text, n)              = distinct n-grams / n-grams       (Li et al. 2016, "distinct-n")
// so the two add up to 1. A text with fewer than n words has no n-grams: it repeats nothing, so its
// repeated fraction is 0 and its distinct-n is 1 (defined, not an error: steering may yield "").
// The fluency proxy uses n = 4 (repetition_rate): fluent answers almost never repeat a 4-word sequence,
// while degenerate steered text loops ("the the the", a phrase over and over); repeated unigrams are
// common in fluent text (function words) and say little.
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/eval/text_features.hpp"

namespace flas::eval {

namespace detail {
struct NgramCounts {
  std::size_t total = 0, distinct = 0;
};

inline NgramCounts count_ngrams(const std::vector<std::string>& w, std::size_t n) {
  FLAS_CHECK(n >= 1, "repetition: n-gram order must be at least 1, got ", n);
  NgramCounts c;
  if (w.size() < n) return c;
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i + n <= w.size(); ++i) {
    std::string gram = w[i];
    for (std::size_t k = 1; k < n; ++k) (gram += '\x1f') += w[i + k];  // a separator no word contains
    seen.insert(std::move(gram));
    ++c.total;
  }
  c.distinct = seen.size();
  return c;
}
}  // namespace detail

inline double repeated_ngram_fraction(std::string_view text, std::size_t n) {
  const auto c = detail::count_ngrams(words(text), n);
  return c.total == 0 ? 0.0 : 1.0 - double(c.distinct) / double(c.total);
}

inline double distinct_n(std::string_view text, std::size_t n) {
  const auto c = detail::count_ngrams(words(text), n);
  return c.total == 0 ? 1.0 : double(c.distinct) / double(c.total);
}

// Repeated fractions for n = 1 .. max_n (index n - 1).
inline std::vector<double> repetition_profile(std::string_view text, std::size_t max_n = 4) {
  const auto w = words(text);
  std::vector<double> out;
  for (std::size_t n = 1; n <= max_n; ++n) {
    const auto c = detail::count_ngrams(w, n);
    out.push_back(c.total == 0 ? 0.0 : 1.0 - double(c.distinct) / double(c.total));
  }
  return out;
}

// The proxy's repetition value: the repeated 4-gram fraction (see the note at the top).
inline double repetition_rate(std::string_view text) { return repeated_ngram_fraction(text, 4); }

}  // namespace flas::eval
