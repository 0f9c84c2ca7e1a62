#pragma once
// --backend cpu|scalar|kokkos: which op set a command runs on, chosen at run time among those compiled
// in. with_backend(name, f) calls f(std::type_identity<B>{}) with the chosen backend type, so a command
// writes its body once as a template over B and each backend gets its own instantiation.
//   add_backend_option(cmd, args->backend);
//   with_backend(args->backend, [&]<class B>(std::type_identity<B>) { run<B>(args); });
#include <CLI/CLI.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "commands.hpp"
#include "flas/core/error.hpp"
// Which op sets are compiled in: FLAS_CLI_BACKENDS in CMake (the demo builds cpu alone).
#if FLAS_CLI_WITH_KOKKOS
#include "flas/backends/kokkos.hpp"
#include "flas/backends/kokkos_backward.hpp"
#endif

namespace flas::cli {

inline std::vector<std::string> backend_names() {
  std::vector<std::string> names{"cpu"};
#if FLAS_CLI_WITH_SCALAR
  names.push_back("scalar");
#endif
#if FLAS_CLI_WITH_KOKKOS
  names.push_back("kokkos");
#endif
  return names;
}

inline std::string backend_list() {
  std::string list;
  for (const auto& n : backend_names()) list += (list.empty() ? "" : ", ") + n;
  return list;
}

// --precision exact|bf16: how the cpu backend multiplies activations by bf16 weights in prefill-sized
// matmuls (CpuBackend::Precision). exact stays the default: docs/performance.md ("Which precision a bf16
// checkpoint runs in") has the greedy agreement and evaluation scores behind that choice.
inline void add_precision_option(CLI::App* cmd) {
  cmd->add_option_function<std::string>(
         "--precision",
         [](const std::string& p) {
#if FLAS_CLI_HAS_CPU_BACKEND
           CpuBackend::set_precision(p == "bf16" ? CpuBackend::Precision::bf16_activations
                                                 : CpuBackend::Precision::exact);
#else
           FLAS_CHECK(p == "exact", "--precision ", p, ": this flas has no cpu backend (only exact)");
#endif
         },
         "cpu backend, bf16 weights: exact (default; f32 products, matches the reference) or bf16 "
         "(prompt-sized matmuls round activations to bf16: ~1.6x faster prefill, greedy text may "
         "drift from the reference; docs/performance.md)")
      ->check(CLI::IsMember({"exact", "bf16"}))
      ->default_str("exact");
}

// ", precision exact|bf16" for the cpu backend (what --precision chose, and whether this CPU runs it),
// for a command's summary line; nothing for backends without the setting.
template <class B>
std::string precision_note() {
#if FLAS_CLI_HAS_CPU_BACKEND
  if constexpr (std::is_same_v<B, CpuBackend>) {
    if (CpuBackend::precision() == CpuBackend::Precision::exact) return ", precision exact";
    return CpuBackend::bf16_matmul_available() ? ", precision bf16"
                                               : ", precision bf16 (no bf16 matmul on this CPU: runs exact)";
  }
#endif
  return "";
}

inline void add_backend_option(CLI::App* cmd, std::string& backend) {
  add_precision_option(cmd);
  backend = "cpu";
  cmd->add_option("--backend", backend,
                  "Op set: cpu (oneDNN + SIMD)"
#if FLAS_CLI_WITH_SCALAR
                  ", scalar (reference loops)"
#endif
#if FLAS_CLI_WITH_KOKKOS
                  ", kokkos (Kokkos Kernels on Kokkos' default execution space)"
#endif
                  )
      ->check(CLI::IsMember(backend_names()))
      ->capture_default_str();
}

template <class F>
decltype(auto) with_backend(const std::string& name, F&& f) {
#if FLAS_CLI_WITH_SCALAR
  if (name == "scalar") return f(std::type_identity<ScalarBackend<float>>{});
#endif
#if FLAS_CLI_WITH_KOKKOS
  if (name == "kokkos") return f(std::type_identity<KokkosBackend<>>{});
#endif
  FLAS_CHECK(name == "cpu", "--backend ", name, ": not built into this flas (FLAS_CLI_BACKENDS; it has: ",
             backend_list(), ")");
  return f(std::type_identity<HostBackend>{});
}

}  // namespace flas::cli
