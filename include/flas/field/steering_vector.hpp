#pragma once
// The classic baseline: a constant steering vector per concept, v(h, t, c) = d_c, through the same
// interface as the FLAS flow, so that h ← h + T·d_c at the steering layer (N Euler steps of dt·d_c).
// llama.cpp's control vectors are this field at one layer.
#include <span>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/attention.hpp"

namespace flas::field {

template <Backend B>
class SteeringVectorField {
 public:
  struct Conditioning {
    std::vector<std::int64_t> direction_of_row;  // which direction each batch row uses
  };
  struct SlotCache {};

  // directions [C, H] (F32 or BF16), one per concept.
  explicit SteeringVectorField(Tensor directions) : d_(std::move(directions)) {
    FLAS_CHECK(d_.rank() == 2, "steering vectors: expected [concepts, hidden], got ", d_.shape());
  }

  const Tensor& directions() const { return d_; }
  DType parameter_dtype() const { return d_.dtype(); }

  Conditioning condition(std::vector<std::int64_t> direction_of_row) const {
    for (auto i : direction_of_row)
      FLAS_CHECK(0 <= i && i < d_.dim(0), "steering vectors: direction ", i, " is outside 0..", d_.dim(0) - 1);
    return {std::move(direction_of_row)};
  }
  SlotCache new_slot_cache(std::int64_t, std::int64_t) const { return {}; }

  tensor_t<B> velocity(const tensor_t<B>& h, std::span<const float>, const Conditioning& c, const gemma2::TokenLayout&,
                       SlotCache&) const {
    const std::int64_t Bn = h.dim(0), S = h.dim(1), H = h.dim(2);
    FLAS_CHECK(H == d_.dim(1), "steering vectors: hidden size ", d_.dim(1), " but the stream has ", H);
    FLAS_CHECK(std::int64_t(c.direction_of_row.size()) == Bn, "steering vectors: ", c.direction_of_row.size(),
               " rows conditioned, the batch has ", Bn);
    auto v = tensor_t<B>::empty(h.shape(), B::activation_dtype);
    B::fill(v, 0.0f);
    for (std::int64_t b = 0; b < Bn; ++b) {
      const Tensor dir = d_[c.direction_of_row[std::size_t(b)]];
      for (std::int64_t s = 0; s < S; ++s) {
        auto row = v[b][s];
        B::add_gated(row, dir, ones(H));  // v = d (gate·1 reads any weight dtype)
      }
    }
    return v;
  }

 private:
  const tensor_t<B>& ones(std::int64_t H) const {
    if (ones_.numel() != H) {
      ones_ = tensor_t<B>::empty({H}, B::activation_dtype);
      B::fill(ones_, 1.0f);
    }
    return ones_;
  }
  Tensor d_;
  mutable tensor_t<B> ones_;
};

}  // namespace flas::field
