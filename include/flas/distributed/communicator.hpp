#pragma once
// The collective operations data-parallel training needs, behind one small interface so that the
// trainer never names an engine: MPI on CPUs (mpi_communicator.hpp), NCCL on CUDA devices
// (backends/cuda: nccl_communicator.hpp), or a single process (this file). Every rank must call the
// same collectives in the same order with the same counts, as in MPI. Buffers live in the memory
// space the implementation names (host for MPI and SingleProcess, device for NCCL); scalars that
// steer control flow (token counts, losses) always go through the host overloads.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace flas::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string engine() const = 0;  // "single", "mpi", "nccl": for logs and errors

  // In place: every rank ends with the element-wise sum over ranks, in the implementation's space.
  virtual void allreduce_sum(std::span<float> data) const = 0;
  // Host buffers (always host memory, whatever the implementation's space): a device engine stages
  // them through its own memory. The trainer's gradients are host tensors and take this one.
  virtual void allreduce_sum_host(std::span<float> data) const = 0;
  virtual void allreduce_sum_host(std::span<double> data) const = 0;
  virtual void allreduce_sum_host(std::span<std::int64_t> data) const = 0;
  // Rank `root`'s bytes to every rank (host memory).
  virtual void broadcast_host(std::span<std::byte> data, int root) const = 0;
  // Every rank's `mine` (the same count on every rank) concatenated in rank order into `all`
  // (size() · mine.size() elements; host memory).
  virtual void allgather_host(std::span<const double> mine, std::span<double> all) const = 0;
  virtual void allgather_host(std::span<const std::int64_t> mine, std::span<std::int64_t> all) const = 0;
  virtual void barrier() const = 0;

  bool is_root() const { return rank() == 0; }
  double sum(double x) const {
    allreduce_sum_host(std::span<double>(&x, 1));
    return x;
  }
  std::int64_t sum(std::int64_t x) const {
    allreduce_sum_host(std::span<std::int64_t>(&x, 1));
    return x;
  }
};

// One process: collectives are identities. The default everywhere a communicator is optional.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string engine() const override { return "single"; }
  void allreduce_sum(std::span<float>) const override {}
  void allreduce_sum_host(std::span<float>) const override {}
  void allreduce_sum_host(std::span<double>) const override {}
  void allreduce_sum_host(std::span<std::int64_t>) const override {}
  void broadcast_host(std::span<std::byte>, int) const override {}
  void allgather_host(std::span<const double> mine, std::span<double> all) const override { copy(mine, all); }
  void allgather_host(std::span<const std::int64_t> mine, std::span<std::int64_t> all) const override { copy(mine, all); }
  void barrier() const override {}

 private:
  template <class T>
  static void copy(std::span<const T> mine, std::span<T> all) {
    for (std::size_t i = 0; i < mine.size() && i < all.size(); ++i) all[i] = mine[i];
  }
};

// The communicator to use when none is given.
inline const Communicator& single_process() {
  static const SingleProcess one;
  return one;
}

}  // namespace flas::distributed
