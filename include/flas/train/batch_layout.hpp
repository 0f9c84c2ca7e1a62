#pragma once
// Where the tokens of a training batch sit. Training batches are right padded and run as one prefill:
// positions are arange(S) in every row (HF's default position ids when none are given), the key mask is
// the attention mask, and every "cache" is exactly the batch (past 0, capacity S).
#include <cstdint>

#include "flas/core/error.hpp"
#include "flas/core/tensor.hpp"
#include "flas/models/gemma2/attention.hpp"

namespace flas::train {

struct BatchLayout {
  Tensor positions;  // I64 [B, S]: arange per row
  Tensor key_valid;  // U8 [B, S]: 1 = real token
  std::int64_t batch = 0, seq = 0;

  // attention_mask: U8 or I64 [B, S], or an empty tensor (every token real).
  static BatchLayout of(std::int64_t batch, std::int64_t seq, const Tensor& attention_mask) {
    BatchLayout l;
    l.batch = batch, l.seq = seq;
    l.positions = Tensor::empty({batch, seq}, DType::I64);
    for (std::int64_t i = 0; i < batch * seq; ++i) l.positions.data<std::int64_t>()[i] = i % seq;
    if (attention_mask.defined()) {
      FLAS_CHECK(attention_mask.rank() == 2 && attention_mask.dim(0) == batch && attention_mask.dim(1) == seq,
                 "training batch: attention mask ", attention_mask.shape(), " does not match the ids [", batch, ", ",
                 seq, "]");
      l.key_valid = attention_mask.dtype() == DType::U8 ? attention_mask : convert(attention_mask, DType::U8);
    } else {
      l.key_valid = Tensor::empty({batch, seq}, DType::U8);
      std::fill_n(l.key_valid.data<std::uint8_t>(), l.key_valid.numel(), std::uint8_t(1));
    }
    return l;
  }

  const std::uint8_t* valid() const { return key_valid.data<std::uint8_t>(); }
  bool real(std::int64_t b, std::int64_t s) const { return valid()[b * seq + s] != 0; }
  gemma2::TokenLayout tokens() const { return {positions, 0, seq, valid()}; }
};

}  // namespace flas::train
