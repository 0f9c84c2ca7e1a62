#pragma once
// Binary logistic regression on sparse l2-normalised features, trained deterministically.
//
// Objective (minimised):  sum_i c_i * [softplus(z_i) - y_i z_i] + (l2 / 2) * |w|^2,  z_i = w.x_i + b,
// with the bias b unregularised and the row weights c_i summing to 1: with balanced classes each class
// carries half the mass (c_i = 1 / (2 n_class)), so probability 0.5 means "as likely positive as
// negative" whatever the class sizes; otherwise c_i = 1 / n.
//
// Training: full-batch Nesterov-accelerated gradient descent with step 1/L, where
// L = 0.25 * max_i (|x_i|^2 + 1) + l2 bounds the Hessian, and an adaptive restart of the momentum when it
// points uphill (O'Donoghue & Candes 2015). No randomness: the same data gives the same weights.
#include <algorithm>
#include <cmath>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/eval/text_features.hpp"

namespace flas::eval {

struct LogisticOptions {
  double l2 = 1e-3;
  bool balance_classes = true;
  std::size_t max_iterations = 5000;
  double gradient_tolerance = 1e-5;  // stop when every gradient component is below this
};

struct LogisticModel {
  std::vector<double> weights;
  double bias = 0;

  double decision(const SparseVector& x) const { return dot(x, weights) + bias; }
  double probability(const SparseVector& x) const {
    const double z = decision(x);
    return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
  }
};

struct LogisticObjective {
  double loss = 0;
  std::vector<double> weight_gradient;
  double bias_gradient = 0;
};

namespace detail {
inline double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }
inline double sigmoid(double z) { return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z)); }

inline std::vector<double> row_weights(const std::vector<int>& y, bool balance, const char* what) {
  double positives = 0;
  for (const int label : y) {
    FLAS_CHECK(label == 0 || label == 1, what, ": label ", label, " is not 0 or 1");
    positives += label;
  }
  const double negatives = double(y.size()) - positives;
  FLAS_CHECK(positives > 0 && negatives > 0, what, ": needs both classes, got ", positives, " positive and ",
             negatives, " negative rows");
  std::vector<double> c(y.size());
  for (std::size_t i = 0; i < y.size(); ++i)
    c[i] = balance ? 0.5 / (y[i] ? positives : negatives) : 1.0 / double(y.size());
  return c;
}
}  // namespace detail

// The objective above and its gradient at `model` (exposed so tests can check it by finite differences).
inline LogisticObjective logistic_objective(const LogisticModel& model, const std::vector<SparseVector>& x,
                                            const std::vector<int>& y, const LogisticOptions& options) {
  FLAS_CHECK(x.size() == y.size(), "logistic regression: ", x.size(), " rows but ", y.size(), " labels");
  const auto c = detail::row_weights(y, options.balance_classes, "logistic regression");
  LogisticObjective out;
  out.weight_gradient.assign(model.weights.size(), 0.0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double z = model.decision(x[i]);
    out.loss += c[i] * (detail::softplus(z) - y[i] * z);
    const double residual = c[i] * (detail::sigmoid(z) - y[i]);
    for (std::size_t k = 0; k < x[i].index.size(); ++k) out.weight_gradient[x[i].index[k]] += residual * x[i].value[k];
    out.bias_gradient += residual;
  }
  for (std::size_t j = 0; j < model.weights.size(); ++j) {
    out.loss += 0.5 * options.l2 * model.weights[j] * model.weights[j];
    out.weight_gradient[j] += options.l2 * model.weights[j];
  }
  return out;
}

// Trains on rows `x` (feature indices below `dimensions`) with labels `y` in {0, 1}.
inline LogisticModel train_logistic(const std::vector<SparseVector>& x, const std::vector<int>& y,
                                    std::size_t dimensions, const LogisticOptions& options,
                                    const std::string& what = "logistic regression") {
  FLAS_CHECK(options.l2 > 0, what, ": l2 must be positive, got ", options.l2);
  double max_norm2 = 0;
  for (const auto& row : x) {
    double n2 = 0;
    for (std::size_t k = 0; k < row.index.size(); ++k) {
      FLAS_CHECK(row.index[k] < dimensions, what, ": feature ", row.index[k], " out of range (", dimensions, ")");
      n2 += row.value[k] * row.value[k];
    }
    max_norm2 = std::max(max_norm2, n2);
  }
  const double step = 1 / (0.25 * (max_norm2 + 1) + options.l2);

  LogisticModel current{std::vector<double>(dimensions, 0.0), 0.0}, previous = current, look_ahead = current;
  double momentum_t = 1;
  for (std::size_t iteration = 0; iteration < options.max_iterations; ++iteration) {
    const auto g = logistic_objective(look_ahead, x, y, options);
    double largest = std::abs(g.bias_gradient);
    for (const double v : g.weight_gradient) largest = std::max(largest, std::abs(v));
    if (largest < options.gradient_tolerance) return look_ahead;

    previous = current;
    for (std::size_t j = 0; j < dimensions; ++j) current.weights[j] = look_ahead.weights[j] - step * g.weight_gradient[j];
    current.bias = look_ahead.bias - step * g.bias_gradient;

    // Restart when the step went against the momentum direction: keeps the descent monotone-ish.
    double uphill = g.bias_gradient * (current.bias - previous.bias);
    for (std::size_t j = 0; j < dimensions; ++j) uphill += g.weight_gradient[j] * (current.weights[j] - previous.weights[j]);
    if (uphill > 0) momentum_t = 1;
    const double next_t = (1 + std::sqrt(1 + 4 * momentum_t * momentum_t)) / 2;
    const double beta = (momentum_t - 1) / next_t;
    momentum_t = next_t;
    for (std::size_t j = 0; j < dimensions; ++j)
      look_ahead.weights[j] = current.weights[j] + beta * (current.weights[j] - previous.weights[j]);
    look_ahead.bias = current.bias + beta * (current.bias - previous.bias);
  }
  fail(what, ": did not converge in ", options.max_iterations, " iterations (gradient tolerance ",
       options.gradient_tolerance, "); raise l2 or max_iterations");
}

}  // namespace flas::eval
