// BackwardOps<CpuBackend>::linear_backward — the matmul-shaped VJPs, nearly all of a training step's
// FLOPs, as oneDNN f32 matmuls that read their operands in place through strided descriptors (a
// transposed f32 copy of a 2304 × 9216 weight costs more memory traffic than the product saves):
//   dW [N, K] += dyᵀ·x   dy [M, N] is the K-major source [N, M], x [M, K] the K-major weight [M, K];
//                        oneDNN's sum post-op adds the product into dW
//   dx [M, K]  = dy·W    W [N, K] is the K-major weight as stored
// oneDNN's f32 matmul takes no bf16 operand, so a bf16 W (the frozen base model) is widened per thread,
// one L2-sized tile (kTileCols columns of dx × kTileRows rows of W) at a time, each tile a
// single-threaded matmul; later row chunks accumulate into dx. No f32 copy of a whole weight is made:
// the LM head's would be 2.4 GB.
#include <algorithm>
#include <vector>

#include "flas/backends/cpu_backward.hpp"
#include "flas/core/linear_backward_checks.hpp"
#include "onednn_matmul.hpp"
#include "op_checks.hpp"
#include "parallel.hpp"

namespace flas {

using namespace cpu_detail;

namespace {

constexpr std::int64_t kTileCols = 128;   // dx columns per bf16 tile
constexpr std::int64_t kTileRows = 1152;  // W rows per bf16 tile: 128 × 1152 f32 = 590 KB, as the forward's

void dx_f32_weights(const float* dy, const float* w, std::int64_t M, std::int64_t N, std::int64_t K, float* dx) {
  MatmulShape s{M, K, N, N, K, K, MatmulType::f32, false};
  s.w_kmajor = true;
  onednn_matmul(s, dy, w, nullptr, dx);
}

void dx_bf16_weights(const float* dy, const bf16* w, std::int64_t M, std::int64_t N, std::int64_t K, float* dx) {
  const std::int64_t tiles = (K + kTileCols - 1) / kTileCols, rows_max = std::min(kTileRows, N);
#pragma omp parallel
  {
    thread_local std::vector<float> tile;
    tile.resize(std::size_t(rows_max * kTileCols));
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t k0 = t * kTileCols, cols = std::min(kTileCols, K - k0);
      for (std::int64_t n0 = 0; n0 < N; n0 += rows_max) {
        const std::int64_t rows = std::min(rows_max, N - n0);
        for (std::int64_t n = 0; n < rows; ++n) {
          const bf16* src = w + (n0 + n) * K + k0;
          float* dst = tile.data() + n * cols;
#pragma omp simd
          for (std::int64_t c = 0; c < cols; ++c) dst[c] = bf16_to_f32(src[c]);
        }
        MatmulShape s{M, cols, rows, N, cols, K, MatmulType::f32, false};
        s.accumulate = n0 > 0;
        s.w_kmajor = true;
        onednn_matmul(s, dy + n0, tile.data(), nullptr, dx + k0);
      }
    }
  }
}

// dW += dyᵀ·x in one matmul on all threads.
void accumulate_dw(const float* dy, const float* x, std::int64_t M, std::int64_t N, std::int64_t K, float* dw) {
  MatmulShape s{N, K, M, N, K, K, MatmulType::f32, false};
  s.accumulate = true;
  s.x_kmajor = true;
  s.w_kmajor = true;
  onednn_matmul(s, dy, x, nullptr, dw);
}

// db += Σ_rows dy, columns split over threads in chunks summed row by row.
void accumulate_db(const float* dy, std::int64_t M, std::int64_t N, float* db) {
  constexpr std::int64_t kChunk = 256;
  const std::int64_t chunks = (N + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (worth_parallel(M * N))
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t n0 = c * kChunk, n1 = std::min(N, n0 + kChunk);
    float acc[kChunk] = {};
    for (std::int64_t m = 0; m < M; ++m) {
      const float* row = dy + m * N;
#pragma omp simd
      for (std::int64_t n = n0; n < n1; ++n) acc[n - n0] += row[n];
    }
    for (std::int64_t n = n0; n < n1; ++n) db[n] += acc[n - n0];
  }
}

}  // namespace

void BackwardOps<CpuBackend>::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                                              Tensor* dw, Tensor* db) {
  FLAS_CHECK(w.rank() == 2 && (w.dtype() == DType::F32 || w.dtype() == DType::BF16), "linear_backward: weight ",
             dtype_name(w.dtype()), " ", w.shape(), " is not an F32 or BF16 [N, K]");
  const std::int64_t N = w.dim(0), K = w.dim(1);
  const std::int64_t M = K > 0 ? x.numel() / K : N > 0 ? dy.numel() / N : 0;
  check_linear_backward(x, w.shape(), dy, dx, dw, db, M);
  if (M == 0) return;  // every gradient gets + 0, dx has no element
  const float* g = dy.data<float>();

  // dW and db first, so that dx may share x's bytes (it is written last); sharing dy's takes a temporary.
  if (dw && N > 0 && K > 0) accumulate_dw(g, x.data<float>(), M, N, K, dw->data<float>());
  if (db && N > 0) accumulate_db(g, M, N, db->data<float>());
  if (!dx || K == 0) return;
  if (N == 0) {
    CpuBackend::fill(*dx, 0.0f);
    return;
  }
  std::vector<float> scratch;  // dx overlapping dy: compute into a temporary
  float* out = dx->data<float>();
  if (overlaps(*dx, dy)) {
    scratch.resize(std::size_t(M * K));
    out = scratch.data();
  }
  if (w.dtype() == DType::F32) dx_f32_weights(g, w.data<float>(), M, N, K, out);
  else dx_bf16_weights(g, w.data<bf16>(), M, N, K, out);
  if (!scratch.empty()) std::copy(scratch.begin(), scratch.end(), dx->data<float>());
}

}  // namespace flas
