#pragma once
// The Communicator over NCCL, for CUDA tensors: one rank per GPU, launched like the MPI build
// (`mpirun -np K`, one rank per GPU of each node) or by a user's own launcher. NCCL needs one id shared
// by all ranks before it can talk; that id travels over a host Communicator (MPI, or SingleProcess for
// one GPU), which also carries the host-side collectives (token counts, losses, broadcasts of host
// bytes). allreduce_sum takes device memory and runs on the backend's current stream; the host float
// overload stages through a device buffer (the trainer's gradients are host tensors).
// This header includes no CUDA or NCCL header, like cuda.hpp; link flas::cuda (built with NCCL when the
// toolkit has it: FLAS_HAVE_NCCL).
#include <memory>
#include <span>
#include <string>

#include "flas/distributed/communicator.hpp"

namespace flas::distributed {

class NcclCommunicator final : public Communicator {
 public:
  // `host`: the bootstrap communicator (must outlive this one; its rank and size are ours).
  // `device`: the CUDA device of this rank; -1 picks the local rank (OMPI_COMM_WORLD_LOCAL_RANK,
  // SLURM_LOCALID, MPI_LOCALRANKID, else the rank) modulo the number of devices.
  explicit NcclCommunicator(const Communicator& host, int device = -1);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  std::string engine() const override { return "nccl"; }
  int device() const;

  // Device memory (the current CUDA device), enqueued on CudaBackend::stream() and waited for.
  void allreduce_sum(std::span<float> data) const override;
  void allreduce_sum_host(std::span<float> data) const override;
  void allreduce_sum_host(std::span<double> data) const override;
  void allreduce_sum_host(std::span<std::int64_t> data) const override;
  void broadcast_host(std::span<std::byte> data, int root) const override;
  void allgather_host(std::span<const double> mine, std::span<double> all) const override;
  void allgather_host(std::span<const std::int64_t> mine, std::span<std::int64_t> all) const override;
  void barrier() const override;

  // The NCCL library version this process runs with, e.g. "2.27.7".
  static std::string nccl_version();

 private:
  struct State;
  const Communicator& host_;
  std::unique_ptr<State> state_;
};

// The local rank a launcher reports (0 when none does): which GPU of its node a rank takes.
int launcher_local_rank();

}  // namespace flas::distributed
