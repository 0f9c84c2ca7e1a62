#pragma once
// BackwardOps<KokkosBackend<E>>::cross_entropy: one team per row (max, Σ exp and the row's loss in
// double, as the scalar oracle), dlogits written by the same team; the loss is the sum over teams.
// Labels are checked on the host first (a kernel cannot throw).
#include <vector>

#include "flas/backends/kokkos/views.hpp"
#include "flas/backends/kokkos_backward.hpp"

namespace flas {

template <class E>
double BackwardOps<KokkosBackend<E>>::cross_entropy(const tensor& logits, const tensor& labels, tensor* dlogits) {
  using namespace kokkos_detail;
  using Mem = typename E::memory_space;
  kokkos_ensure_initialized();
  expect_f32(logits, "cross_entropy", "logits");
  const std::int64_t V = logits.rank() ? logits.dim(-1) : 0, M = rows(logits);
  FLAS_CHECK(V > 0 && labels.dtype() == DType::I64 && labels.numel() == M, "cross_entropy: labels ",
             dtype_name(labels.dtype()), " ", labels.shape(), " do not match logits ", logits.shape(),
             " (expected I64 with one label per row)");
  if (dlogits) {
    expect_f32(*dlogits, "cross_entropy", "dlogits");
    FLAS_CHECK(dlogits->numel() == logits.numel(), "cross_entropy: dlogits ", dlogits->shape(),
               " does not match logits ", logits.shape());
  }
  std::vector<std::int64_t> host_labels(static_cast<std::size_t>(M));
  Kokkos::deep_copy(Kokkos::View<std::int64_t*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(host_labels.data(), M),
                    UView<const std::int64_t, Mem>(labels.template data<std::int64_t>(), std::size_t(M)));
  std::int64_t count = 0;
  for (std::int64_t m = 0; m < M; ++m) {
    const std::int64_t l = host_labels[std::size_t(m)];
    FLAS_CHECK(l == ignore_label || (0 <= l && l < V), "cross_entropy: label ", l, " at row ", m,
               " is outside [0, ", V, ") and not ", ignore_label);
    count += l != ignore_label;
  }
  if (M == 0) return 0.0;
  const std::int64_t* lab = labels.template data<std::int64_t>();
  const float* lp = logits.template data<float>();
  float* dp = dlogits ? dlogits->template data<float>() : nullptr;
  const double inv_count = count ? 1.0 / double(count) : 0.0;
  constexpr std::int64_t ignored = ignore_label;
  using team_t = typename Kokkos::TeamPolicy<E>::member_type;
  double total = 0;
  Kokkos::parallel_reduce(
      "flas::cross_entropy", Kokkos::TeamPolicy<E>(M, Kokkos::AUTO),
      KOKKOS_LAMBDA(const team_t& team, double& sum) {
        const std::int64_t m = team.league_rank(), label = lab[m];
        const float* row = lp + m * V;
        float* drow = dp ? dp + m * V : nullptr;
        if (label == ignored) {
          if (drow) Kokkos::parallel_for(Kokkos::TeamThreadRange(team, V), [&](std::int64_t c) { drow[c] = 0.0f; });
          return;
        }
        double mx = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, V),
            [&](std::int64_t c, double& v) { v = double(row[c]) > v ? double(row[c]) : v; }, Kokkos::Max<double>(mx));
        double z = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, V), [&](std::int64_t c, double& s) { s += kmath::exp(double(row[c]) - mx); },
            z);
        const double target = double(row[label]);  // read before drow (may be row) is written
        team.team_barrier();
        Kokkos::single(Kokkos::PerTeam(team), [&]() { sum += mx + kmath::log(z) - target; });
        if (drow)
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, V), [&](std::int64_t c) {
            const double prob = kmath::exp(double(row[c]) - mx) / z;
            drow[c] = float((prob - (c == label ? 1.0 : 0.0)) * inv_count);
          });
      },
      total);
  return total * inv_count;
}

}  // namespace flas
