// CpuBackend's run-time settings: the kernel ISA is clamped to what the CPU has (and to the environment's
// cap), thread counts follow set_num_threads, and results do not depend on the thread count.
#include <cstdlib>
#include <cstring>

#include "conformance.hpp"

namespace flas::conformance {
namespace {

TEST_CASE("CpuBackend is a Backend with f32 activations on the host") {
  static_assert(Backend<CpuBackend>);
  CHECK(std::string(CpuBackend::name) == "cpu");
  CHECK(CpuBackend::activation_dtype == DType::F32);
}

TEST_CASE("the kernel ISA never exceeds what the CPU supports, nor the environment's cap") {
  const auto before = CpuBackend::kernel_isa();
  CHECK(before <= CpuBackend::best_supported_isa());
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (cap && std::strstr(cap, "AVX2") && !std::getenv("FLAS_CPU_ISA")) CHECK(before <= CpuBackend::KernelIsa::avx2);
  CHECK(CpuBackend::set_kernel_isa(CpuBackend::KernelIsa::avx512) == CpuBackend::best_supported_isa());
  CHECK(CpuBackend::set_kernel_isa(CpuBackend::KernelIsa::generic) == CpuBackend::KernelIsa::generic);
  CpuBackend::set_kernel_isa(before);
  const std::string summary = std::string("kernels: ") + CpuBackend::isa_name(before) + " (best here: " +
                              CpuBackend::isa_name(CpuBackend::best_supported_isa()) +
                              "), oneDNN bf16 matmul: " + (CpuBackend::bf16_matmul_available() ? "yes" : "no");
  MESSAGE(summary);
}

TEST_CASE("results do not depend on the thread count") {
  const int before = CpuBackend::num_threads();
  const Tensor x = random_tensor({40, 300}), w = random_tensor({520, 300}, DType::BF16);
  const Tensor x1 = random_tensor({1, 300});
  Tensor y_many = poisoned({40, 520}), y_one = poisoned({40, 520});
  Tensor d_many = poisoned({1, 520}), d_one = poisoned({1, 520});
  CpuBackend::set_num_threads(2);
  CHECK(CpuBackend::num_threads() == 2);
  CpuBackend::linear(x, w, nullptr, y_many);
  CpuBackend::linear(x1, w, nullptr, d_many);
  CpuBackend::set_num_threads(1);
  CHECK(CpuBackend::num_threads() == 1);
  CpuBackend::linear(x, w, nullptr, y_one);
  CpuBackend::linear(x1, w, nullptr, d_one);
  CpuBackend::set_num_threads(before);
  FLAS_CHECK_CLOSE(d_many, d_one, 0.0);  // the decode kernel splits rows, never sums across threads
  FLAS_CHECK_CLOSE(y_many, y_one, kReduction);
}

}  // namespace
}  // namespace flas::conformance
