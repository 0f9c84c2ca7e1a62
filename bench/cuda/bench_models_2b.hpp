#pragma once
// Gemma-2-2B-shaped models for the CUDA benchmark: the real config (26 layers, hidden 2304, 8 heads /
// 4 KV heads of 256, MLP 9216, vocab 256000) marked bf16, for the random bf16 weights and the 1-block
// flow of ../random_model.hpp; and the bytes a decode step reads.
#include "flas/models/gemma2/model.hpp"
#include "../gemma2_2b_config.hpp"
#include "../random_model.hpp"

namespace flas::bench_cuda {

inline gemma2::Config gemma2_2b_config() {
  gemma2::Config c = bench::gemma2_2b_config();
  c.dtype = DType::BF16;  // the weights below are bf16, like the released checkpoints
  return c;
}

// Bytes a decode step must read at least: every weight once (the tied embedding as the LM head).
inline double weight_bytes(const gemma2::Weights& w) {
  double b = 0;
  gemma2::for_each_weight(w, [&](const Tensor& t) { b += double(t.bytes()); });
  return b;
}

}  // namespace flas::bench_cuda
