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

inline void add_backend_option(CLI::App* cmd, std::string& backend) {
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
