#pragma once
// Area under the ROC curve: the probability that a random positive scores above a random negative,
// ties counted as half (the Mann-Whitney U statistic over n_pos * n_neg). Computed in O(n log n) from
// average ranks. Refuses empty, mismatched, single-class or non-finite input.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::eval {

// labels: 1 = positive, 0 = negative. `what` names the data for messages ("concept 'x' held-out rows").
inline double auroc(std::span<const double> scores, std::span<const int> labels, const std::string& what = "AUROC") {
  FLAS_CHECK(scores.size() == labels.size(), what, ": ", scores.size(), " scores but ", labels.size(), " labels");
  FLAS_CHECK(!scores.empty(), what, ": no scores");
  double positives = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    FLAS_CHECK(labels[i] == 0 || labels[i] == 1, what, ": label ", labels[i], " at ", i, " is not 0 or 1");
    FLAS_CHECK(std::isfinite(scores[i]), what, ": score ", scores[i], " at ", i, " is not finite");
    positives += labels[i];
  }
  const double negatives = double(scores.size()) - positives;
  FLAS_CHECK(positives > 0 && negatives > 0, what, ": needs both classes, got ", positives, " positive and ",
             negatives, " negative");

  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Sum of the positives' ranks, tied runs sharing their average rank (1-based).
  double positive_rank_sum = 0;
  for (std::size_t start = 0; start < order.size();) {
    std::size_t end = start;
    while (end < order.size() && scores[order[end]] == scores[order[start]]) ++end;
    const double average_rank = (double(start + 1) + double(end)) / 2;
    for (std::size_t k = start; k < end; ++k)
      if (labels[order[k]] == 1) positive_rank_sum += average_rank;
    start = end;
  }
  const double u = positive_rank_sum - positives * (positives + 1) / 2;
  return u / (positives * negatives);
}

inline double auroc(const std::vector<double>& scores, const std::vector<int>& labels,
                    const std::string& what = "AUROC") {
  return auroc(std::span<const double>(scores), std::span<const int>(labels), what);
}

}  // namespace flas::eval
