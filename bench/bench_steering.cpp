// Steered vs unsteered Gemma-2 on the CPU backend: per-token decode and 128-token prefill with a
// 1-block FLAS flow at N = 3 Euler steps (the reference's configuration), for the bundled chat model
// (with its shipped flow) and for random weights with Gemma-2-2B shapes (flow at layer 20, initialised
// from that layer as the reference does, stored in the base model's dtype). The steered/unsteered
// ratio is the figure of merit (target <= 1.15 at 2B shapes); each steered benchmark prints it
// against the unsteered time measured in the same process.
//   OMP_NUM_THREADS=2 build/bench/bench_steering [--benchmark_filter=tiny]
#include <chrono>
#include <map>
#include <optional>

#include "bench_models.hpp"
#include "flas/backends/cpu.hpp"
#include "flas/condition/concept_encoder.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/models/gemma2/flow_steering.hpp"

using namespace flas;
using Model = gemma2::Model<CpuBackend>;
using Flow = field::FlasFlow<CpuBackend>;
using Steering = gemma2::FlowSteering<CpuBackend, Flow>;

namespace {

constexpr int kEulerSteps = 3;
constexpr float kFlowTime = 1.0f;

struct Setup {
  std::unique_ptr<Model> model;
  std::optional<Flow> flow;
  int layer = 0;
  Tensor concept_ids, concept_mask;
};

Tensor ids_tensor(std::int64_t n, std::int64_t vocab) {
  const auto ids = bench::prompt_of(n, vocab);
  Tensor t = Tensor::empty({1, n}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  return t;
}

// A 12-token concept of the model's own vocabulary.
void make_concept(Setup& s) {
  s.concept_ids = ids_tensor(12, s.model->config().vocab_size);
  s.concept_mask = Model::ones_u8(1, 12);
}

Setup& tiny() {
  static Setup s = [] {
    Setup t;
    const std::string dir = std::string(FLAS_PROJECT_MODELS);
    t.model = std::make_unique<Model>(Model::load(dir + "/tiny-gemma2-chat"));
    const auto flow_file = dir + "/tiny-gemma2-chat-flow/flow.safetensors";
    t.layer = field::read_flow_meta(field::flow_meta_path(flow_file)).layer;
    t.flow.emplace(t.model->config(), t.model->inv_freq(), field::load_flow_weights(flow_file, t.model->config()));
    make_concept(t);
    return t;
  }();
  return s;
}

Setup& big(DType flow_dtype) {
  static Setup s = [] {
    Setup b;
    const auto c = bench::gemma2_2b_config();
    b.model = std::make_unique<Model>(c, bench::random_weights(c, DType::BF16));
    b.layer = 20;
    make_concept(b);
    return b;
  }();
  static DType have = DType::U8;
  if (have != flow_dtype) {
    s.flow.reset();
    s.flow.emplace(s.model->config(), s.model->inv_freq(),
                   bench::one_block_flow(s.model->config(), s.model->weights(), s.layer, flow_dtype));
    have = flow_dtype;
  }
  return s;
}

Steering steering_for(Setup& s) {
  const auto concepts = condition::encode_concepts(*s.model, s.concept_ids, s.concept_mask, 2);
  return Steering(*s.flow, s.flow->condition(concepts), {s.layer, kEulerSteps, {kFlowTime}, {}, 1.0f});
}

// Times the flow's share of a forward pass.
struct TimedTap {
  Steering& inner;
  double seconds = 0;
  bool wants(int layer) const { return inner.wants(layer); }
  void operator()(gemma2::TapSite<CpuBackend>& site) {
    const auto t0 = std::chrono::steady_clock::now();
    inner(site);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Unsteered and steered runs alternate inside every iteration, so the ratio compares the two under
// the same memory-bandwidth conditions (this shared machine's bandwidth drifts by ±10% over minutes).
struct PairTimes {
  double unsteered = 0, steered = 0, flow = 0;
  void report(benchmark::State& state, double tokens_per_iter) const {
    const double n = double(state.iterations());
    state.counters["unsteered_ms"] = 1e3 * unsteered / n;
    state.counters["steered_ms"] = 1e3 * steered / n;
    state.counters["flow_ms"] = 1e3 * flow / n;
    state.counters["steered/unsteered"] = steered / unsteered;
    state.counters["steered_tok/s"] = tokens_per_iter * n / steered;
  }
};

// 128-token prefill (the flow runs at every position) and the last position's logits.
void prefill(benchmark::State& state, Setup& s) {
  const Tensor ids = ids_tensor(128, s.model->config().vocab_size);
  PairTimes pt;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    {
      auto cache = s.model->new_cache(1, 128);
      auto h = s.model->forward(ids, Tensor{}, cache);
      benchmark::DoNotOptimize(s.model->logits(Model::last_positions(h)));
    }
    pt.unsteered += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    {
      auto steering = steering_for(s);  // concept encoding included: it is part of a steered request
      TimedTap timed{steering};
      auto cache = s.model->new_cache(1, 128);
      auto h = s.model->forward(ids, Tensor{}, cache, timed);
      benchmark::DoNotOptimize(s.model->logits(Model::last_positions(h)));
      pt.flow += timed.seconds;
    }
    pt.steered += seconds_since(t0);
  }
  pt.report(state, 128);
}

// One token at a time after a 128-token prefill; the flow's self-attention caches grow with the base
// model's KV cache.
void decode(benchmark::State& state, Setup& s) {
  const std::int64_t context = 128, capacity = 128 + 256;
  const Tensor ids = ids_tensor(context, s.model->config().vocab_size);
  auto base_cache = s.model->new_cache(1, capacity), steered_cache = s.model->new_cache(1, capacity);
  std::optional<Steering> steering;
  auto restart = [&] {
    base_cache = s.model->new_cache(1, capacity);
    steered_cache = s.model->new_cache(1, capacity);
    steering.emplace(steering_for(s));
    s.model->forward(ids, Tensor{}, base_cache);
    s.model->forward(ids, Tensor{}, steered_cache, *steering);
  };
  restart();
  Tensor next = Tensor::empty({1, 1}, DType::I64);
  next.data<std::int64_t>()[0] = 42;
  PairTimes pt;
  for (auto _ : state) {
    if (base_cache.free_slots() == 0) {
      state.PauseTiming();
      restart();
      state.ResumeTiming();
    }
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(s.model->logits(s.model->forward(next, Tensor{}, base_cache)));
    pt.unsteered += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    TimedTap timed{*steering};
    benchmark::DoNotOptimize(s.model->logits(s.model->forward(next, Tensor{}, steered_cache, timed)));
    pt.flow += timed.seconds;
    pt.steered += seconds_since(t0);
  }
  pt.report(state, 1);
}

void BM_tiny_decode(benchmark::State& s) { decode(s, tiny()); }
void BM_tiny_prefill128(benchmark::State& s) { prefill(s, tiny()); }
void BM_2b_decode_bf16flow(benchmark::State& s) { decode(s, big(DType::BF16)); }
void BM_2b_decode_f32flow(benchmark::State& s) { decode(s, big(DType::F32)); }
void BM_2b_prefill128_bf16flow(benchmark::State& s) { prefill(s, big(DType::BF16)); }

}  // namespace

BENCHMARK(BM_tiny_decode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tiny_prefill128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_2b_decode_bf16flow)->Unit(benchmark::kMillisecond)->Iterations(24);
BENCHMARK(BM_2b_decode_f32flow)->Unit(benchmark::kMillisecond)->Iterations(12);
BENCHMARK(BM_2b_prefill128_bf16flow)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_MAIN();
