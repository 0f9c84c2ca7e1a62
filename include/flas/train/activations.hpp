#pragma once
// Fresh activation tensors of a backend (uninitialised, copied or zeroed), as the training code makes
// them for tapes and cotangents.
#include "flas/core/backend.hpp"

namespace flas::train {

template <Backend B>
tensor_t<B> activation(const Shape& s) {
  return tensor_t<B>::empty(s, B::activation_dtype);
}

template <Backend B>
tensor_t<B> copy_of(const tensor_t<B>& x) {
  auto out = activation<B>(x.shape());
  B::copy(out, x);
  return out;
}

template <Backend B>
tensor_t<B> zero_activation(const Shape& s) {
  auto out = activation<B>(s);
  B::fill(out, 0.0f);
  return out;
}

}  // namespace flas::train
