// Host <-> device copies, the pinned staging ring and the small-input cache.
//
// Staging: a pinned ring buffer. A small host -> device copy first memcpy's the bytes into the ring
// (so the caller may free or change its buffer at once), then enqueues cudaMemcpyAsync from there —
// a plain stream operation, which a graph recording captures as a memcpy node. Ring space is handed
// out in order and reclaimed only when the ring is full, after a device synchronisation, so a slot
// is never rewritten before the copy that reads it has run, whether that copy sits in a stream or in
// a graph launched later. The lock is held from the memcpy into the ring until the copy is enqueued.
//
// Small inputs: the models pass the same positions and padding bytes to every layer of a step (and
// key_valid is a pointer into the KV cache's host-side validity). host_input_on_device keeps a device
// copy per (stream, host address, size) with a host shadow of the bytes it holds; an unchanged input
// costs a memcmp. A changed one is copied into the same device buffer: stream order puts that copy
// after every kernel that read the old bytes.
#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <vector>

#include "caching_allocator.hpp"
#include "runtime.hpp"
#include "transfers.hpp"

namespace flas::cuda_detail {
namespace {

constexpr std::size_t kStagingBytes = std::size_t(8) << 20;
constexpr std::size_t kStagedCopyMax = std::size_t(1) << 20;
constexpr std::size_t kInputCacheEntries = 32;

class PinnedStaging {
 public:
  void copy(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mutex_);
    ensure_allocated();
    const std::size_t need = (bytes + 15) / 16 * 16;
    FLAS_CHECK(need <= kStagingBytes, "cuda: a staged copy of ", bytes, " bytes exceeds the staging ring");
    if (used_ + need > kStagingBytes) {
      refuse_while_capturing(s, "a host input copy that needs the staging ring to wrap");
      FLAS_CUDA(cudaDeviceSynchronize());  // every copy out of the ring has run
      used_ = 0;
    }
    std::byte* slot = base_ + used_;
    std::memcpy(slot, src, bytes);
    used_ += need;
    FLAS_CUDA(cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, s));
  }

  void make_room(std::size_t want, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mutex_);
    ensure_allocated();
    if (kStagingBytes - used_ >= want) return;
    refuse_while_capturing(s, "making room in the staging ring");
    FLAS_CUDA(cudaDeviceSynchronize());
    used_ = 0;
  }

 private:
  void ensure_allocated() {
    if (base_) return;
    void* p = nullptr;
    FLAS_CUDA(cudaHostAlloc(&p, kStagingBytes, cudaHostAllocDefault));
    base_ = static_cast<std::byte*>(p);
  }
  std::mutex mutex_;
  std::byte* base_ = nullptr;  // never freed (see runtime.cpp on lifetimes)
  std::size_t used_ = 0;
};

PinnedStaging& staging() {
  static auto* s = new PinnedStaging;
  return *s;
}

class HostInputCache {
 public:
  const void* device_copy(const void* host, std::size_t bytes, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return e.stream == s && e.host == host && e.shadow.size() == bytes; });
    if (it != entries_.end()) {
      entries_.splice(entries_.begin(), entries_, it);  // most recently used first
      Entry& e = entries_.front();
      if (std::memcmp(e.shadow.data(), host, bytes) == 0) return e.device.get();
    } else {
      if (entries_.size() >= kInputCacheEntries) entries_.pop_back();
      entries_.push_front(Entry{s, host, std::vector<std::byte>(bytes), device_allocate(bytes, s)});
    }
    Entry& e = entries_.front();
    try {
      staging().copy(e.device.get(), host, bytes, s);
    } catch (...) {
      entries_.pop_front();  // its shadow must never claim bytes that were not copied
      throw;
    }
    std::memcpy(e.shadow.data(), host, bytes);
    return e.device.get();
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
  }

 private:
  struct Entry {
    cudaStream_t stream;
    const void* host;
    std::vector<std::byte> shadow;
    std::shared_ptr<void> device;
  };
  std::mutex mutex_;
  std::list<Entry> entries_;
};

HostInputCache& input_cache() {
  static auto* c = new HostInputCache;
  return *c;
}

}  // namespace

void copy_to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
  if (bytes == 0) return;
  if (bytes <= kStagedCopyMax) {
    staging().copy(dst, src, bytes, s);
    return;
  }
  refuse_while_capturing(s, "a large host -> device copy");
  FLAS_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  FLAS_CUDA(cudaStreamSynchronize(s));  // the source may be pageable and freed after we return
}

void copy_to_host(void* dst, const void* src, std::size_t bytes, cudaStream_t s) {
  refuse_while_capturing(s, "a device -> host copy");
  if (bytes == 0) return;
  FLAS_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  FLAS_CUDA(cudaStreamSynchronize(s));
}

const void* host_input_on_device(const void* host, std::size_t bytes, cudaStream_t s) {
  if (bytes == 0) return nullptr;
  FLAS_CHECK(bytes <= kStagedCopyMax, "cuda: a per-call host input of ", bytes,
             " bytes (ids, positions or padding) exceeds the staging limit of ", kStagedCopyMax,
             " bytes; upload it as a device tensor");
  return input_cache().device_copy(host, bytes, s);
}

void forget_host_inputs() { input_cache().clear(); }

void make_staging_room_for_recording(cudaStream_t s) { staging().make_room(kStagingBytes / 2, s); }

DeviceOperand weight_operand(const cuda::Operand& o, cudaStream_t s) {
  if (const CudaTensor* d = o.device()) return {d->raw(), d->dtype(), d->shape()};
  const Tensor& h = *o.host();
  return {weight_on_device(h, s), h.dtype(), h.shape()};
}

DeviceOperand index_operand(const cuda::Operand& o, cudaStream_t s) {
  if (const CudaTensor* d = o.device()) return {d->raw(), d->dtype(), d->shape()};
  const Tensor& h = *o.host();
  return {host_input_on_device(h.raw(), h.bytes(), s), h.dtype(), h.shape()};
}

}  // namespace flas::cuda_detail

namespace flas {

using namespace cuda_detail;

CudaTensor CudaBackend::upload(const Tensor& host) {
  CudaTensor t = CudaTensor::empty(host.shape(), host.dtype());
  copy_to_device(t.raw(), host.raw(), host.bytes(), current_stream());
  return t;
}

Tensor CudaBackend::download(const CudaTensor& device) {
  Tensor t = Tensor::empty(device.shape(), device.dtype());
  copy_to_host(t.raw(), device.raw(), device.bytes(), current_stream());
  return t;
}

void CudaBackend::copy(CudaTensor& dst, const Tensor& src) {
  FLAS_CHECK(dst.bytes() == src.bytes() && dst.dtype() == src.dtype(), "copy: ", dst.shape(), " ",
             dtype_name(dst.dtype()), " (device) <- ", src.shape(), " ", dtype_name(src.dtype()), " (host)");
  copy_to_device(dst.raw(), src.raw(), src.bytes(), current_stream());
}

void CudaBackend::copy(Tensor& dst, const CudaTensor& src) {
  FLAS_CHECK(dst.bytes() == src.bytes() && dst.dtype() == src.dtype(), "copy: ", dst.shape(), " ",
             dtype_name(dst.dtype()), " (host) <- ", src.shape(), " ", dtype_name(src.dtype()), " (device)");
  copy_to_host(dst.raw(), src.raw(), src.bytes(), current_stream());
}

}  // namespace flas
