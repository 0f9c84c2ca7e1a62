// The MPI communicator against sums computed here: every collective the trainer uses, on 2+ ranks.
#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "flas/distributed/data_parallel.hpp"
#include "flas/distributed/mpi_communicator.hpp"

using namespace flas;
using distributed::MpiCommunicator;

TEST_CASE("the test runs on more than one rank") {
  const MpiCommunicator comm;
  REQUIRE_MESSAGE(comm.size() >= 2, "run this test with mpirun -np 2 (or more)");
  CHECK(comm.engine() == "mpi");
}

TEST_CASE("allreduce sums floats, doubles and integers over ranks") {
  const MpiCommunicator comm;
  const int K = comm.size(), r = comm.rank();
  std::vector<float> f(1000);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = float(r + 1) * 0.25f + float(i);  // exact in f32
  comm.allreduce_sum(std::span<float>(f));
  const double ranks_sum = 0.25 * K * (K + 1) / 2.0;
  for (std::size_t i = 0; i < f.size(); ++i) REQUIRE(f[i] == float(ranks_sum + double(K) * double(i)));
  std::vector<float> g{float(r), 0.5f};
  comm.allreduce_sum_host(std::span<float>(g));
  CHECK(g[0] == float(K * (K - 1) / 2));
  CHECK(g[1] == 0.5f * float(K));
  std::vector<double> d{double(r), 1.5};
  comm.allreduce_sum_host(std::span<double>(d));
  CHECK(d[0] == double(K * (K - 1) / 2));
  CHECK(d[1] == 1.5 * K);
  CHECK(comm.sum(std::int64_t(1) << 40) == (std::int64_t(1) << 40) * K);  // 64-bit, not int
}

TEST_CASE("allgather concatenates in rank order; broadcast copies the root's bytes") {
  const MpiCommunicator comm;
  const int K = comm.size(), r = comm.rank();
  const std::vector<double> mine{double(r), double(10 * r)};
  std::vector<double> all(2 * std::size_t(K));
  comm.allgather_host(std::span<const double>(mine), std::span<double>(all));
  for (int k = 0; k < K; ++k) {
    CHECK(all[2 * std::size_t(k)] == double(k));
    CHECK(all[2 * std::size_t(k) + 1] == double(10 * k));
  }
  std::vector<double> wrong(3);
  CHECK_THROWS_WITH(comm.allgather_host(std::span<const double>(mine), std::span<double>(wrong)),
                    doctest::Contains("slots for"));
  std::vector<std::byte> bytes(5, std::byte(r));
  comm.broadcast_host(std::span<std::byte>(bytes), K - 1);
  for (auto b : bytes) CHECK(b == std::byte(K - 1));
  CHECK_THROWS_WITH(comm.broadcast_host(std::span<std::byte>(bytes), K), doctest::Contains("not a rank"));
}

TEST_CASE("shards of a global batch cover it once, in order; uneven batches are refused") {
  const MpiCommunicator comm;
  const int K = comm.size();
  std::vector<std::size_t> rows(std::size_t(4 * K));
  std::iota(rows.begin(), rows.end(), 100);
  const auto mine = distributed::shard_of(std::span<const std::size_t>(rows), comm);
  REQUIRE(mine.size() == 4);
  std::vector<std::int64_t> got(mine.begin(), mine.end()), all(rows.size());
  comm.allgather_host(std::span<const std::int64_t>(got), std::span<std::int64_t>(all));
  for (std::size_t i = 0; i < rows.size(); ++i) CHECK(all[i] == std::int64_t(rows[i]));
  rows.push_back(1);
  CHECK_THROWS_WITH(distributed::shard_of(std::span<const std::size_t>(rows), comm), doctest::Contains("evenly"));
  const auto share = distributed::strided_share(std::vector<int>{0, 1, 2, 3, 4}, comm);
  CHECK(comm.sum(std::int64_t(share.size())) == 5);
}
