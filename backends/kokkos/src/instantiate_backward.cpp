// The backward ops of KokkosBackend, compiled once for Kokkos::DefaultExecutionSpace.
#include "flas/backends/kokkos/attention_backward.hpp"
#include "flas/backends/kokkos/backward_ops.hpp"
#include "flas/backends/kokkos/cross_entropy.hpp"

namespace flas {
template struct BackwardOps<KokkosBackend<Kokkos::DefaultExecutionSpace>>;
}  // namespace flas
