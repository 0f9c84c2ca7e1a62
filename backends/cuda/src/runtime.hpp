#pragma once
// The CUDA runtime plumbing every source of the backend shares: error checks that throw flas::Error,
// the current stream, whether it is being recorded into a graph, the cuBLAS handle and device limits.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "flas/core/error.hpp"

namespace flas::cuda_detail {

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line);

// The stream ops of this thread run on (the process-wide stream unless CudaBackend::set_stream).
cudaStream_t current_stream();
// True while `s` is being recorded into a CUDA graph.
bool is_capturing(cudaStream_t s);
// Throws a clear error when `s` is being recorded: `what` cannot be part of a graph.
void refuse_while_capturing(cudaStream_t s, const char* what);

// The cuBLAS handle of this thread, bound to `s`, with its own workspace (graph-capture safe).
cublasHandle_t cublas_on(cudaStream_t s);

// Limits of the current device.
int sm_count();
std::size_t max_shared_memory_optin();

}  // namespace flas::cuda_detail

#define FLAS_CUDA(call)                                                                   \
  do {                                                                                    \
    const cudaError_t flas_cuda_err_ = (call);                                            \
    if (flas_cuda_err_ != cudaSuccess)                                                    \
      ::flas::cuda_detail::throw_cuda_error(flas_cuda_err_, #call, __FILE__, __LINE__);   \
  } while (0)

#define FLAS_CUBLAS(call)                                                                  \
  do {                                                                                     \
    const cublasStatus_t flas_cublas_st_ = (call);                                         \
    if (flas_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                          \
      ::flas::cuda_detail::throw_cublas_error(flas_cublas_st_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports launch errors (bad configuration, missing kernel image) at once.
#define FLAS_CUDA_LAUNCHED() FLAS_CUDA(cudaGetLastError())
