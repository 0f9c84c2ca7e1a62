#pragma once
// FLAS's diversity loss on the velocity v [B, S, H] of the last Euler step (SPEC.md "Training loss"):
//   v̄_i = Σ_p m_ip v_ip / max(Σ_p m_ip, 1)       (m: the attention mask, padding excluded)
//   u_i = v̄_i / max(‖v̄_i‖, 1e-12)                (F.normalize)
//   L_div = mean of u_i·u_j over ordered pairs i ≠ j whose rows carry different concepts; 0 if none.
// Small ([B, H] after pooling): computed on the host in double. Its gradient:
//   ∂L/∂u_i = 2 Σ_{j: c_j ≠ c_i} u_j / pairs     (each unordered pair appears twice)
//   ∂L/∂v̄_i = (∂u_i − u_i (u_i·∂u_i)) / ‖v̄_i‖    (‖v̄_i‖ > eps; below it the norm is the constant eps)
//   ∂L/∂v_ip = m_ip ∂L/∂v̄_i / max(Σ_p m_ip, 1).
// Data-parallel training: with a communicator of K ranks, each holding B rows of one global batch,
// the pairs run over all K·B rows (the pooled u_i and concept ids are gathered, B·H doubles per rank),
// so every rank gets the loss of the global batch and the gradient of its own rows: summed over
// ranks, exactly the single-process gradient of the whole batch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/distributed/communicator.hpp"
#include "flas/train/batch_layout.hpp"

namespace flas::train {

inline constexpr double normalize_eps = 1e-12;  // torch.nn.functional.normalize's default

// dv (may be nullptr): written with grad_scale·∂L_div/∂v, in v's dtype.
template <Backend B>
double diversity_loss(const tensor_t<B>& v, const BatchLayout& at, std::span<const std::int64_t> concept_of_row,
                      tensor_t<B>* dv, double grad_scale = 1.0,
                      const distributed::Communicator& comm = distributed::single_process()) {
  static_assert(std::is_same_v<typename B::space, HostSpace>, "diversity_loss reads the velocity on the host");
  const std::int64_t Bn = v.dim(0), S = v.dim(1), H = v.dim(2);
  FLAS_CHECK(std::int64_t(concept_of_row.size()) == Bn && at.batch == Bn && at.seq == S, "diversity loss: ",
             concept_of_row.size(), " concept ids and a mask of [", at.batch, ", ", at.seq, "] for a velocity ",
             v.shape());
  auto idx = [&](std::int64_t b, std::int64_t s, std::int64_t d) { return (b * S + s) * H + d; };
  const auto rows = static_cast<std::size_t>(Bn), width = static_cast<std::size_t>(H);
  std::vector<double> count(rows), norm(rows), u(rows * width, 0.0);
  for (std::int64_t b = 0; b < Bn; ++b) {
    double n = 0;
    for (std::int64_t s = 0; s < S; ++s) n += at.real(b, s) ? 1 : 0;
    count[std::size_t(b)] = std::max(n, 1.0);
    double* ub = u.data() + b * H;
    for (std::int64_t s = 0; s < S; ++s)
      if (at.real(b, s))
        for (std::int64_t d = 0; d < H; ++d) ub[d] += element_as_double(v, idx(b, s, d));
    double sq = 0;
    for (std::int64_t d = 0; d < H; ++d) {
      ub[d] /= count[std::size_t(b)];
      sq += ub[d] * ub[d];
    }
    norm[std::size_t(b)] = std::sqrt(sq);
    const double denom = std::max(norm[std::size_t(b)], normalize_eps);
    for (std::int64_t d = 0; d < H; ++d) ub[d] /= denom;
  }
  // The rows of the whole batch, in rank order (one rank: just this batch's).
  const std::int64_t G = Bn * comm.size();
  FLAS_CHECK(comm.sum(Bn) == G, "diversity loss: the ranks hold different numbers of rows (", Bn,
             " here); data-parallel shards must be equal");
  std::vector<double> u_all(std::size_t(G) * width);
  std::vector<std::int64_t> concept_all(static_cast<std::size_t>(G));
  comm.allgather_host(std::span<const double>(u), std::span<double>(u_all));
  comm.allgather_host(concept_of_row, std::span<std::int64_t>(concept_all));
  auto dot = [&](std::int64_t i, std::int64_t j) {
    double s = 0;
    for (std::int64_t d = 0; d < H; ++d) s += u_all[std::size_t(i * H + d)] * u_all[std::size_t(j * H + d)];
    return s;
  };
  double total = 0;
  std::int64_t pairs = 0;
  for (std::int64_t i = 0; i < G; ++i)
    for (std::int64_t j = 0; j < G; ++j)
      if (concept_all[std::size_t(i)] != concept_all[std::size_t(j)]) {
        total += dot(i, j);
        ++pairs;
      }
  const double loss = pairs ? total / double(pairs) : 0.0;
  if (!dv) return loss;

  FLAS_CHECK(dv->shape() == v.shape() && dv->dtype() == v.dtype(), "diversity loss: dv ", dv->shape(), " for v ",
             v.shape());
  std::vector<double> du(width), dbar(width);
  auto write = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    for (std::int64_t i = 0; i < Bn; ++i) {
      std::fill(du.begin(), du.end(), 0.0);
      if (pairs)
        for (std::int64_t j = 0; j < G; ++j)
          if (concept_all[std::size_t(j)] != concept_of_row[std::size_t(i)])
            for (std::int64_t d = 0; d < H; ++d)
              du[std::size_t(d)] += 2.0 * grad_scale / double(pairs) * u_all[std::size_t(j * H + d)];
      const double nrm = norm[std::size_t(i)];
      double along = 0;
      for (std::int64_t d = 0; d < H; ++d) along += u[std::size_t(i * H + d)] * du[std::size_t(d)];
      for (std::int64_t d = 0; d < H; ++d)
        dbar[std::size_t(d)] = nrm > normalize_eps ? (du[std::size_t(d)] - u[std::size_t(i * H + d)] * along) / nrm
                                                   : du[std::size_t(d)] / normalize_eps;
      for (std::int64_t s = 0; s < S; ++s) {
        const double m = at.real(i, s) ? 1.0 / count[std::size_t(i)] : 0.0;
        for (std::int64_t d = 0; d < H; ++d) out[idx(i, s, d)] = T(m * dbar[std::size_t(d)]);
      }
    }
  };
  if (dv->dtype() == DType::F64) write(dv->template data<double>());
  else write(dv->template data<float>());
  return loss;
}

}  // namespace flas::train
