// Kokkos' lifetime as a library user expects it: nothing to call. The first op initialises Kokkos
// unless the program already did, and a function-local static finalises it at exit only in that case.
#include <Kokkos_Core.hpp>

namespace flas {

namespace {
struct KokkosLifetime {
  bool owned = false;
  KokkosLifetime() {
    if (!Kokkos::is_initialized()) {
      int argc = 0;
      char* argv[] = {nullptr};
      Kokkos::initialize(argc, argv);
      owned = true;
    }
  }
  ~KokkosLifetime() {
    if (owned && Kokkos::is_initialized()) Kokkos::finalize();
  }
};
}  // namespace

void kokkos_ensure_initialized() { static KokkosLifetime lifetime; }

}  // namespace flas
