#pragma once
// The two leading principal components of a set of points (rows), by power iteration with deflation
// on the covariance matrix, and the points' coordinates in that plane: how trajectories of many
// tokens are drawn on one page. Deterministic (a fixed start vector), f64 throughout.
#include <cmath>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::analysis {

struct Projection2D {
  std::vector<double> mean, axis1, axis2;   // [H] each
  double explained1 = 0, explained2 = 0;    // fractions of the total variance
  std::vector<std::pair<double, double>> coords;  // one per point
};

// points: n rows of `dim` values each, row-major.
inline Projection2D pca_2d(const std::vector<float>& points, std::size_t dim, int iterations = 500) {
  FLAS_CHECK(dim >= 2 && points.size() % dim == 0 && points.size() / dim >= 2,
             "PCA: need at least two points of at least two dimensions");
  const std::size_t n = points.size() / dim;
  Projection2D p;
  p.mean.assign(dim, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < dim; ++d) p.mean[d] += points[i * dim + d] / double(n);
  std::vector<double> cov(dim * dim, 0.0);
  std::vector<double> x(dim);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t d = 0; d < dim; ++d) x[d] = points[i * dim + d] - p.mean[d];
    for (std::size_t a = 0; a < dim; ++a)
      for (std::size_t b = 0; b < dim; ++b) cov[a * dim + b] += x[a] * x[b] / double(n);
  }
  double total = 0;
  for (std::size_t d = 0; d < dim; ++d) total += cov[d * dim + d];
  auto leading = [&](std::vector<double>& v, double& eig) {
    v.assign(dim, 0.0);
    for (std::size_t d = 0; d < dim; ++d) v[d] = 1.0 + 0.01 * double(d % 7);  // fixed, generic start
    std::vector<double> w(dim);
    for (int it = 0; it < iterations; ++it) {
      for (std::size_t a = 0; a < dim; ++a) {
        double s = 0;
        for (std::size_t b = 0; b < dim; ++b) s += cov[a * dim + b] * v[b];
        w[a] = s;
      }
      double norm = 0;
      for (double y : w) norm += y * y;
      norm = std::sqrt(norm);
      if (norm == 0) break;
      for (std::size_t d = 0; d < dim; ++d) v[d] = w[d] / norm;
      eig = norm;
    }
  };
  double e1 = 0, e2 = 0;
  leading(p.axis1, e1);
  for (std::size_t a = 0; a < dim; ++a)  // deflate: remove the first component
    for (std::size_t b = 0; b < dim; ++b) cov[a * dim + b] -= e1 * p.axis1[a] * p.axis1[b];
  leading(p.axis2, e2);
  p.explained1 = total > 0 ? e1 / total : 0;
  p.explained2 = total > 0 ? e2 / total : 0;
  for (std::size_t i = 0; i < n; ++i) {
    double c1 = 0, c2 = 0;
    for (std::size_t d = 0; d < dim; ++d) {
      const double y = points[i * dim + d] - p.mean[d];
      c1 += y * p.axis1[d];
      c2 += y * p.axis2[d];
    }
    p.coords.emplace_back(c1, c2);
  }
  return p;
}

}  // namespace flas::analysis
