#pragma once
// A tensor shape: up to 8 dimensions stored inline (no heap traffic on the decode hot path).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>

#include "flas/core/error.hpp"

namespace flas {

class Shape {
 public:
  static constexpr int max_rank = 8;
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.size()); }
  explicit Shape(std::span<const std::int64_t> dims) { assign(dims.data(), dims.size()); }

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const { return dims_[std::size_t(i < 0 ? i + rank_ : i)]; }
  std::int64_t& operator[](int i) { return dims_[std::size_t(i < 0 ? i + rank_ : i)]; }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[std::size_t(i)];
    return n;
  }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  // Same shape with the first dimension replaced.
  Shape with_first(std::int64_t n) const {
    Shape s = *this;
    s.dims_[0] = n;
    return s;
  }
  // Shape without the first dimension.
  Shape tail() const {
    Shape s;
    s.assign(dims_.data() + 1, std::size_t(rank_ - 1));
    return s;
  }
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[std::size_t(i)] != b.dims_[std::size_t(i)]) return false;
    return true;
  }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[std::size_t(i)]);
    return s + "]";
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

 private:
  void assign(const std::int64_t* d, std::size_t n) {
    FLAS_CHECK(n <= std::size_t(max_rank), "shape of rank ", n, " exceeds the maximum rank ", max_rank);
    rank_ = int(n);
    for (std::size_t i = 0; i < n; ++i) {
      FLAS_CHECK(d[i] >= 0, "negative dimension ", d[i], " in a shape");
      dims_[i] = d[i];
    }
  }
  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace flas
