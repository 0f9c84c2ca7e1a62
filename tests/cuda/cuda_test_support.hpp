#pragma once
// What the CUDA tests share: the backend conformance toolkit (tests/backend/conformance.hpp: seeded
// random tensors, NaN-poisoned outputs, the f64 oracle, tolerances), host <-> device helpers, scoped
// settings, and generate_on_device — flas::generate's loop with the logits read back from the device
// (generate.hpp reads them as host tensors) and, optionally, every decode step run as a CUDA graph.
//
// Tolerances (max|Δ| / max|ref| against the f64 oracle), beyond conformance.hpp's:
//   kBf16Inputs = 1e-2  linear with Precision::bf16_inputs: x rounded to bf16 (2^-9 relative per
//                       product, partly cancelling over K terms) — the same bound the CPU's bf16 mode has.
#include <algorithm>
#include <chrono>
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

// flas::generate on a device model: same padding, teacher forcing and step logits, with the logits
// downloaded each step. With `graph`, each decode step (forward + logits) is recorded and launched as
// one CUDA graph; the prefill and the first decode step run eagerly (they upload the weights).
template <class Model, class Tap>
GenerateResult generate_on_device(const Model& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                  const GenerateOptions& opt, Tap&& tap, cuda::StepGraph* graph = nullptr) {
  using clock = std::chrono::steady_clock;
  const auto& cfg = model.config();
  auto [ids, valid] = left_pad(prompts, cfg.pad_token_id);
  const std::int64_t Bn = ids.dim(0), S = ids.dim(1), V = cfg.vocab_size;
  const std::vector<std::int64_t>& stops = opt.stop_ids.empty() ? cfg.eos_token_ids : opt.stop_ids;
  auto cache = model.new_cache(Bn, S + opt.max_new_tokens);
  Sampler sampler(opt.sampling);
  GenerateResult r;
  r.tokens.resize(std::size_t(Bn));
  r.prompt_tokens = Bn * S;
  if (opt.keep_step_logits) r.step_logits = zeros({Bn, opt.max_new_tokens, V}, DType::F32);
  std::vector<bool> done(std::size_t(Bn), false);

  auto t0 = clock::now();
  auto logits_dev = model.logits(Model::last_positions(model.forward(ids, valid, cache, tap)));
  Tensor next = Tensor::empty({Bn, 1}, DType::I64);
  for (std::int64_t step = 0; step < opt.max_new_tokens; ++step) {
    const Tensor logits = to_host(logits_dev);
    bool all_done = true;
    for (std::int64_t b = 0; b < Bn; ++b) {
      const float* row = logits.data<float>() + b * V;
      if (opt.keep_step_logits)
        std::copy(row, row + V, r.step_logits.data<float>() + (b * opt.max_new_tokens + step) * V);
      std::int64_t tok = cfg.pad_token_id;
      if (!done[std::size_t(b)]) {
        const bool forced = opt.teacher_ids && step < std::int64_t((*opt.teacher_ids)[std::size_t(b)].size());
        tok = forced ? (*opt.teacher_ids)[std::size_t(b)][std::size_t(step)] : sampler.sample(row, V);
        r.tokens[std::size_t(b)].push_back(tok);
        if (std::find(stops.begin(), stops.end(), tok) != stops.end()) done[std::size_t(b)] = true;
      }
      next.data<std::int64_t>()[b] = tok;
      all_done = all_done && done[std::size_t(b)];
    }
    if (step == 0) r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (all_done || step + 1 == opt.max_new_tokens) break;
    auto td = clock::now();
    auto decode_step = [&] { logits_dev = model.logits(Model::last_positions(model.forward(next, Tensor{}, cache, tap))); };
    if (graph && step > 0) graph->run(decode_step);
    else decode_step();
    r.decode_seconds += std::chrono::duration<double>(clock::now() - td).count();
    ++r.decode_steps;
  }
  return r;
}

}  // namespace flas::cuda_test
