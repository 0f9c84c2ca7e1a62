#pragma once
// The Communicator over MPI (host memory): what a user launches with `mpirun -np K ...` on one machine
// or a cluster. Link flas::mpi (MPI::MPI_CXX). MpiSession owns MPI_Init/MPI_Finalize for programs that
// do not already manage MPI; a runtime that does can wrap its own MPI_Comm in MpiCommunicator.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "flas/core/error.hpp"
#include "flas/distributed/communicator.hpp"

namespace flas::distributed {

namespace detail {
inline void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI ", what, " failed: ", std::string(msg, std::size_t(len)));
}
// MPI counts are int: large buffers go in chunks.
template <class T, class Op>
void in_chunks(std::span<T> data, Op op) {
  constexpr std::size_t chunk = std::size_t(INT_MAX) / 2;
  for (std::size_t off = 0; off < data.size(); off += chunk)
    op(data.data() + off, int(std::min(chunk, data.size() - off)));
}
}  // namespace detail

// True when this process was started by an MPI launcher (Open MPI, MPICH/Hydra, PMIx, Slurm's PMI).
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

class MpiSession {
 public:
  MpiSession(int* argc = nullptr, char*** argv = nullptr) {
    int ready = 0;
    MPI_Initialized(&ready);
    if (ready) return;
    int provided = 0;
    detail::mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owner_ = true;
  }
  ~MpiSession() {
    int done = 0;
    MPI_Finalized(&done);
    if (owner_ && !done) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  bool owner_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    int ready = 0;
    MPI_Initialized(&ready);
    FLAS_CHECK(ready, "MpiCommunicator: MPI is not initialised (create an MpiSession first)");
    // Errors come back as codes and become flas errors naming the collective, not an abort.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string engine() const override { return "mpi"; }

  void allreduce_sum(std::span<float> data) const override { reduce(data, MPI_FLOAT); }
  void allreduce_sum_host(std::span<float> data) const override { reduce(data, MPI_FLOAT); }
  void allreduce_sum_host(std::span<double> data) const override { reduce(data, MPI_DOUBLE); }
  void allreduce_sum_host(std::span<std::int64_t> data) const override { reduce(data, MPI_INT64_T); }

  void broadcast_host(std::span<std::byte> data, int root) const override {
    FLAS_CHECK(root >= 0 && root < size_, "MPI broadcast: root ", root, " is not a rank of ", size_);
    detail::in_chunks(data, [&](std::byte* p, int n) { detail::mpi_check(MPI_Bcast(p, n, MPI_BYTE, root, comm_), "MPI_Bcast"); });
  }
  void allgather_host(std::span<const double> mine, std::span<double> all) const override { gather(mine, all, MPI_DOUBLE); }
  void allgather_host(std::span<const std::int64_t> mine, std::span<std::int64_t> all) const override {
    gather(mine, all, MPI_INT64_T);
  }
  void barrier() const override { detail::mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  template <class T>
  void reduce(std::span<T> data, MPI_Datatype type) const {
    detail::in_chunks(data, [&](T* p, int n) {
      detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, p, n, type, MPI_SUM, comm_), "MPI_Allreduce");
    });
  }
  template <class T>
  void gather(std::span<const T> mine, std::span<T> all, MPI_Datatype type) const {
    FLAS_CHECK(all.size() == mine.size() * std::size_t(size_), "MPI allgather: ", all.size(), " slots for ", size_,
               " ranks of ", mine.size());
    FLAS_CHECK(mine.size() <= std::size_t(INT_MAX), "MPI allgather: ", mine.size(), " elements per rank is too many");
    detail::mpi_check(MPI_Allgather(mine.data(), int(mine.size()), type, all.data(), int(mine.size()), type, comm_),
                      "MPI_Allgather");
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace flas::distributed
