#pragma once
// KokkosBackend's elementwise and row-wise ops: RangePolicy kernels over elements, MDRange over
// (token, frequency) for rope, a TeamPolicy per row for rms_norm's reduction. The arithmetic is
// ScalarBackend<float>'s: f32 elements, rms_norm's sum of squares in double, f32 rope angles.
#include <cstring>

#include "flas/backends/kokkos.hpp"
#include "flas/backends/kokkos/views.hpp"

namespace flas {

template <class E>
void KokkosBackend<E>::embedding(const tensor& ids, const tensor& table, float scale, tensor& out) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_i64(ids, "embedding", "ids");
  expect_f32(out, "embedding", "out");
  FLAS_CHECK(table.rank() == 2, "embedding: table must be [V, H], got ", table.shape());
  const std::int64_t n = ids.numel(), V = table.dim(0), H = table.dim(1);
  FLAS_CHECK(out.numel() == n * H, "embedding: out has ", out.numel(), " elements, expected ", n * H);
  const auto id = i64<kokkos_memory_space>(ids);
  // Ids are checked before any row is written (a kernel cannot throw): the smallest and largest id.
  std::int64_t lo = 0, hi = 0;
  if (n > 0) {
    Kokkos::parallel_reduce(
        "flas::embedding_ids", Kokkos::RangePolicy<E>(0, n),
        KOKKOS_LAMBDA(std::int64_t r, std::int64_t& mn, std::int64_t& mx) {
          mn = id(r) < mn ? id(r) : mn;
          mx = id(r) > mx ? id(r) : mx;
        },
        Kokkos::Min<std::int64_t>(lo), Kokkos::Max<std::int64_t>(hi));
  }
  FLAS_CHECK(n == 0 || (0 <= lo && hi < V), "embedding: token id ", lo < 0 ? lo : hi,
             " outside the vocabulary [0, ", V, ")");
  const Weight tw = weight(table, "embedding", "table");
  auto o = f32<kokkos_memory_space>(out);
  Kokkos::parallel_for(
      "flas::embedding", Kokkos::RangePolicy<E>(0, n * H),
      KOKKOS_LAMBDA(std::int64_t i) { o(i) = tw(id(i / H) * H + i % H) * scale; });
}

template <class E>
void KokkosBackend<E>::rms_norm(const tensor& x, const tensor& w, float eps, tensor& y) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(x, "rms_norm", "x");
  expect_f32(y, "rms_norm", "y");
  const std::int64_t D = x.dim(-1), M = rows(x);
  FLAS_CHECK(w.numel() == D, "rms_norm: weight has ", w.numel(), " elements, expected ", D);
  FLAS_CHECK(y.numel() == x.numel(), "rms_norm: y ", y.shape(), " does not match x ", x.shape());
  const Weight ww = weight(w, "rms_norm", "weight");
  const float* xp = x.template data<float>();
  float* yp = y.template data<float>();  // may be x: each row is read in full before it is written
  using team_t = typename Kokkos::TeamPolicy<E>::member_type;
  Kokkos::parallel_for(
      "flas::rms_norm", Kokkos::TeamPolicy<E>(M, Kokkos::AUTO), KOKKOS_LAMBDA(const team_t& team) {
        const std::int64_t m = team.league_rank();
        double ss = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, D),
            [&](std::int64_t d, double& acc) { acc += double(xp[m * D + d]) * double(xp[m * D + d]); }, ss);
        const float inv = float(1.0 / kmath::sqrt(ss / double(D) + double(eps)));
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, D),
                             [&](std::int64_t d) { yp[m * D + d] = xp[m * D + d] * inv * (1.0f + ww(d)); });
      });
}

template <class E>
void KokkosBackend<E>::add(tensor& y, const tensor& x) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(y, "add", "y");
  expect_f32(x, "add", "x");
  FLAS_CHECK(y.numel() == x.numel(), "add: sizes ", y.shape(), " and ", x.shape(), " differ");
  auto yv = f32<kokkos_memory_space>(y);
  const auto xv = f32<kokkos_memory_space>(x);
  Kokkos::parallel_for("flas::add", Kokkos::RangePolicy<E>(0, y.numel()),
                       KOKKOS_LAMBDA(std::int64_t i) { yv(i) += xv(i); });
}

template <class E>
void KokkosBackend<E>::add_gated(tensor& y, const tensor& g, const tensor& x) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(y, "add_gated", "y");
  expect_f32(x, "add_gated", "x");
  FLAS_CHECK(y.numel() == x.numel() && y.rank() >= 1 && y.dim(-1) == g.numel(), "add_gated: y ", y.shape(),
             ", gate ", g.shape(), ", x ", x.shape(), " do not match");
  const Weight gw = weight(g, "add_gated", "gate");
  const std::int64_t D = g.numel();
  auto yv = f32<kokkos_memory_space>(y);
  const auto xv = f32<kokkos_memory_space>(x);
  Kokkos::parallel_for("flas::add_gated", Kokkos::RangePolicy<E>(0, y.numel()),
                       KOKKOS_LAMBDA(std::int64_t i) { yv(i) += gw(i % D) * xv(i); });
}

