#pragma once
// What the CUDA tests share: the backend conformance toolkit (tests/backend/conformance.hpp: seeded
// random tensors, NaN-poisoned outputs, the f64 oracle, tolerances), host <-> device helpers, scoped
// settings, and generate_on_device — flas::generate with, optionally, every decode step after the first
// run as a CUDA graph.
//
// Tolerances (max|Δ| / max|ref| against the f64 oracle), beyond conformance.hpp's:
//   kBf16Inputs = 1e-2  linear with Precision::bf16_inputs: x rounded to bf16 (2^-9 relative per
//                       product, partly cancelling over K terms) — the same bound the CPU's bf16 mode has.
#include <algorithm>
#include <vector>

#include "conformance.hpp"
#include "flas/backends/cuda.hpp"
#include "flas/backends/cuda_graph.hpp"
#include "flas/generate/generate.hpp"

namespace flas::cuda_test {

using namespace flas::conformance;

inline constexpr double kBf16Inputs = 1e-2;

inline CudaTensor dev(const Tensor& t) { return CudaBackend::upload(t); }
inline Tensor host(const CudaTensor& t) { return CudaBackend::download(t); }
inline CudaTensor poisoned_dev(const Shape& s) { return dev(poisoned(s)); }

class PrecisionScope {
 public:
  explicit PrecisionScope(CudaBackend::Precision p) : before_(CudaBackend::precision()) { CudaBackend::set_precision(p); }
  ~PrecisionScope() { CudaBackend::set_precision(before_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  CudaBackend::Precision before_;
};

class AttentionKernelScope {
 public:
  explicit AttentionKernelScope(CudaBackend::AttentionKernel k) : before_(CudaBackend::attention_kernel()) {
    CudaBackend::set_attention_kernel(k);
  }
  ~AttentionKernelScope() { CudaBackend::set_attention_kernel(before_); }
  AttentionKernelScope(const AttentionKernelScope&) = delete;
  AttentionKernelScope& operator=(const AttentionKernelScope&) = delete;

 private:
  CudaBackend::AttentionKernel before_;
};

inline const char* kernel_name(CudaBackend::AttentionKernel k) {
  switch (k) {
    case CudaBackend::AttentionKernel::automatic: return "automatic";
    case CudaBackend::AttentionKernel::rows: return "rows";
    case CudaBackend::AttentionKernel::tiled: return "tiled";
    case CudaBackend::AttentionKernel::split_kv: return "split_kv";
  }
  return "?";
}

// flas::generate on a device model. With `graph`, each decode step after the first (forward + logits) is
// recorded and launched as one CUDA graph; the prefill and the first decode step run eagerly (they
// upload the weights).
template <class Model, class Tap>
GenerateResult generate_on_device(const Model& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                  const GenerateOptions& opt, Tap&& tap, cuda::StepGraph* graph = nullptr) {
  return generate(model, prompts, opt, std::forward<Tap>(tap), [graph](auto&& step, std::int64_t decode_index) {
    if (graph && decode_index > 0) graph->run(step);
    else step();
  });
}

}  // namespace flas::cuda_test
