#pragma once
// The communicator of this launch: the MPI world when `mpirun -np K flas ...` started us (and flas was
// built with MPI), one process otherwise. Commands that can run data parallel (train, eval generate)
// take their work through this, so neither knows MPI.
#include <cstdio>
#include <exception>

#include "flas/distributed/communicator.hpp"
#ifdef FLAS_HAVE_MPI
#include "flas/distributed/mpi_communicator.hpp"
#endif

namespace flas::cli {

template <class Body>
void with_launch_communicator(Body&& body) {
#ifdef FLAS_HAVE_MPI
  if (distributed::launched_by_mpi()) {
    distributed::MpiSession session;
    const distributed::MpiCommunicator comm;
    try {
      body(static_cast<const distributed::Communicator&>(comm));
    } catch (const std::exception& e) {
      // The other ranks wait in a collective for this one: stop them all, naming who failed and why.
      std::fprintf(stderr, "flas: error on rank %d of %d: %s\n", comm.rank(), comm.size(), e.what());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return;
  }
#endif
  body(distributed::single_process());
}

}  // namespace flas::cli
