#pragma once
// The argument checks of every backend's linear_backward (x [M, K], w [N, K], dy [M, N]; the optional
// gradients dx [M, K] in the activation dtype, dw F32 [N, K] and db F32 [N], accumulated into), so that
// a bad call reads the same on every backend. Generic over the backend's tensor type.
#include <cstdint>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"
#include "flas/core/shape.hpp"

namespace flas {

template <class T>
void check_linear_backward(const T& x, const Shape& w, const T& dy, const T* dx, const T* dw, const T* db,
                           std::int64_t M) {
  auto f32 = [](const T& t, const char* what) {
    FLAS_CHECK(t.dtype() == DType::F32, "linear_backward: ", what, " has dtype ", dtype_name(t.dtype()), ", expected F32");
  };
  f32(x, "x");
  f32(dy, "dy");
  const std::int64_t N = w[0], K = w[1];
  FLAS_CHECK(x.dim(-1) == K && dy.numel() == M * N, "linear_backward: x ", x.shape(), ", w ", w, ", dy ", dy.shape(),
             " do not match");
  if (dx) {
    f32(*dx, "dx");
    FLAS_CHECK(dx->numel() == M * K, "linear_backward: dx ", dx->shape(), " does not match x ", x.shape());
  }
  if (dw)
    FLAS_CHECK(dw->dtype() == DType::F32 && dw->numel() == N * K, "linear_backward: dw is ", dtype_name(dw->dtype()),
               " ", dw->shape(), ", expected F32 [", N, ", ", K, "]");
  if (db)
    FLAS_CHECK(db->dtype() == DType::F32 && db->numel() == N, "linear_backward: db is ", dtype_name(db->dtype()), " ",
               db->shape(), ", expected F32 [", N, "]");
}

}  // namespace flas
