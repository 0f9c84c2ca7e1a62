// CpuBackend::linear — y[M, N] = x[M, K] · w[N, K]ᵀ (+ b), the op that dominates every forward.
//
// Three paths, chosen per call:
//  - decode (M <= small_m_max, or <= 16 for bf16 weights in passes of 8): the streaming kernel of
//    the best ISA; weight rows split over threads. Bandwidth-bound: each weight byte is read once
//    per pass.
//  - prefill, exact: f32 weights go straight into oneDNN's f32 matmul. bf16 weights, with AVX-512:
//    the prefill kernel (prefill_gemm.hpp) that reads the weights in place and widens them in
//    registers; without: widened tile by tile (per thread, into a thread-local L2-sized buffer), each
//    tile its own single-threaded oneDNN matmul. No f32 copy of the model is ever kept.
//  - prefill, Precision::bf16_activations with bf16 weights: x rounded to bf16, then the avx512_bf16
//    prefill kernel where the CPU has it and no AMX (oneDNN's AMX matmul is the faster one there),
//    else oneDNN's bf16 matmul.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <span>
#include <vector>

#include "flas/backends/cpu.hpp"
#include "onednn_matmul.hpp"
#include "op_checks.hpp"
#include "prefill_gemm.hpp"
#include "small_gemm.hpp"

