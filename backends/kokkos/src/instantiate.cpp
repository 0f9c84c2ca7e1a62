// The ops of KokkosBackend, compiled once for Kokkos::DefaultExecutionSpace.
#include "flas/backends/kokkos/ops_attention.hpp"
#include "flas/backends/kokkos/ops_linear.hpp"
#include "flas/backends/kokkos/ops_pointwise.hpp"

namespace flas {
template struct KokkosBackend<Kokkos::DefaultExecutionSpace>;
}  // namespace flas
