// NcclCommunicator: NCCL on CUDA devices, bootstrapped over a host Communicator.
#include "flas/backends/cuda_nccl.hpp"

#include <nccl.h>

#include <array>
#include <cstdlib>
#include <cstring>

#include "flas/backends/cuda.hpp"
#include "runtime.hpp"

namespace flas::distributed {

namespace {
void nccl_check(ncclResult_t r, const char* call) {
  if (r == ncclSuccess) return;
  fail("NCCL ", call, " failed: ", ncclGetErrorString(r),
       r == ncclInvalidUsage ? " (two ranks on one GPU? NCCL needs one rank per device)" : "");
}
}  // namespace

int launcher_local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return 0;
}

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  int device = 0;
  int rank = 0, size = 1;
};

NcclCommunicator::NcclCommunicator(const Communicator& host, int device) : host_(host), state_(std::make_unique<State>()) {
  int devices = 0;
  FLAS_CUDA(cudaGetDeviceCount(&devices));
  FLAS_CHECK(devices > 0, "NcclCommunicator: no CUDA device");
  if (device < 0) device = (host.size() > 1 ? launcher_local_rank() : 0) % devices;
  FLAS_CHECK(device < devices, "NcclCommunicator: device ", device, " does not exist (", devices, " devices)");
  FLAS_CUDA(cudaSetDevice(device));
  state_->device = device;
  state_->rank = host.rank();
  state_->size = host.size();
  // Rank 0 makes the id; the host communicator carries it to everyone.
  ncclUniqueId id{};
  if (host.is_root()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  host.broadcast_host(std::as_writable_bytes(std::span<ncclUniqueId>(&id, 1)), 0);
  nccl_check(ncclCommInitRank(&state_->comm, state_->size, id, state_->rank), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (state_ && state_->comm) ncclCommDestroy(state_->comm);
}

int NcclCommunicator::rank() const { return state_->rank; }
int NcclCommunicator::size() const { return state_->size; }
int NcclCommunicator::device() const { return state_->device; }

void NcclCommunicator::allreduce_sum(std::span<float> data) const {
  if (data.empty()) return;
  const cudaStream_t s = CudaBackend::stream();
  cuda_detail::refuse_while_capturing(s, "an NCCL allreduce in flas (run it outside the recorded step)");
  nccl_check(ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat32, ncclSum, state_->comm, s),
             "ncclAllReduce");
  FLAS_CUDA(cudaStreamSynchronize(s));
}

void NcclCommunicator::allreduce_sum_host(std::span<float> data) const {
  if (data.empty()) return;
  CudaTensor staged = CudaTensor::empty({std::int64_t(data.size())}, DType::F32);
  float* d = static_cast<float*>(staged.raw());
  const cudaStream_t s = CudaBackend::stream();
  FLAS_CUDA(cudaMemcpyAsync(d, data.data(), data.size_bytes(), cudaMemcpyHostToDevice, s));
  allreduce_sum(std::span<float>(d, data.size()));
  FLAS_CUDA(cudaMemcpyAsync(data.data(), d, data.size_bytes(), cudaMemcpyDeviceToHost, s));
  FLAS_CUDA(cudaStreamSynchronize(s));
}

void NcclCommunicator::allreduce_sum_host(std::span<double> data) const { host_.allreduce_sum_host(data); }
void NcclCommunicator::allreduce_sum_host(std::span<std::int64_t> data) const { host_.allreduce_sum_host(data); }
void NcclCommunicator::broadcast_host(std::span<std::byte> data, int root) const { host_.broadcast_host(data, root); }
void NcclCommunicator::allgather_host(std::span<const double> mine, std::span<double> all) const {
  host_.allgather_host(mine, all);
}
void NcclCommunicator::allgather_host(std::span<const std::int64_t> mine, std::span<std::int64_t> all) const {
  host_.allgather_host(mine, all);
}
void NcclCommunicator::barrier() const { host_.barrier(); }

std::string NcclCommunicator::nccl_version() {
  int v = 0;
  nccl_check(ncclGetVersion(&v), "ncclGetVersion");
  // NCCL_VERSION(X,Y,Z) = X*10000 + Y*100 + Z since 2.9.
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace flas::distributed
