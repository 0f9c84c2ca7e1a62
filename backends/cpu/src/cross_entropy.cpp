// BackwardOps<CpuBackend>::cross_entropy — mean over counted rows of −log softmax(logits)[label], and
// dlogits = (softmax − onehot)/count, with the scalar backend's semantics (ignored rows: 0 loss and 0
// gradient; no counted row: 0). A 2B chunk of logits is ~262 rows × 256000 (256 MB): one task per row,
// three vectorised sweeps over it (max, Σ e^(x − max), the gradient), the row being L2-sized. dlogits
// may be logits: each element is read just before it is written.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "flas/backends/cpu_backward.hpp"
#include "op_checks.hpp"
#include "parallel.hpp"
#include "vec_math.hpp"

namespace flas {

using namespace cpu_detail;

namespace {
constexpr std::int64_t kChunk = 1024;  // logits per f32 partial sum of e^(x − max)
}  // namespace

double BackwardOps<CpuBackend>::cross_entropy(const Tensor& logits, const Tensor& labels, Tensor* dlogits) {
  expect_f32(logits, "cross_entropy", "logits");
  const std::int64_t V = logits.dim(-1), M = rows_of(logits);
  FLAS_CHECK(V > 0 && labels.dtype() == DType::I64 && labels.numel() == M, "cross_entropy: labels ",
             dtype_name(labels.dtype()), " ", labels.shape(), " do not match logits ", logits.shape(),
             " (expected I64 with one label per row)");
  if (dlogits) {
    expect_f32(*dlogits, "cross_entropy", "dlogits");
    FLAS_CHECK(dlogits->numel() == logits.numel(), "cross_entropy: dlogits ", dlogits->shape(),
               " does not match logits ", logits.shape());
  }
  const auto* lab = labels.data<std::int64_t>();
  const auto* bad = std::find_if(lab, lab + M, [V](std::int64_t l) { return l != ignore_label && (l < 0 || l >= V); });
  FLAS_CHECK(bad == lab + M, "cross_entropy: label ", *bad, " at row ", bad - lab, " is outside [0, ", V, ") and not ",
             ignore_label);
  const std::int64_t count = M - std::count(lab, lab + M, ignore_label);
  const float* lp = logits.data<float>();
  float* dp = dlogits ? dlogits->data<float>() : nullptr;
  const double inv_count = count ? 1.0 / double(count) : 0.0;
  std::vector<double> row_loss(std::size_t(M), 0.0);  // summed in row order afterwards: deterministic

#pragma omp parallel for schedule(dynamic, 1) if (worth_parallel(M * V) && M > 1)
  for (std::int64_t m = 0; m < M; ++m) {
    const float* row = lp + m * V;
    float* drow = dp ? dp + m * V : nullptr;
    if (lab[m] == ignore_label) {
      if (drow) std::fill_n(drow, V, 0.0f);
      continue;
    }
    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (std::int64_t c = 0; c < V; ++c) mx = row[c] > mx ? row[c] : mx;  // std::max does not vectorise here
    double z = 0;  // f32 sums over chunks, added in double: a double reduction would not vectorise
    for (std::int64_t c0 = 0; c0 < V; c0 += kChunk) {
      const std::int64_t c1 = std::min(V, c0 + kChunk);
      float part = 0;
#pragma omp simd reduction(+ : part)
      for (std::int64_t c = c0; c < c1; ++c) part += fast_exp(row[c] - mx);
      z += double(part);
    }
    const float target = row[lab[m]];
    row_loss[std::size_t(m)] = double(mx) + std::log(z) - double(target);
    if (!drow) continue;
    const float scale = float(inv_count / z);
#pragma omp simd
    for (std::int64_t c = 0; c < V; ++c) drow[c] = fast_exp(row[c] - mx) * scale;
    drow[lab[m]] = float((double(fast_exp(target - mx)) / z - 1.0) * inv_count);
  }
  double total = 0;
  for (double l : row_loss) total += l;
  return total * inv_count;
}

}  // namespace flas
