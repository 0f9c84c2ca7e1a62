#pragma once
// Batched generation for a causal LM with a KV cache: left-padded prompts, one prefill, then one
// token per row per step until every row has stopped (a stop id) or max_new_tokens is reached.
// Teacher forcing feeds given ids instead of the sampled ones, so step logits can be compared
// against references even where an argmax would flip.
#include <chrono>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include "flas/core/tensor.hpp"
#include "flas/generate/sampler.hpp"

namespace flas {

struct GenerateOptions {
  std::int64_t max_new_tokens = 64;
  SamplingOptions sampling;
  std::vector<std::int64_t> stop_ids;      // empty: the model's eos ids
  bool keep_step_logits = false;           // store [B, steps, V] logits of every step
  const std::vector<std::vector<std::int64_t>>* teacher_ids = nullptr;  // per row, fed instead of samples
  std::function<void(std::int64_t row, std::int64_t token)> on_token;   // streaming callback
};

struct GenerateResult {
  std::vector<std::vector<std::int64_t>> tokens;  // new tokens per row (a stop id included)
  Tensor step_logits;                              // F32 [B, steps, V] when kept
  double prefill_seconds = 0, decode_seconds = 0;
  std::int64_t prompt_tokens = 0, decode_steps = 0;
};

// Left-pads prompts to a rectangle: ids [B, S] (pad id), validity U8 [B, S].
inline std::pair<Tensor, Tensor> left_pad(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t pad_id) {
  FLAS_CHECK(!prompts.empty(), "generate: no prompts given");
  std::size_t S = 0;
  for (const auto& p : prompts) {
    FLAS_CHECK(!p.empty(), "generate: an empty prompt (every prompt needs at least one token, e.g. <bos>)");
    S = std::max(S, p.size());
  }
  const auto Bn = std::int64_t(prompts.size());
  Tensor ids = Tensor::empty({Bn, std::int64_t(S)}, DType::I64), valid = zeros({Bn, std::int64_t(S)}, DType::U8);
  for (std::int64_t b = 0; b < Bn; ++b) {
    const auto& p = prompts[std::size_t(b)];
    const std::size_t pad = S - p.size();
    for (std::size_t s = 0; s < S; ++s) {
      ids.data<std::int64_t>()[std::size_t(b) * S + s] = s < pad ? pad_id : p[s - pad];
      valid.data<std::uint8_t>()[std::size_t(b) * S + s] = s < pad ? 0 : 1;
    }
  }
  return {ids, valid};
}

// A copy of the last-position logits as f32 on the host, [B, V].
inline Tensor host_logits_f32(const Tensor& logits) {
  return logits.dtype() == DType::F32 ? logits : convert(logits, DType::F32);
}
// Device tensors come back through their backend's to_host (found by argument-dependent lookup).
template <class DeviceTensor>
  requires(!std::is_same_v<DeviceTensor, Tensor>)
Tensor host_logits_f32(const DeviceTensor& logits) {
  return host_logits_f32(to_host(logits));
}

// Runs a decode step (forward + logits) as it is: the default of generate()'s `run_step`. A device
// runtime may instead replay the step as a recorded graph (decode_index counts decode steps from 0).
struct RunStepNow {
  template <class Step>
  void operator()(Step&& step, std::int64_t /*decode_index*/) const {
    step();
  }
};

// `Model` provides config(), new_cache(B, capacity), forward(ids, valid, cache, tap), logits(),
// last_positions(). The tap is passed to every forward (prefill and decode).
template <class Model, class Tap, class StepRunner = RunStepNow>
GenerateResult generate(const Model& model, const std::vector<std::vector<std::int64_t>>& prompts,
                        const GenerateOptions& opt, Tap&& tap, StepRunner&& run_step = {}) {
  using clock = std::chrono::steady_clock;
  const auto& cfg = model.config();
  auto [ids, valid] = left_pad(prompts, cfg.pad_token_id);
  const std::int64_t Bn = ids.dim(0), S = ids.dim(1), V = cfg.vocab_size;
  FLAS_CHECK(opt.max_new_tokens >= 1, "generate: max_new_tokens must be at least 1, got ", opt.max_new_tokens);
  FLAS_CHECK(S + opt.max_new_tokens <= cfg.max_position_embeddings, "generate: the prompt of ", S,
             " tokens plus ", opt.max_new_tokens, " new tokens exceeds the model's context of ",
             cfg.max_position_embeddings, " tokens");
  if (opt.teacher_ids)
    FLAS_CHECK(std::int64_t(opt.teacher_ids->size()) == Bn, "generate: teacher ids for ",
               opt.teacher_ids->size(), " rows, expected ", Bn);
  const std::vector<std::int64_t>& stops = opt.stop_ids.empty() ? cfg.eos_token_ids : opt.stop_ids;
  auto cache = model.new_cache(Bn, S + opt.max_new_tokens);
  Sampler sampler(opt.sampling);

  GenerateResult r;
  r.tokens.resize(std::size_t(Bn));
  r.prompt_tokens = Bn * S;
  if (opt.keep_step_logits) r.step_logits = zeros({Bn, opt.max_new_tokens, V}, DType::F32);
  std::vector<bool> done(std::size_t(Bn), false);

  auto t0 = clock::now();
  auto logits_now = model.logits(Model::last_positions(model.forward(ids, valid, cache, tap)));
  Tensor next = Tensor::empty({Bn, 1}, DType::I64);
  for (std::int64_t step = 0; step < opt.max_new_tokens; ++step) {
    const Tensor logits = host_logits_f32(logits_now);
    bool all_done = true;
    for (std::int64_t b = 0; b < Bn; ++b) {
      const float* row = logits.data<float>() + b * V;
      if (opt.keep_step_logits) std::copy(row, row + V, r.step_logits.data<float>() + (b * opt.max_new_tokens + step) * V);
      std::int64_t tok = cfg.pad_token_id;
      if (!done[std::size_t(b)]) {
        const auto& forced = opt.teacher_ids ? (*opt.teacher_ids)[std::size_t(b)] : std::vector<std::int64_t>{};
        tok = opt.teacher_ids && step < std::int64_t(forced.size()) ? forced[std::size_t(step)] : sampler.sample(row, V);
        r.tokens[std::size_t(b)].push_back(tok);
        if (opt.on_token) opt.on_token(b, tok);
        if (std::find(stops.begin(), stops.end(), tok) != stops.end()) done[std::size_t(b)] = true;
      }
      next.data<std::int64_t>()[b] = tok;
      all_done = all_done && done[std::size_t(b)];
    }
    if (step == 0) r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (all_done || step + 1 == opt.max_new_tokens) break;
    auto td = clock::now();
    run_step([&] { logits_now = model.logits(Model::last_positions(model.forward(next, Tensor{}, cache, tap))); },
             r.decode_steps);
    r.decode_seconds += std::chrono::duration<double>(clock::now() - td).count();
    ++r.decode_steps;
  }
  return r;
}

}  // namespace flas
