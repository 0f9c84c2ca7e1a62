#pragma once
// Which flas memory space a Kokkos execution space's tensors live in. Where the execution space can
// read host memory (Serial, OpenMP, Threads), tensors are ordinary host tensors:
// models, fields, ODE steppers and checkpoints take them unchanged and every op wraps them as unmanaged
// Views. Elsewhere (CudaSpace, HIPSpace) tensors are BasicTensor<KokkosSpace<M>>, allocated with
// Kokkos::kokkos_malloc<M>, so host code cannot dereference them by accident.
#include <Kokkos_Core.hpp>

#include <memory>
#include <new>
#include <type_traits>

#include "flas/core/memory_space.hpp"

namespace flas {

void kokkos_ensure_initialized();  // runtime.cpp

template <class KokkosMemSpace>
struct KokkosSpace {
  static constexpr const char* name = "kokkos-device";
  static std::shared_ptr<void> allocate(std::size_t bytes) {
    kokkos_ensure_initialized();
    void* p = Kokkos::kokkos_malloc<KokkosMemSpace>("flas::tensor", bytes == 0 ? 1 : bytes);
    if (!p) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [](void* q) { Kokkos::kokkos_free<KokkosMemSpace>(q); });
  }
};

// Host tensors (malloc'd by flas::HostSpace) work when the execution space's kernels can read host
// memory: Serial, OpenMP, Threads — not CUDA, even with UVM (malloc'd memory is not UVM).
template <class ExecSpace>
inline constexpr bool kokkos_host_accessible =
    Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible;

template <class ExecSpace>
using kokkos_space_t = std::conditional_t<kokkos_host_accessible<ExecSpace>, HostSpace,
                                          KokkosSpace<typename ExecSpace::memory_space>>;

}  // namespace flas
