// Global settings of the CPU backend: which instruction set the hand-written kernels use, how many
// OpenMP threads run, and the precision mode of linear(). Read on every call, so kept in atomics.
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "flas/backends/cpu.hpp"

namespace flas {
namespace {

using Isa = CpuBackend::KernelIsa;

Isa detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // The AVX-512 kernels use F (arithmetic), BW (16-bit masked loads of bf16 tails) and VL.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::generic;
}

bool contains_ci(std::string_view hay, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    bool match = true;
    for (std::size_t j = 0; j < needle.size() && match; ++j) {
      const char a = hay[i + j], b = needle[j];
      match = (a | 0x20) == (b | 0x20);
    }
    if (match) return true;
  }
  return false;
}

// FLAS_CPU_ISA wins; else ONEDNN_MAX_CPU_ISA caps our kernels to the same level as oneDNN's.
Isa isa_from_environment(Isa best) {
  Isa cap = best;
  if (const char* e = std::getenv("FLAS_CPU_ISA"); e && *e) {
    if (contains_ci(e, "512")) cap = Isa::avx512;
    else if (contains_ci(e, "avx2")) cap = Isa::avx2;
    else cap = Isa::generic;
  } else if (const char* d = std::getenv("ONEDNN_MAX_CPU_ISA"); d && *d && !contains_ci(d, "all")) {
    if (contains_ci(d, "512") || contains_ci(d, "amx")) cap = Isa::avx512;
    else if (contains_ci(d, "avx2")) cap = Isa::avx2;
    else cap = Isa::generic;
  }
  return cap < best ? cap : best;
}

const Isa best_isa = detect_isa();
std::atomic<Isa> current_isa{isa_from_environment(best_isa)};
std::atomic<CpuBackend::Precision> current_precision{CpuBackend::Precision::exact};

}  // namespace

CpuBackend::KernelIsa CpuBackend::best_supported_isa() { return best_isa; }
CpuBackend::KernelIsa CpuBackend::kernel_isa() { return current_isa.load(std::memory_order_relaxed); }
CpuBackend::KernelIsa CpuBackend::set_kernel_isa(KernelIsa isa) {
  const Isa use = isa < best_isa ? isa : best_isa;
  current_isa.store(use);
  return use;
}
const char* CpuBackend::isa_name(KernelIsa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::generic: return "generic";
  }
  return "?";
}

void CpuBackend::set_precision(Precision p) { current_precision.store(p); }
CpuBackend::Precision CpuBackend::precision() { return current_precision.load(std::memory_order_relaxed); }

void CpuBackend::set_num_threads(int n) {
  // omp_set_num_threads changes the calling thread's default; oneDNN (OpenMP runtime) follows it too.
  omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
  if (n <= 0) {
    if (const char* e = std::getenv("OMP_NUM_THREADS"); e && std::atoi(e) > 0) omp_set_num_threads(std::atoi(e));
  }
}
int CpuBackend::num_threads() { return omp_get_max_threads(); }

}  // namespace flas