namespace flas {
namespace {

using namespace cpu_detail;

// bf16 weights are widened in tiles of kTileRows × kTileK (590 KB of f32, L2-sized); a weight row
// longer than kTileK is split and the later parts accumulate into y. Measured at M = 128 against
// 64/256/512 rows and 576/2304/full K (docs/cpu_backend.md): ~10% behind f32 weights.
constexpr std::int64_t kTileRows = 128;
constexpr std::int64_t kTileK = 1152;
// bf16 weights: streaming the weight twice (two passes of 8 rows) beats widening it for oneDNN up to
// here — at small M oneDNN's per-call packing of each widened tile costs as much as the product.
constexpr std::int64_t kStreamingMaxRowsBf16 = 16;
// Below this many weight elements a decode call is not worth a thread team: an empty OpenMP region
// costs ~3 us on the 2-vCPU VMs measured (docs/performance.md), about what one core takes for a
// 256 x 256 bf16 GEMV from cache; 1 << 15 had every projection of a small model fork and join.
constexpr std::int64_t kParallelMinWeights = 1 << 17;

const SmallGemmKernel& small_kernel() {
#if defined(FLAS_CPU_X86)
  switch (CpuBackend::kernel_isa()) {
    case CpuBackend::KernelIsa::avx512: return small_gemm_avx512;
    case CpuBackend::KernelIsa::avx2: return small_gemm_avx2;
    case CpuBackend::KernelIsa::generic: break;
  }
#endif
  return small_gemm_generic;
}

struct LinearArgs {
  const float* x;
  std::int64_t M, N, K;
  const Tensor& w;
  const float* bias;  // widened to f32, or nullptr
  float* y;
};

// One weight's share of a launch: its output columns go to their own y.
struct ColumnPart {
  const void* w;        // [N, K], F32 or BF16 (the prefill kernels: BF16)
  const float* bias;    // [N] or nullptr
  float* y;             // [M, N]
  std::int64_t N;
};

// x packed once per pass of max_m rows; the weight rows of all parts, end to end, split into
// contiguous ranges (multiples of 8), one per thread: every thread streams its own region.
void decode_parts(const float* x0, std::int64_t M, std::int64_t K, std::span<const ColumnPart> parts, bool bf16w) {
  const SmallGemmKernel& k = small_kernel();
  // Each part padded to a multiple of 8 rows end to end, so every split falls on a multiple of 8 of
  // its part: the kernel's row blocks, hence its results, are those of a call on that part alone.
  const auto padded = [](std::int64_t n) { return (n + 7) / 8 * 8; };
  std::int64_t total = 0;
  for (const ColumnPart& p : parts) total += padded(p.N);
  const std::int64_t threads = total * K >= kParallelMinWeights ? omp_get_max_threads() : 1;
  thread_local std::vector<float> packed;  // reused: decode calls this hundreds of times per token
  for (std::int64_t m0 = 0; m0 < M; m0 += k.max_m) {
    const std::int64_t mc = std::min(k.max_m, M - m0);
    const float* x = x0 + m0 * K;
    if (const std::int64_t size = k.packed_size(mc, K, bf16w); size > 0) {
      packed.resize(std::size_t(size));
      k.pack(x, mc, K, bf16w, packed.data());
      x = packed.data();
    }
    const std::int64_t per = (total + threads - 1) / threads;
    const std::int64_t chunk = (per + 7) / 8 * 8;
#pragma omp parallel for num_threads(int(threads)) schedule(static, 1) if (threads > 1)
    for (std::int64_t t = 0; t < threads; ++t) {
      const std::int64_t r0 = std::min(total, t * chunk), r1 = std::min(total, r0 + chunk);
      std::int64_t first = 0;  // the part's first row in the end-to-end order
      for (const ColumnPart& p : parts) {
        const std::int64_t n0 = std::max(r0, first) - first, n1 = std::min(r1, first + p.N) - first;
        if (n0 < n1) k.run(SmallGemm{x, mc, K, p.w, bf16w, p.bias, p.y + m0 * p.N, p.N}, n0, n1);
        first += padded(p.N);
      }
    }
  }
}

void decode_linear(const LinearArgs& a) {
  const ColumnPart part{a.w.raw(), a.bias, a.y, a.N};
  decode_parts(a.x, a.M, a.K, std::span(&part, 1), a.w.dtype() == DType::BF16);
}

void prefill_f32_weights(const LinearArgs& a) {
  const MatmulShape s{a.M, a.N, a.K, a.K, a.K, a.N, MatmulType::f32, a.bias != nullptr};
  onednn_matmul(s, a.x, a.w.raw(), a.bias, a.y);
}

void prefill_bf16_weights_exact(const LinearArgs& a) {
  const SmallGemmKernel& k = small_kernel();
  const auto* w = static_cast<const std::uint16_t*>(a.w.raw());
  const std::int64_t tiles = (a.N + kTileRows - 1) / kTileRows, kc_max = std::min(kTileK, a.K);
#pragma omp parallel
  {
    thread_local std::vector<float> tile;
    tile.resize(std::size_t(kTileRows * kc_max));
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t n0 = t * kTileRows, rows = std::min(kTileRows, a.N - n0);
      for (std::int64_t k0 = 0; k0 < a.K; k0 += kc_max) {
        const std::int64_t kc = std::min(kc_max, a.K - k0);
        for (std::int64_t r = 0; r < rows; ++r) k.widen_bf16(w + (n0 + r) * a.K + k0, tile.data() + r * kc, kc);
        MatmulShape s{a.M, rows, kc, a.K, kc, a.N, MatmulType::f32, a.bias != nullptr && k0 == 0};
        s.accumulate = k0 > 0;
        onednn_matmul(s, a.x + k0, tile.data(), s.bias ? a.bias + n0 : nullptr, a.y + n0);
      }
    }
  }
}

// The prefill kernel for this call, or nullptr where the CPU lacks its instructions.
const PrefillGemmKernel* prefill_kernel(CpuBackend::Precision p) {
#if defined(FLAS_CPU_X86)
  if (CpuBackend::kernel_isa() != CpuBackend::KernelIsa::avx512) return nullptr;
  if (p == CpuBackend::Precision::exact) return &prefill_gemm_avx512_exact;
  static const bool bf16_ok = cpu_has_avx512_bf16() && !cpu_has_amx_bf16();
  return bf16_ok ? &prefill_gemm_avx512_bf16 : nullptr;
#else
  (void)p;
  return nullptr;
#endif
}

// Columns per unit of prefill work: units are handed out one at a time (below), so a thread that a
// neighbour slows down does less of the matmul instead of keeping the other waiting at the barrier
// (libgomp's spin there was ~10% of a 2B prefill's matmul time with fixed halves). At least 8 units
// per thread; at most 96 columns, so one unit's walk over a 64-row group's k-slice (which the kernel
// keeps in L2) is long enough to pay for bringing that slice back from L3.
std::int64_t prefill_unit_cols(std::int64_t N, std::int64_t threads, std::int64_t tile) {
  const std::int64_t want = (N + 8 * threads - 1) / (8 * threads);
  return std::clamp((want + tile - 1) / tile * tile, 8 * tile, 16 * tile);
}

// x [M, K] packed once by all threads (a group of rows each), then column units of every part taken
// in turn by whichever thread is free; each unit is one call of the kernel (all of its k-slices and
// row groups). Several parts (projections of the same x) share the packing and the one barrier.
void prefill_with_kernel(const float* x, std::int64_t M, std::int64_t K, std::span<const ColumnPart> parts,
                         const PrefillGemmKernel& k) {
  // Reused (prefill calls this for every projection) and never zero-filled: the packing writes all of it.
  thread_local std::unique_ptr<std::uint32_t[]> buffer;
  thread_local std::size_t capacity = 0;
  if (const auto words = std::size_t(k.packed_bytes(M, K) / 4 + 16); words > capacity) {
    buffer.reset(new std::uint32_t[words]);
    capacity = words;
  }
  std::uint32_t* packed = buffer.get() + (16 - reinterpret_cast<std::uintptr_t>(buffer.get()) / 4 % 16) % 16;
  std::int64_t total_cols = 0;
  for (const ColumnPart& p : parts) total_cols += p.N;
  const std::int64_t cols = prefill_unit_cols(total_cols, omp_get_max_threads(), k.tile_cols);
  struct Unit {
    std::int32_t part;
    std::int64_t n0, n1;
  };
  thread_local std::vector<Unit> units;
  units.clear();
  // The last columns (one unit per thread's worth) go in quarter units: whoever finishes last then
  // waits for at most a quarter unit at the barrier.
  const std::int64_t threads = omp_get_max_threads();
  const std::int64_t tail_cols = std::max(4 * k.tile_cols, cols / 4 / k.tile_cols * k.tile_cols);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::int64_t N = parts[i].N;
    const std::int64_t tail_from = i + 1 < parts.size() ? N : std::max<std::int64_t>(0, N - threads * cols) / k.tile_cols * k.tile_cols;
    for (std::int64_t n0 = 0; n0 < N;) {
      const std::int64_t n1 = std::min(N, n0 + (n0 < tail_from ? std::min(cols, std::max(tail_from - n0, tail_cols)) : tail_cols));
      units.push_back({std::int32_t(i), n0, n1});
      n0 = n1;
    }
  }
  const std::int64_t groups = (M + k.pack_rows - 1) / k.pack_rows, unit_count = std::int64_t(units.size());
  const Unit* unit = units.data();
  std::atomic<std::int64_t> next_unit{0};
#pragma omp parallel
  {
    const std::int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    for (std::int64_t i = t; i < groups; i += threads)
      k.pack(x, M, K, i * k.pack_rows, std::min(M, (i + 1) * k.pack_rows), packed);
#pragma omp barrier
    for (std::int64_t u; (u = next_unit.fetch_add(1, std::memory_order_relaxed)) < unit_count;) {
      const ColumnPart& p = parts[std::size_t(unit[u].part)];
      k.run(PrefillGemm{packed, M, K, static_cast<const std::uint16_t*>(p.w), p.bias, p.y, p.N}, unit[u].n0, unit[u].n1);
    }
  }
}

