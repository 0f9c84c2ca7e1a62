// Errors, streams, the cuBLAS handle, device limits and the backend's settings.
//
// Lifetimes: the process-wide stream, each thread's cuBLAS handle and its workspace are created on
// first use and deliberately never destroyed — destroying them from static or thread-local
// destructors races the CUDA runtime's own teardown at exit; the driver reclaims them with the process.
#include <atomic>
#include <mutex>
#include <string>

#include "flas/backends/cuda.hpp"
#include "runtime.hpp"

namespace flas {
namespace cuda_detail {
namespace {

cudaStream_t process_stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    FLAS_CUDA(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

thread_local cudaStream_t thread_stream = nullptr;

struct CublasState {
  cublasHandle_t handle = nullptr;
  cudaStream_t bound = nullptr;
};
// cuBLAS allocates its own workspace unless given one, which breaks stream capture; 32 MiB is what
// NVIDIA recommends for Hopper.
constexpr std::size_t kCublasWorkspaceBytes = std::size_t(32) << 20;

struct DeviceLimits {
  int sms = 0;
  std::size_t smem_optin = 0;
};
const DeviceLimits& limits() {
  static const DeviceLimits l = [] {
    DeviceLimits out;
    int dev = 0, value = 0;
    FLAS_CUDA(cudaGetDevice(&dev));
    FLAS_CUDA(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, dev));
    out.sms = value;
    FLAS_CUDA(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    out.smem_optin = std::size_t(value);
    return out;
  }();
  return l;
}

std::atomic<CudaBackend::Precision> g_precision{CudaBackend::Precision::bf16_inputs};
std::atomic<CudaBackend::AttentionKernel> g_attention{CudaBackend::AttentionKernel::automatic};

}  // namespace

void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // clear a sticky-free error so that the next call starts clean
  fail("CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") in ", call, " at ", file, ":", line);
}

void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  fail("cuBLAS error ", cublasGetStatusName(s), " (", cublasGetStatusString(s), ") in ", call, " at ", file, ":",
       line);
}

cudaStream_t current_stream() { return thread_stream ? thread_stream : process_stream(); }

bool is_capturing(cudaStream_t s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  FLAS_CUDA(cudaStreamIsCapturing(s, &status));
  return status != cudaStreamCaptureStatusNone;
}

void refuse_while_capturing(cudaStream_t s, const char* what) {
  FLAS_CHECK(!is_capturing(s), "cuda: ", what,
             " cannot be recorded into a CUDA graph (run it outside StepGraph::run, or run one step eagerly first)");
}

cublasHandle_t cublas_on(cudaStream_t s) {
  thread_local CublasState state;
  if (!state.handle) {
    FLAS_CUBLAS(cublasCreate(&state.handle));
    void* workspace = nullptr;
    FLAS_CUDA(cudaMalloc(&workspace, kCublasWorkspaceBytes));
    FLAS_CUBLAS(cublasSetWorkspace(state.handle, workspace, kCublasWorkspaceBytes));
    // Pure f32 for f32 GEMMs: TF32 would put 2^-11 relative errors into the "exact" path.
    FLAS_CUBLAS(cublasSetMathMode(state.handle, CUBLAS_DEFAULT_MATH));
  }
  if (state.bound != s) {
    FLAS_CUBLAS(cublasSetStream(state.handle, s));
    state.bound = s;
  }
  return state.handle;
}

int sm_count() { return limits().sms; }
std::size_t max_shared_memory_optin() { return limits().smem_optin; }

}  // namespace cuda_detail

using namespace cuda_detail;

bool CudaBackend::available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
}

std::string CudaBackend::device_description() {
  if (!available()) return "no CUDA device";
  int dev = 0;
  FLAS_CUDA(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  FLAS_CUDA(cudaGetDeviceProperties(&prop, dev));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
         std::to_string(prop.multiProcessorCount) + " SMs, " + std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
}

void CudaBackend::set_precision(Precision p) { g_precision.store(p); }
CudaBackend::Precision CudaBackend::precision() { return g_precision.load(); }
void CudaBackend::set_attention_kernel(AttentionKernel k) { g_attention.store(k); }
CudaBackend::AttentionKernel CudaBackend::attention_kernel() { return g_attention.load(); }

cuda::Stream CudaBackend::stream() { return current_stream(); }
void CudaBackend::set_stream(cuda::Stream s) { thread_stream = s; }
void CudaBackend::synchronize() { FLAS_CUDA(cudaStreamSynchronize(current_stream())); }

}  // namespace flas
