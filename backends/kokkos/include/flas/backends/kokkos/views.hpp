#pragma once
// What every Kokkos op needs: unmanaged Views over flas tensors, a weight reader that takes F32 or BF16
// inside kernels, the checks with the op's and tensor's name, and the math functions under the names of
// Kokkos 3.4 (Kokkos::Experimental::) and 4.x (Kokkos::) alike.
#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"
#include "flas/backends/kokkos/memory_space.hpp"
#include "flas/core/tensor.hpp"

namespace flas::kokkos_detail {

#if KOKKOS_VERSION >= 40000
namespace kmath = ::Kokkos;
#else
namespace kmath = ::Kokkos::Experimental;
#endif

template <class T, class Mem>
using UView = Kokkos::View<T*, Mem, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

template <class Mem, class S>
UView<float, Mem> f32(BasicTensor<S>& t) {
  return UView<float, Mem>(t.template data<float>(), std::size_t(t.numel()));
}
template <class Mem, class S>
UView<const float, Mem> f32(const BasicTensor<S>& t) {
  return UView<const float, Mem>(t.template data<float>(), std::size_t(t.numel()));
}
template <class Mem, class S>
UView<const std::int64_t, Mem> i64(const BasicTensor<S>& t) {
  return UView<const std::int64_t, Mem>(t.template data<std::int64_t>(), std::size_t(t.numel()));
}

// A weight (F32 or BF16) read as f32 inside a kernel; bf16 is the top half of an f32.
struct Weight {
  const float* f = nullptr;
  const std::uint16_t* h = nullptr;
  KOKKOS_INLINE_FUNCTION float operator()(std::int64_t i) const {
    if (f) return f[i];
    const std::uint32_t u = std::uint32_t(h[i]) << 16;
    float out;
    memcpy(&out, &u, sizeof out);  // device-safe bit cast (std::bit_cast is not on every device compiler)
    return out;
  }
};

template <class S>
Weight weight(const BasicTensor<S>& w, const char* op, const char* what) {
  FLAS_CHECK(w.dtype() == DType::F32 || w.dtype() == DType::BF16, op, ": ", what, " has dtype ",
             dtype_name(w.dtype()), ", expected F32 or BF16");
  if (w.dtype() == DType::F32) return Weight{static_cast<const float*>(w.raw()), nullptr};
  return Weight{nullptr, static_cast<const std::uint16_t*>(w.raw())};
}

template <class S>
void expect_f32(const BasicTensor<S>& t, const char* op, const char* what) {
  FLAS_CHECK(t.dtype() == DType::F32, op, ": ", what, " has dtype ", dtype_name(t.dtype()), ", expected F32");
}
template <class S>
void expect_i64(const BasicTensor<S>& t, const char* op, const char* what) {
  FLAS_CHECK(t.dtype() == DType::I64, op, ": ", what, " has dtype ", dtype_name(t.dtype()), ", expected I64");
}
template <class S>
std::int64_t rows(const BasicTensor<S>& t) {
  return t.rank() <= 1 ? 1 : (t.dim(-1) == 0 ? 0 : t.numel() / t.dim(-1));
}

template <class S>
void expect_f32s(const char* op, const char* what, std::initializer_list<const BasicTensor<S>*> ts) {
  for (const auto* t : ts) expect_f32(*t, op, what);
}
template <class S>
void expect_param_grad(const BasicTensor<S>& g, std::int64_t n, const char* op, const char* what) {
  FLAS_CHECK(g.dtype() == DType::F32 && g.numel() == n, op, ": ", what, " is ", dtype_name(g.dtype()), " ",
             g.shape(), ", expected F32 with ", n, " elements");
}
template <class S>
bool overlaps(const BasicTensor<S>& a, const BasicTensor<S>& b) {
  const auto* pa = static_cast<const std::byte*>(a.raw());
  const auto* pb = static_cast<const std::byte*>(b.raw());
  return pa < pb + b.bytes() && pb < pa + a.bytes();
}

// The attention padding mask (a host array of B·cap bytes, or null) where kernels of E can read it:
// the array itself in host-accessible spaces, a device copy (held here for the op's duration) elsewhere.
template <class E>
struct KeyValidOn {
  Kokkos::View<std::uint8_t*, typename E::memory_space> copy;
  const std::uint8_t* data = nullptr;
  KeyValidOn(const std::uint8_t* host, std::int64_t n) : data(host) {
    if constexpr (!kokkos_host_accessible<E>) {
      if (!host) return;
      copy = decltype(copy)(Kokkos::ViewAllocateWithoutInitializing("flas::key_valid"), n);
      Kokkos::deep_copy(copy, Kokkos::View<const std::uint8_t*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(host, std::size_t(n)));
      data = copy.data();
    }
  }
};

}  // namespace flas::kokkos_detail
