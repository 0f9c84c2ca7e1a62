#pragma once
// The tensor: a contiguous row-major block of one dtype in one memory space, sharing ownership of its
// bytes with every view of it. Views are reshapes and ranges along the first dimension, which keeps
// every tensor contiguous: ops never deal with strides, and a view of a memory-mapped checkpoint
// costs nothing.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"
#include "flas/core/memory_space.hpp"
#include "flas/core/shape.hpp"

namespace flas {

template <MemorySpace Space = HostSpace>
class BasicTensor {
 public:
  using space = Space;

  BasicTensor() = default;

  // Fresh, uninitialised storage.
  static BasicTensor empty(const Shape& shape, DType dtype) {
    BasicTensor t;
    t.shape_ = shape;
    t.dtype_ = dtype;
    t.owner_ = Space::allocate(t.bytes());
    t.ptr_ = static_cast<std::byte*>(t.owner_.get());
    return t;
  }
  // Wraps existing bytes (a memory-mapped file, a user's buffer); `owner` keeps them alive.
  static BasicTensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner = {}) {
    BasicTensor t;
    t.shape_ = shape;
    t.dtype_ = dtype;
    t.owner_ = std::move(owner);
    t.ptr_ = static_cast<std::byte*>(data);
    return t;
  }

  bool defined() const { return ptr_ != nullptr || shape_.rank() > 0; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t dim(int i) const { return shape_[i]; }
  std::int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  std::size_t bytes() const { return std::size_t(numel()) * dtype_size(dtype_); }

  void* raw() { return ptr_; }
  const void* raw() const { return ptr_; }
  // Typed access; the dtype must match (bf16 data is read as flas::bf16).
  template <class T>
  T* data() {
    check_dtype<T>();
    return reinterpret_cast<T*>(ptr_);
  }
  template <class T>
  const T* data() const {
    check_dtype<T>();
    return reinterpret_cast<const T*>(ptr_);
  }

  // Same bytes, another shape with the same element count.
  BasicTensor view(const Shape& s) const {
    FLAS_CHECK(s.numel() == numel(), "cannot view a tensor of shape ", shape_, " as ", s);
    BasicTensor t = *this;
    t.shape_ = s;
    return t;
  }
  // Rows [begin, end) of the first dimension.
  BasicTensor slice(std::int64_t begin, std::int64_t end) const {
    FLAS_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= dim(0), "slice [", begin, ", ", end,
               ") out of range for shape ", shape_);
    BasicTensor t = *this;
    t.shape_ = shape_.with_first(end - begin);
    t.ptr_ = ptr_ + std::size_t(begin) * row_bytes();
    return t;
  }
  // Row i of the first dimension, with that dimension dropped.
  BasicTensor operator[](std::int64_t i) const {
    FLAS_CHECK(rank() >= 1 && 0 <= i && i < dim(0), "index ", i, " out of range for shape ", shape_);
    BasicTensor t = *this;
    t.shape_ = shape_.tail();
    t.ptr_ = ptr_ + std::size_t(i) * row_bytes();
    return t;
  }
  std::size_t row_bytes() const { return rank() == 0 ? bytes() : bytes() / std::size_t(dim(0) ? dim(0) : 1); }

  bool shares_storage_with(const BasicTensor& o) const { return owner_ && owner_ == o.owner_; }
  const std::shared_ptr<void>& owner() const { return owner_; }

 private:
  template <class T>
  void check_dtype() const {
    FLAS_CHECK(dtype_of<std::remove_const_t<T>>() == dtype_, "tensor of dtype ", dtype_name(dtype_),
               " accessed as ", dtype_name(dtype_of<std::remove_const_t<T>>()));
  }
  std::shared_ptr<void> owner_;
  std::byte* ptr_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
};

using Tensor = BasicTensor<HostSpace>;

// Host helpers ------------------------------------------------------------------------------------
inline Tensor zeros(const Shape& s, DType d = DType::F32) {
  Tensor t = Tensor::empty(s, d);
  std::memset(t.raw(), 0, t.bytes());
  return t;
}
inline Tensor clone(const Tensor& x) {
  Tensor t = Tensor::empty(x.shape(), x.dtype());
  std::memcpy(t.raw(), x.raw(), x.bytes());
  return t;
}
// Element i of a floating tensor as double, whatever its dtype (tests and I/O; not for hot loops).
inline double element_as_double(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::F64: return t.data<double>()[i];
    case DType::BF16: return bf16_to_f32(t.data<bf16>()[i]);
    case DType::F16: return f16_to_f32(static_cast<const std::uint16_t*>(t.raw())[i]);
    case DType::I64: return double(t.data<std::int64_t>()[i]);
    case DType::I32: return double(t.data<std::int32_t>()[i]);
    case DType::U8: return double(t.data<std::uint8_t>()[i]);
  }
  return 0;
}
// A copy converted to `to` (floating dtypes and integer <-> floating).
inline Tensor convert(const Tensor& x, DType to) {
  if (x.dtype() == to) return clone(x);
  Tensor t = Tensor::empty(x.shape(), to);
  const std::int64_t n = x.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = element_as_double(x, i);
    switch (to) {
      case DType::F32: t.data<float>()[i] = float(v); break;
      case DType::F64: t.data<double>()[i] = v; break;
      case DType::BF16: t.data<bf16>()[i] = f32_to_bf16(float(v)); break;
      case DType::I64: t.data<std::int64_t>()[i] = std::int64_t(v); break;
      case DType::I32: t.data<std::int32_t>()[i] = std::int32_t(v); break;
      case DType::U8: t.data<std::uint8_t>()[i] = std::uint8_t(v); break;
      case DType::F16: fail("conversion to F16 is not supported (F16 is read-only)");
    }
  }
  return t;
}

}  // namespace flas
