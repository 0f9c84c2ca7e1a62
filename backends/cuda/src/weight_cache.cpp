// The weight cache: device copies of host weights, uploaded on first use and kept.
//
// Key: host address, byte size and dtype — a view (a row of a steering-direction table, a tied
// embedding used as the LM head) is its own entry only where its bytes differ. Identity: the entry
// also holds a weak_ptr to the host tensor's owner, so an address reused by a *new* host tensor (tests
// allocate and free weights all the time) is recognised as a different weight and re-uploaded.
// Tensors wrapped without an owner are identified by address alone (documented in cuda.hpp).
//
// Device copies live in their own cudaMalloc blocks (not the caching allocator: they are long-lived
// and large). Entries whose host owner has died are freed on the next upload, after a device
// synchronisation, so no queued kernel can still be reading them.
#include <map>
#include <mutex>
#include <tuple>

#include "runtime.hpp"
#include "transfers.hpp"

namespace flas {
namespace cuda_detail {
namespace {

class WeightCache {
 public:
  const void* device_copy(const Tensor& w, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Key key{w.raw(), w.bytes(), w.dtype()};
    auto it = entries_.find(key);
    if (it != entries_.end() && same_host_tensor(it->second, w)) return it->second.device;
    refuse_while_capturing(s, "uploading a weight that is not on the device yet");
    if (it != entries_.end()) drop(it);  // the address now belongs to another host tensor
    sweep_dead();
    void* d = nullptr;
    FLAS_CUDA(cudaMalloc(&d, w.bytes() ? w.bytes() : 1));
    Entry e{w.owner(), bool(w.owner()), d, w.bytes()};
    if (w.bytes()) {
      // The host source may be pageable or memory-mapped: wait for the copy before anyone can free it.
      const cudaError_t copied = cudaMemcpyAsync(d, w.raw(), w.bytes(), cudaMemcpyHostToDevice, s);
      const cudaError_t synced = copied == cudaSuccess ? cudaStreamSynchronize(s) : copied;
      if (synced != cudaSuccess) {
        (void)cudaFree(d);
        throw_cuda_error(synced, "cudaMemcpyAsync (weight upload)", __FILE__, __LINE__);
      }
    }
    bytes_ += e.bytes;
    entries_.emplace(key, e);
    return d;
  }

  void forget(const Tensor& w) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(Key{w.raw(), w.bytes(), w.dtype()});
    if (it != entries_.end()) drop(it);
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!entries_.empty()) drop(entries_.begin());
  }

  std::size_t bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
  }

 private:
  using Key = std::tuple<const void*, std::size_t, DType>;
  struct Entry {
    std::weak_ptr<void> owner;
    bool has_owner = false;
    void* device = nullptr;
    std::size_t bytes = 0;
  };

  static bool same_host_tensor(const Entry& e, const Tensor& w) {
    if (!e.has_owner) return !w.owner();
    if (e.owner.expired() || !w.owner()) return false;
    return !e.owner.owner_before(w.owner()) && !w.owner().owner_before(e.owner);
  }

  void drop(std::map<Key, Entry>::iterator it) {
    (void)cudaDeviceSynchronize();  // queued kernels may still read the copy
    (void)cudaFree(it->second.device);
    bytes_ -= it->second.bytes;
    entries_.erase(it);
  }

  void sweep_dead() {
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (it->second.has_owner && it->second.owner.expired()) drop(it);
      it = next;
    }
  }

  std::mutex mutex_;
  std::map<Key, Entry> entries_;
  std::size_t bytes_ = 0;
};

WeightCache& cache() {
  static auto* c = new WeightCache;
  return *c;
}

}  // namespace

const void* weight_on_device(const Tensor& w, cudaStream_t s) { return cache().device_copy(w, s); }

}  // namespace cuda_detail

void CudaBackend::preload(const Tensor& weight) {
  (void)cuda_detail::weight_on_device(weight, cuda_detail::current_stream());
}
void CudaBackend::forget(const Tensor& weight) { cuda_detail::cache().forget(weight); }
void CudaBackend::clear_weight_cache() { cuda_detail::cache().clear(); }
std::size_t CudaBackend::weight_cache_bytes() { return cuda_detail::cache().bytes(); }

}  // namespace flas