template <class E>
void KokkosBackend<E>::rope(tensor& x, const tensor& positions, const tensor& inv_freq) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(x, "rope", "x");
  expect_i64(positions, "rope", "positions");
  expect_f32(inv_freq, "rope", "inv_freq");
  FLAS_CHECK(x.rank() == 4, "rope: x must be [B, S, heads, head_dim], got ", x.shape());
  const std::int64_t B = x.dim(0), S = x.dim(1), nh = x.dim(2), hd = x.dim(3), half = hd / 2;
  FLAS_CHECK(positions.numel() == B * S, "rope: positions ", positions.shape(), " do not match x ", x.shape());
  FLAS_CHECK(inv_freq.numel() == half, "rope: inv_freq has ", inv_freq.numel(), " entries, expected ", half);
  const auto pos = i64<kokkos_memory_space>(positions);
  const auto f = f32<kokkos_memory_space>(inv_freq);
  auto xv = f32<kokkos_memory_space>(x);
  if (B * S == 0 || half == 0) return;
  Kokkos::parallel_for(
      "flas::rope", Kokkos::MDRangePolicy<E, Kokkos::Rank<2>>({0, 0}, {B * S, half}),
      KOKKOS_LAMBDA(std::int64_t bs, std::int64_t i) {
        const float angle = float(pos(bs)) * f(i);  // f32 angles, as HF
        const float c = kmath::cos(angle), s = kmath::sin(angle);
        for (std::int64_t h = 0; h < nh; ++h) {
          const std::int64_t base = (bs * nh + h) * hd;
          const float a = xv(base + i), b = xv(base + i + half);
          xv(base + i) = a * c - b * s;
          xv(base + i + half) = b * c + a * s;
        }
      });
}

template <class E>
void KokkosBackend<E>::gelu_tanh_mul(const tensor& gate, const tensor& up, tensor& out) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(gate, "gelu_tanh_mul", "gate");
  expect_f32(up, "gelu_tanh_mul", "up");
  expect_f32(out, "gelu_tanh_mul", "out");
  FLAS_CHECK(gate.numel() == out.numel() && up.numel() == out.numel(), "gelu_tanh_mul: gate ", gate.shape(),
             ", up ", up.shape(), ", out ", out.shape(), " differ");
  const auto g = f32<kokkos_memory_space>(gate);
  const auto u = f32<kokkos_memory_space>(up);
  auto o = f32<kokkos_memory_space>(out);
  Kokkos::parallel_for(
      "flas::gelu_tanh_mul", Kokkos::RangePolicy<E>(0, out.numel()), KOKKOS_LAMBDA(std::int64_t i) {
        const float x = g(i), k = 0.7978845608028654f;  // sqrt(2/pi)
        o(i) = 0.5f * x * (1.0f + kmath::tanh(k * (x + 0.044715f * x * x * x))) * u(i);
      });
}

template <class E>
void KokkosBackend<E>::softcap(tensor& x, float cap) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(x, "softcap", "x");
  auto xv = f32<kokkos_memory_space>(x);
  Kokkos::parallel_for("flas::softcap", Kokkos::RangePolicy<E>(0, x.numel()),
                       KOKKOS_LAMBDA(std::int64_t i) { xv(i) = cap * kmath::tanh(xv(i) / cap); });
}

template <class E>
void KokkosBackend<E>::axpy(tensor& y, float a, const tensor& x) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(y, "axpy", "y");
  expect_f32(x, "axpy", "x");
  FLAS_CHECK(y.numel() == x.numel(), "axpy: sizes ", y.shape(), " and ", x.shape(), " differ");
  auto yv = f32<kokkos_memory_space>(y);
  const auto xv = f32<kokkos_memory_space>(x);
  // Two roundings (no FMA: the library is built with -ffp-contract=off), as PyTorch's h + dt·v.
  Kokkos::parallel_for("flas::axpy", Kokkos::RangePolicy<E>(0, y.numel()),
                       KOKKOS_LAMBDA(std::int64_t i) { yv(i) += a * xv(i); });
}

template <class E>
void KokkosBackend<E>::scale(tensor& x, float a) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(x, "scale", "x");
  auto xv = f32<kokkos_memory_space>(x);
  Kokkos::parallel_for("flas::scale", Kokkos::RangePolicy<E>(0, x.numel()),
                       KOKKOS_LAMBDA(std::int64_t i) { xv(i) *= a; });
}

template <class E>
void KokkosBackend<E>::copy(tensor& dst, const tensor& src) {
  kokkos_ensure_initialized();
  FLAS_CHECK(dst.bytes() == src.bytes() && dst.dtype() == src.dtype(), "copy: ", dst.shape(), " ",
             dtype_name(dst.dtype()), " <- ", src.shape(), " ", dtype_name(src.dtype()));
  if (dst.raw() == src.raw() || src.bytes() == 0) return;
  if constexpr (kokkos_host_accessible<E>) {
    std::memmove(dst.raw(), src.raw(), src.bytes());  // tensors may overlap (views of one buffer)
  } else {
    using bytes_t = kokkos_detail::UView<unsigned char, kokkos_memory_space>;
    Kokkos::deep_copy(bytes_t(static_cast<unsigned char*>(dst.raw()), src.bytes()),
                      kokkos_detail::UView<const unsigned char, kokkos_memory_space>(
                          static_cast<const unsigned char*>(src.raw()), src.bytes()));
  }
}

template <class E>
void KokkosBackend<E>::fill(tensor& x, float value) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(x, "fill", "x");
  Kokkos::deep_copy(f32<kokkos_memory_space>(x), value);
}

}  // namespace flas