void prefill_with_kernel(const LinearArgs& a, const PrefillGemmKernel& k) {
  const ColumnPart part{a.w.raw(), a.bias, a.y, a.N};
  prefill_with_kernel(a.x, a.M, a.K, std::span(&part, 1), k);
}

void prefill_bf16_fast(const LinearArgs& a) {
  std::vector<bf16> xb(std::size_t(a.M * a.K));
  const std::int64_t n = a.M * a.K;
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) xb[std::size_t(i)] = f32_to_bf16(a.x[i]);
  const MatmulShape s{a.M, a.N, a.K, a.K, a.K, a.N, MatmulType::bf16, a.bias != nullptr};
  onednn_matmul(s, xb.data(), a.w.raw(), a.bias, a.y);
}

// The prefill kernel a prompt-sized call with bf16 weights runs on in mode p, or nullptr where it
// takes oneDNN (bf16 mode on AMX) or the tile-widening fallback (no AVX-512).
const PrefillGemmKernel* bf16_weights_kernel(CpuBackend::Precision p) {
  if (p == CpuBackend::Precision::bf16_activations) {
    if (const PrefillGemmKernel* k = prefill_kernel(p)) return k;
    if (CpuBackend::bf16_matmul_available()) return nullptr;
  }
  return prefill_kernel(CpuBackend::Precision::exact);
}

}  // namespace

bool CpuBackend::bf16_matmul_available() {
  return prefill_kernel(Precision::bf16_activations) != nullptr || onednn_has_fast(MatmulType::bf16);
}

