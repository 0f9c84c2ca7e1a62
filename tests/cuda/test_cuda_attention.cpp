// CudaBackend::attention against the f64 oracle over the CPU suite's option space (three mask rules ×
// causal or not × sliding window × soft-cap × key padding: none, scattered, left, a batch row all
// padding; prefill, decode, chunked and cross-attention shapes; GQA groups 1, 2, 4; kv_len below
// capacity), run through every kernel that accepts the shape: automatic, rows, tiled, split_kv.
// Tolerances as the CPU suite: kReduction on rows with a visible key, kMaskedRowNeg1e4 on rows whose
// every key is masked under the −1e4 additive rule (f32 rounding of s − 1e4 decides them).
#include <vector>

#include "attention_sweep.hpp"
#include "cuda_test_support.hpp"

namespace flas::cuda_test {
namespace {

using Kernel = CudaBackend::AttentionKernel;

constexpr AttnShape kShapes[] = {
    {2, 70, 70, 70, 4, 4, 24},    // prefill, group 1, several query and key tiles
    {1, 37, 37, 40, 4, 2, 64},    // prefill, group 2, kv_len < capacity
    {2, 1, 75, 96, 8, 2, 32},     // decode, group 4
    {1, 5, 133, 140, 2, 1, 16},   // chunked prefill after a cache, group 2 (10 rows: not split_kv)
    {1, 20, 20, 20, 2, 1, 256},   // Gemma-2 head size
    {3, 1, 300, 300, 8, 4, 256},  // Gemma-2-2B decode: several key splits
    {1, 4, 200, 210, 2, 1, 48},   // a 4-token chunk: split_kv with 8 rows
};

bool kernel_accepts(Kernel k, const AttnShape& s) {
  switch (k) {
    case Kernel::tiled: return s.hd <= 256;
    case Kernel::split_kv: return s.hd <= 256 && s.Sq * (s.nH / s.nKV) <= 8;
    default: return true;
  }
}

void check_attention(const AttnShape& s, const nn::AttentionParams& p) {
  const Tensor q = random_tensor({s.B, s.Sq, s.nH, s.hd}, DType::F32, -2.0f, 2.0f);
  const Tensor k = random_tensor({s.B, s.cap, s.nKV, s.hd}, DType::F32, -2.0f, 2.0f);
  const Tensor v = random_tensor({s.B, s.cap, s.nKV, s.hd});
  Tensor ref = Tensor::empty(q.shape(), DType::F64);
  Ref::attention(to_f64(q), to_f64(k), to_f64(v), ref, p);
  const CudaTensor qd = dev(q), kd = dev(k), vd = dev(v);
  for (Kernel kernel : {Kernel::automatic, Kernel::rows, Kernel::tiled, Kernel::split_kv}) {
    if (!kernel_accepts(kernel, s)) continue;
    CAPTURE(kernel_name(kernel));
    AttentionKernelScope scope(kernel);
    CudaTensor out = poisoned_dev(q.shape());
    CudaBackend::attention(qd, kd, vd, out, p);
    compare_attention_rows(s, p, ref, host(out));
  }
}

TEST_CASE("cuda attention matches the f64 reference for every mask option and kernel") {
  sweep_attention_options(kShapes,
                          [](const AttnShape& s, const nn::AttentionParams& p) { check_attention(s, p); });
}

TEST_CASE("cuda cross-attention: more queries than keys, not causal") {
  sweep_cross_attention_options(
      [](const AttnShape& s, const nn::AttentionParams& p) { check_attention(s, p); });
}

TEST_CASE("cuda attention: an all-padding row stays finite under hf_min (uniform weights)") {
  const AttnShape s{2, 9, 9, 9, 2, 1, 16};
  std::vector<std::uint8_t> valid(std::size_t(s.B * s.cap), 1);
  for (std::int64_t j = 0; j < s.cap; ++j) valid[std::size_t(j)] = 0;
  nn::AttentionParams p;
  p.scale = 0.25f;
  p.softcap = 50.0f;
  p.key_valid = valid.data();
  check_attention(s, p);
}

TEST_CASE("cuda attention may write over q, and re-reads changed key_valid bytes") {
  const Tensor q = random_tensor({1, 6, 2, 32});
  const Tensor k = random_tensor({1, 6, 2, 32}), v = random_tensor({1, 6, 2, 32});
  nn::AttentionParams p;
  p.scale = 0.2f;
  Tensor ref = Tensor::empty(q.shape(), DType::F64);
  Ref::attention(to_f64(q), to_f64(k), to_f64(v), ref, p);
  CudaTensor qd = dev(q);
  CudaBackend::attention(qd, dev(k), dev(v), qd, p);
  FLAS_CHECK_CLOSE(host(qd), ref, kReduction);

  // The same host buffer with other bytes: the cached device copy must not be reused.
  std::vector<std::uint8_t> valid(6, 1);
  p.key_valid = valid.data();
  for (int round = 0; round < 2; ++round) {
    valid[3] = std::uint8_t(round);
    Tensor r = Tensor::empty(q.shape(), DType::F64);
    Ref::attention(to_f64(q), to_f64(k), to_f64(v), r, p);
    CudaTensor out = poisoned_dev(q.shape());
    CudaBackend::attention(dev(q), dev(k), dev(v), out, p);
    CAPTURE(round);
    FLAS_CHECK_CLOSE(host(out), r, kReduction);
  }
}

TEST_CASE("cuda attention rejects shapes that do not fit") {
  const CudaTensor q = dev(random_tensor({1, 4, 3, 8})), k = dev(random_tensor({1, 4, 2, 8}));
  CudaTensor out = poisoned_dev(q.shape());
  CHECK_THROWS_AS(CudaBackend::attention(q, k, k, out, {}), Error);
  const CudaTensor k_short = dev(random_tensor({1, 3, 3, 8}));
  CHECK_THROWS_AS(CudaBackend::attention(q, k_short, k_short, out, {}), Error);
}

}  // namespace
}  // namespace flas::cuda_test
