// Embedding gather: out[r] = table[ids[r]] · scale, from an F32 or BF16 table, one row per task.
// Ids are validated before any thread starts, so a bad id throws cleanly (no throw inside OpenMP).
#include <cstring>

#include "flas/backends/cpu.hpp"
#include "op_checks.hpp"
#include "parallel.hpp"

namespace flas {

using namespace cpu_detail;

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, float scale, Tensor& out) {
  expect_f32(out, "embedding", "out");
  FLAS_CHECK(table.rank() == 2, "embedding: table has shape ", table.shape(), ", expected [V, H]");
  FLAS_CHECK(table.dtype() == DType::F32 || table.dtype() == DType::BF16, "embedding: table has dtype ",
             dtype_name(table.dtype()), ", expected F32 or BF16");
  const std::int64_t n = ids.numel(), V = table.dim(0), H = table.dim(1);
  FLAS_CHECK(out.numel() == n * H, "embedding: out has ", out.numel(), " elements, expected ", n * H);
  const auto* id = ids.data<std::int64_t>();
  for (std::int64_t r = 0; r < n; ++r)
    FLAS_CHECK(0 <= id[r] && id[r] < V, "embedding: token id ", id[r], " outside the vocabulary [0, ", V, ")");
  float* o = out.data<float>();
  const bool bf16_table = table.dtype() == DType::BF16;
  const void* base = table.raw();
#pragma omp parallel for if (worth_parallel(n * H))
  for (std::int64_t r = 0; r < n; ++r) {
    float* orow = o + r * H;
    if (bf16_table) {
      const auto* src = static_cast<const std::uint16_t*>(base) + id[r] * H;
#pragma omp simd
      for (std::int64_t c = 0; c < H; ++c) {
        const std::uint32_t bits = std::uint32_t(src[c]) << 16;
        float v;
        std::memcpy(&v, &bits, sizeof v);
        orow[c] = v * scale;
      }
    } else {
      const float* src = static_cast<const float*>(base) + id[r] * H;
#pragma omp simd
      for (std::int64_t c = 0; c < H; ++c) orow[c] = src[c] * scale;
    }
  }
}

}  // namespace flas