void CpuBackend::linear_shared_input(const Tensor& x, std::span<const SharedInputProjection<Tensor>> ps) {
  const std::int64_t M = rows_of(x), K = x.rank() == 0 ? 0 : x.dim(-1);
  const DType wdt = ps.empty() ? DType::F32 : ps[0].w->dtype();
  // One launch where every projection would take the same path on its own with the same packed x;
  // anything else (mixed weight dtypes, an output aliasing x or another output, a shape linear must
  // reject, a path without a shared packing) goes one by one.
  bool same = x.dtype() == DType::F32 && M > 0 && K > 0 && ps.size() > 1 && (wdt == DType::F32 || wdt == DType::BF16);
  for (const auto& p : ps)
    same = same && p.w->dtype() == wdt && p.w->rank() == 2 && p.w->dim(1) == K && p.y->dtype() == DType::F32 &&
           p.y->numel() == M * p.w->dim(0) && !overlaps(x, *p.y);
  // Outputs sharing bytes would race in one launch; one by one, the last projection wins as in a loop.
  for (std::size_t i = 0; same && i < ps.size(); ++i)
    for (std::size_t j = i + 1; same && j < ps.size(); ++j) same = !overlaps(*ps[i].y, *ps[j].y);
  const bool decode = M <= small_m_max || (wdt == DType::BF16 && M <= kStreamingMaxRowsBf16);
  const PrefillGemmKernel* k = same && !decode && wdt == DType::BF16 ? bf16_weights_kernel(precision()) : nullptr;
  if (!same || (!decode && !k)) {
    for (const auto& p : ps) linear(x, *p.w, nullptr, *p.y);
    return;
  }
  std::vector<ColumnPart> parts;
  for (const auto& p : ps) parts.push_back({p.w->raw(), nullptr, p.y->data<float>(), p.w->dim(0)});
  if (decode)
    decode_parts(x.data<float>(), M, K, parts, wdt == DType::BF16);
  else
    prefill_with_kernel(x.data<float>(), M, K, parts, *k);
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) {
  linear(x, w, bias, y, precision());
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, Precision p) {
  expect_f32(x, "linear", "x");
  expect_f32(y, "linear", "y");
  FLAS_CHECK(w.rank() == 2, "linear: weight has shape ", w.shape(), ", expected [N, K]");
  FLAS_CHECK(w.dtype() == DType::F32 || w.dtype() == DType::BF16, "linear: weight has dtype ",
             dtype_name(w.dtype()), ", expected F32 or BF16");
  const std::int64_t N = w.dim(0), K = w.dim(1), M = rows_of(x);
  FLAS_CHECK(x.dim(-1) == K, "linear: x has inner size ", x.dim(-1), ", weight ", w.shape(), " expects ", K);
  FLAS_CHECK(y.numel() == M * N, "linear: y has ", y.numel(), " elements, expected ", M * N);
  std::vector<float> bias_f32;
  if (bias) {
    FLAS_CHECK(bias->numel() == N, "linear: bias has ", bias->numel(), " elements, expected ", N);
    if (bias->dtype() != DType::F32) bias_f32 = widen_to_f32(*bias, "linear", "bias");
  }
  const float* b = !bias ? nullptr : bias_f32.empty() ? bias->data<float>() : bias_f32.data();
  if (M == 0 || N == 0) return;

  // y may share bytes with x (an in-place projection): compute into a temporary then.
  std::vector<float> scratch;
  float* out = y.data<float>();
  if (overlaps(x, y)) {
    scratch.resize(std::size_t(M * N));
    out = scratch.data();
  }
  const LinearArgs a{x.data<float>(), M, N, K, w, b, out};
  if (K == 0) {
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) out[m * N + n] = b ? b[n] : 0.0f;
  } else if (M <= small_m_max || (w.dtype() == DType::BF16 && M <= kStreamingMaxRowsBf16)) {
    decode_linear(a);
  } else if (w.dtype() == DType::F32) {
    prefill_f32_weights(a);
  } else if (const PrefillGemmKernel* k = bf16_weights_kernel(p)) {
    prefill_with_kernel(a, *k);
  } else if (p == Precision::bf16_activations && bf16_matmul_available()) {
    prefill_bf16_fast(a);
  } else {
    prefill_bf16_weights_exact(a);
  }
  if (!scratch.empty()) std::copy(scratch.begin(), scratch.end(), y.data<float>());
}

}  // namespace flas
