// CudaSpace::allocate: a caching allocator over cudaMalloc.
//
// The models create a fresh activation tensor for nearly every op, so a decode step makes hundreds of
// allocations; cudaMalloc/cudaFree per tensor would cost more than the kernels (cudaFree also
// synchronises the device). Freed blocks are kept in free lists keyed by (stream, rounded size) and
// handed out again. Reuse is safe without events because a block is reused only on the stream that
// freed it: anything enqueued with the new owner runs after every kernel the old owner queued.
//
// Sizes are rounded up to a multiple of max(512 B, 1/8 of their power of two), which wastes < 12.5%
// and keeps the number of distinct sizes small; decode repeats the same sizes every step, so after
// the first step it allocates nothing. When cudaMalloc runs out of memory the free lists are released
// (after a device synchronisation) and the allocation retried once.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <mutex>
#include <utility>
#include <vector>

#include "caching_allocator.hpp"
#include "flas/backends/cuda.hpp"
#include "runtime.hpp"

namespace flas {
namespace cuda_detail {
namespace {

std::size_t round_block_size(std::size_t bytes) {
  std::size_t pow2 = 1;
  while (pow2 < bytes) pow2 <<= 1;
  const std::size_t granule = std::max<std::size_t>(512, pow2 / 8);
  const std::size_t n = bytes == 0 ? 1 : bytes;
  return (n + granule - 1) / granule * granule;
}

class CachingAllocator {
 public:
  void* allocate(std::size_t rounded, cudaStream_t s) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find({s, rounded});
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= rounded;
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, rounded);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_all();
      e = cudaMalloc(&p, rounded);
    }
    if (e != cudaSuccess)
      throw_cuda_error(e, ("cudaMalloc of " + std::to_string(rounded) + " bytes").c_str(), __FILE__, __LINE__);
    return p;
  }

  // Called from shared_ptr deleters: never throws.
  void release(void* p, std::size_t rounded, cudaStream_t s) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      free_[{s, rounded}].push_back(p);
      cached_bytes_ += rounded;
    } catch (...) {
      // Out of host memory for the free list: give the block back to CUDA instead.
      (void)cudaFree(p);
    }
  }

  void release_all() {
    FLAS_CUDA(cudaDeviceSynchronize());
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [key, blocks] : free_)
      for (void* p : blocks) (void)cudaFree(p);
    free_.clear();
    cached_bytes_ = 0;
  }

  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<cudaStream_t, std::size_t>, std::vector<void*>> free_;
  std::size_t cached_bytes_ = 0;
};

// Never destroyed: tensors in static storage may be freed after every other static is gone.
CachingAllocator& allocator() {
  static auto* a = new CachingAllocator;
  return *a;
}

}  // namespace

std::shared_ptr<void> device_allocate(std::size_t bytes, cudaStream_t s) {
  const std::size_t rounded = round_block_size(bytes);
  void* p = allocator().allocate(rounded, s);
  return std::shared_ptr<void>(p, [rounded, s](void* q) { allocator().release(q, rounded, s); });
}

std::size_t allocator_cached_bytes() { return allocator().cached_bytes(); }
void allocator_release_cached() { allocator().release_all(); }

}  // namespace cuda_detail

std::shared_ptr<void> CudaSpace::allocate(std::size_t bytes) {
  return cuda_detail::device_allocate(bytes, cuda_detail::current_stream());
}

std::size_t CudaBackend::allocator_cached_bytes() { return cuda_detail::allocator_cached_bytes(); }
void CudaBackend::release_cached_memory() { cuda_detail::allocator_release_cached(); }

}  // namespace flas
