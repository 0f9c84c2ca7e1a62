// doctest under an MPI launcher: MPI is initialised around the whole run, every rank runs every test
// case (collectives need all of them), and only rank 0's report is printed unless a rank fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "flas/distributed/mpi_communicator.hpp"

int main(int argc, char** argv) {
  flas::distributed::MpiSession session(&argc, &argv);
  const flas::distributed::MpiCommunicator world;
  doctest::Context ctx(argc, argv);
  if (world.rank() != 0) ctx.setOption("minimal", true);  // a failing rank still reports its failures
  const int failed = ctx.run();
  // A rank that failed makes the whole run fail, whichever rank it was.
  const auto failures = world.sum(std::int64_t(failed != 0));
  return failures == 0 ? 0 : 1;
}
