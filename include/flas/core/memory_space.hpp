#pragma once
// Memory spaces as types (Kokkos' idea): a tensor's space is part of its type, so host code can never
// dereference device memory by accident. A space knows how to allocate and free its bytes.
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include "flas/core/host_block_cache.hpp"

namespace flas {

struct HostSpace {
  static constexpr const char* name = "host";
  static constexpr std::size_t alignment = 64;  // one cache line; AVX-512 loads stay aligned
  static std::shared_ptr<void> allocate(std::size_t bytes) {
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    const std::size_t size = rounded == 0 ? alignment : rounded;
    // Large blocks go through the cache (host_block_cache.hpp): a forward's activations keep their pages.
    void* p = HostBlockCache::instance().allocate(size, alignment);
    return std::shared_ptr<void>(p, [size](void* q) { HostBlockCache::instance().release(q, size, alignment); });
  }
};

template <class S>
concept MemorySpace = requires(std::size_t n) {
  { S::name };
  { S::allocate(n) } -> std::same_as<std::shared_ptr<void>>;
};

}  // namespace flas
