// NcclCommunicator on one GPU, bootstrapped over SingleProcess: the wiring a multi-GPU run uses (the id
// sent over the host communicator, the communicator built on this rank's device, allreduce on the
// backend's stream, host buffers staged through device memory, host collectives handed to the
// bootstrap). With one rank the sum over ranks is the data itself, so every value must come back
// unchanged, bit for bit, from device and host buffers of awkward sizes.
#if FLAS_HAVE_NCCL
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "cuda_test_support.hpp"
#include "flas/backends/cuda_nccl.hpp"

namespace flas::cuda_test {
namespace {

using distributed::NcclCommunicator;

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = float(i % 977) * 0.125f - 17.0f;
  return v;
}

TEST_CASE("nccl communicator: one rank on this GPU, device and host allreduce are the identity") {
  const NcclCommunicator comm(distributed::single_process());
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  CHECK(comm.engine() == "nccl");
  int current = -1;
  REQUIRE(cudaGetDevice(&current) == cudaSuccess);
  CHECK(comm.device() == current);
  MESSAGE("NCCL ", NcclCommunicator::nccl_version());
  CHECK(NcclCommunicator::nccl_version().find('.') != std::string::npos);

  for (const std::size_t n : {std::size_t(1), std::size_t(1000), std::size_t(3) << 20}) {
    const auto want = ramp(n);
    Tensor host = Tensor::empty({std::int64_t(n)}, DType::F32);
    std::copy(want.begin(), want.end(), host.data<float>());
    CudaTensor device = CudaBackend::upload(host);
    comm.allreduce_sum(std::span<float>(static_cast<float*>(device.raw()), n));
    const Tensor back = CudaBackend::download(device);
    REQUIRE(std::equal(want.begin(), want.end(), back.data<float>()));

    auto staged = want;
    comm.allreduce_sum_host(std::span<float>(staged));
    REQUIRE(staged == want);
  }
  std::vector<double> d{1.5, -2.0};
  comm.allreduce_sum_host(std::span<double>(d));
  CHECK(d == std::vector<double>{1.5, -2.0});
  CHECK(comm.sum(std::int64_t(1) << 40) == std::int64_t(1) << 40);
  std::vector<std::byte> bytes{std::byte{7}, std::byte{9}};
  comm.broadcast_host(std::span<std::byte>(bytes), 0);
  CHECK(bytes[1] == std::byte{9});
  comm.barrier();
}

}  // namespace
}  // namespace flas::cuda_test
#endif
