#pragma once
// A small time-conditioned MLP velocity field, differentiable: v = tanh([h | t]·W1ᵀ + b1)·W2ᵀ + b2, with
// torch Linear layouts (W1 [H, D+1], the last input column being t; W2 [D, H]). It is the field of the
// torchdiffeq fixtures (ode_<tag>_fixtures) and a handy random field for tests, built only from the
// backend's ops (linear, add) plus tanh and its derivative here. States are [rows, ..., D] tensors in
// the backend's activation dtype; every position of row b sees the time t[b].
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "flas/core/backend.hpp"
#include "flas/core/tensor.hpp"
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/field_concepts.hpp"

namespace flas::ode {

template <Backend B>
class TimeMlpField {
 public:
  using parameter_type = Tensor;
  using T = std::conditional_t<B::activation_dtype == DType::F64, double, float>;
  static_assert(B::activation_dtype == DType::F64 || B::activation_dtype == DType::F32);

  TimeMlpField(Tensor w1, Tensor b1, Tensor w2, Tensor b2)
      : w1_(std::move(w1)), b1_(std::move(b1)), w2_(std::move(w2)), b2_(std::move(b2)) {
    H_ = w1_.dim(0), Din_ = w1_.dim(1), D_ = w2_.dim(0);
    FLAS_CHECK(w1_.rank() == 2 && w2_.rank() == 2 && w2_.dim(1) == H_ && Din_ == D_ + 1 && b1_.numel() == H_ &&
                   b2_.numel() == D_,
               "TimeMlpField: shapes l1.weight ", w1_.shape(), ", l1.bias ", b1_.shape(), ", l2.weight ", w2_.shape(),
               ", l2.bias ", b2_.shape(), " do not fit v = tanh([h | t]·W1ᵀ + b1)·W2ᵀ + b2");
    for (Tensor* p : {&w1_, &b1_, &w2_, &b2_})
      if (p->dtype() != B::activation_dtype) *p = convert(*p, B::activation_dtype);
    gw1_ = zeros(w1_.shape(), B::activation_dtype), gb1_ = zeros(b1_.shape(), B::activation_dtype);
    gw2_ = zeros(w2_.shape(), B::activation_dtype), gb2_ = zeros(b2_.shape(), B::activation_dtype);
    w1t_ = transpose(w1_), w2t_ = transpose(w2_);
  }

  void operator()(const Tensor& h, RowTimes t, const EvalContext&, Tensor& v) {
    forward(h, t);
    B::linear(z_, w2_, &b2_, v);
  }

  void vjp(const Tensor& h, RowTimes t, const EvalContext&, const Tensor& cot_v, Tensor& cot_h, std::span<double> cot_t) {
    forward(h, t);  // stateless: recompute the activations
    const std::int64_t M = M_;
    const Tensor cv = cot_v.view({M, D_});
    // l2: ∂b2 = Σ_m ∂v, ∂W2 = ∂vᵀ·z, ∂z = ∂v·W2
    add_column_sums(gb2_, cv);
    Tensor tmp2 = Tensor::empty({D_, H_}, B::activation_dtype);
    B::linear(transpose(cv), transpose(z_), nullptr, tmp2);
    B::add(gw2_, tmp2);
    Tensor cz = Tensor::empty({M, H_}, B::activation_dtype);
    B::linear(cv, w2t_, nullptr, cz);
    // tanh' = 1 − z²
    T* c = cz.data<T>();
    const T* z = z_.data<T>();
    for (std::int64_t i = 0; i < M * H_; ++i) c[i] *= T(1) - z[i] * z[i];
    // l1: ∂b1 = Σ_m ∂pre, ∂W1 = ∂preᵀ·x, ∂x = ∂pre·W1
    add_column_sums(gb1_, cz);
    Tensor tmp1 = Tensor::empty({H_, Din_}, B::activation_dtype);
    B::linear(transpose(cz), transpose(x_), nullptr, tmp1);
    B::add(gw1_, tmp1);
    Tensor cx = Tensor::empty({M, Din_}, B::activation_dtype);
    B::linear(cz, w1t_, nullptr, cx);
    T* ch = cot_h.data<T>();
    const T* cxp = cx.data<T>();
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t d = 0; d < D_; ++d) ch[m * D_ + d] = cxp[m * Din_ + d];
    if (!cot_t.empty()) {
      const std::int64_t rows = std::int64_t(cot_t.size()), per_row = M / rows;
      for (std::int64_t b = 0; b < rows; ++b) {
        double s = 0;
        for (std::int64_t m = b * per_row; m < (b + 1) * per_row; ++m) s += double(cxp[m * Din_ + D_]);
        cot_t[std::size_t(b)] = s;
      }
    }
  }

  template <class Visit>
  void for_each_parameter(Visit&& visit) {
    visit(std::string_view("l1.weight"), w1_, gw1_);
    visit(std::string_view("l1.bias"), b1_, gb1_);
    visit(std::string_view("l2.weight"), w2_, gw2_);
    visit(std::string_view("l2.bias"), b2_, gb2_);
    w1t_ = transpose(w1_), w2t_ = transpose(w2_);  // the visitor may have changed the weights
  }

 private:
  // x = [h | t_row], pre = x·W1ᵀ + b1, z = tanh(pre)
  void forward(const Tensor& h, RowTimes t) {
    FLAS_CHECK(h.dtype() == B::activation_dtype && h.dim(-1) == D_, "TimeMlpField: state ", h.shape(), " ",
               dtype_name(h.dtype()), ", expected [..., ", D_, "] ", dtype_name(B::activation_dtype));
    M_ = h.numel() / D_;
    const std::int64_t rows = h.rank() <= 1 ? 1 : h.dim(0), per_row = M_ / rows;
    if (x_.numel() != M_ * Din_) x_ = Tensor::empty({M_, Din_}, B::activation_dtype);
    if (z_.numel() != M_ * H_) z_ = Tensor::empty({M_, H_}, B::activation_dtype);
    const T* hp = h.data<T>();
    T* xp = x_.data<T>();
    for (std::int64_t m = 0; m < M_; ++m) {
      for (std::int64_t d = 0; d < D_; ++d) xp[m * Din_ + d] = hp[m * D_ + d];
      xp[m * Din_ + D_] = T(t[std::size_t(m / per_row)]);
    }
    B::linear(x_, w1_, &b1_, z_);
    T* zp = z_.data<T>();
    for (std::int64_t i = 0; i < M_ * H_; ++i) zp[i] = std::tanh(zp[i]);
  }

  static Tensor transpose(const Tensor& a) {
    const std::int64_t r = a.dim(0), c = a.numel() / r;
    Tensor out = Tensor::empty({c, r}, a.dtype());
    const T* ap = a.data<T>();
    T* op = out.data<T>();
    for (std::int64_t i = 0; i < r; ++i)
      for (std::int64_t j = 0; j < c; ++j) op[j * r + i] = ap[i * c + j];
    return out;
  }
  static void add_column_sums(Tensor& g, const Tensor& a) {
    const std::int64_t r = a.dim(0), c = a.dim(1);
    const T* ap = a.data<T>();
    T* gp = g.data<T>();
    for (std::int64_t j = 0; j < c; ++j) {
      double s = 0;
      for (std::int64_t i = 0; i < r; ++i) s += double(ap[i * c + j]);
      gp[j] += T(s);
    }
  }

  Tensor w1_, b1_, w2_, b2_, gw1_, gb1_, gw2_, gb2_, w1t_, w2t_;
  Tensor x_, z_;
  std::int64_t H_ = 0, Din_ = 0, D_ = 0, M_ = 0;
};

}  // namespace flas::ode
