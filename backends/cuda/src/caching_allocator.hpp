#pragma once
// Device memory for the backend's own temporaries (the caching allocator behind CudaSpace).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace flas::cuda_detail {

// A block of at least `bytes` bytes, returned to the cache (for reuse on `s` only) when released.
std::shared_ptr<void> device_allocate(std::size_t bytes, cudaStream_t s);
std::size_t allocator_cached_bytes();
void allocator_release_cached();  // synchronises the device

// A typed temporary on stream `s`: freed (stream-ordered) when the last copy goes.
template <class T>
struct Scratch {
  std::shared_ptr<void> owner;
  T* ptr = nullptr;
};
template <class T>
Scratch<T> scratch(std::int64_t count, cudaStream_t s) {
  Scratch<T> out;
  out.owner = device_allocate(std::size_t(count > 0 ? count : 1) * sizeof(T), s);
  out.ptr = static_cast<T*>(out.owner.get());
  return out;
}

}  // namespace flas::cuda_detail
