// Gemma-2 inference on the CPU backend: prefill of 128 tokens and per-token decode, for the bundled
// chat model (bf16 as shipped, and f32) and for random weights with Gemma-2-2B shapes (bf16 and f32),
// 2 threads by default (OMP_NUM_THREADS), printed beside llama.cpp on the same kind of machine.
//   build/bench/bench_gemma2 [--benchmark_filter=tiny]
#include <chrono>

#include "bench_models.hpp"
#include "read_floor.hpp"
#include "flas/backends/cpu.hpp"
#include "flas/models/gemma2/model.hpp"

using namespace flas;
using Model = gemma2::Model<CpuBackend>;

namespace {

const nlohmann::json& llamacpp() {
  static const auto j = bench::anchors("llamacpp_cpu_2core.json");
  return j;
}

void prefill(benchmark::State& state, const Model& m, const std::string& anchor_key) {
  const auto ids = bench::prompt_of(128, m.config().vocab_size);
  Tensor t = Tensor::empty({1, 128}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  for (auto _ : state) {
    auto cache = m.new_cache(1, 128);
    auto h = m.forward(t, Tensor{}, cache);
    benchmark::DoNotOptimize(m.logits(Model::last_positions(h)));
  }
  state.counters["tok/s"] = benchmark::Counter(128.0 * double(state.iterations()), benchmark::Counter::kIsRate);
  const auto& a = llamacpp()["llamacpp"][anchor_key];
  state.counters["llamacpp_tok/s"] = a["prefill128_tps"].get<double>();
}

// `floor_ms` > 0 (the 2B shapes): each token is followed by a plain read of all the model's weights, the
// same-moment bandwidth floor, since this shared machine's bandwidth drifts (read_floor.hpp).
void decode(benchmark::State& state, const Model& m, const std::string& anchor_key, double floor_ms) {
  const std::int64_t context = 128, tokens = 512;
  const auto ids = bench::prompt_of(context, m.config().vocab_size);
  Tensor t = Tensor::empty({1, context}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  auto cache = m.new_cache(1, context + tokens);
  m.forward(t, Tensor{}, cache);
  Tensor next = Tensor::empty({1, 1}, DType::I64);
  next.data<std::int64_t>()[0] = 42;
  const auto buffers = bench::weight_buffers(m.weights());
  double decode_s = 0, read_s = 0;
  for (auto _ : state) {
    if (cache.free_slots() == 0) {
      state.PauseTiming();
      cache = m.new_cache(1, context + tokens);
      m.forward(t, Tensor{}, cache);
      state.ResumeTiming();
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto h = m.forward(next, Tensor{}, cache);
    benchmark::DoNotOptimize(m.logits(Model::last_positions(h)));
    decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (floor_ms > 0) read_s += bench::plain_read_seconds(buffers, std::max(1, CpuBackend::num_threads()));
  }
  const double n = double(state.iterations());
  state.counters["tok/s"] = n / decode_s;
  state.counters["decode_ms/tok"] = 1e3 * decode_s / n;
  if (floor_ms > 0) {
    state.counters["read_floor_ms"] = 1e3 * read_s / n;  // all weight bytes, plain read, same moment
    state.counters["decode/read_floor"] = decode_s / read_s;
    state.counters["GB/s"] = double(bench::total_bytes(buffers)) * n / decode_s / 1e9;
  }
  state.counters["llamacpp_tok/s"] = llamacpp()["llamacpp"][anchor_key]["decode_tps"].get<double>();
  if (floor_ms > 0) state.counters["floor_ms/tok"] = floor_ms;
}

const Model& tiny(DType dt) {
  static const Model bf = Model::load(std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat");
  static const Model f32(bf.config(), gemma2::weights_as(bf.weights(), DType::F32));
  return dt == DType::BF16 ? bf : f32;
}

// One 2B-shaped model alive at a time (10.5 GB in f32).
const Model& big(DType dt) {
  static std::unique_ptr<Model> m;
  static DType have = DType::U8;
  if (!m || have != dt) {
    m.reset();
    const auto c = bench::gemma2_2b_config();
    m = std::make_unique<Model>(c, bench::random_weights(c, dt));
    have = dt;
  }
  return *m;
}

void BM_tiny_prefill128_bf16(benchmark::State& s) { prefill(s, tiny(DType::BF16), "tiny_bf16"); }
void BM_tiny_prefill128_f32(benchmark::State& s) { prefill(s, tiny(DType::F32), "tiny_f32"); }
void BM_tiny_decode_bf16(benchmark::State& s) { decode(s, tiny(DType::BF16), "tiny_bf16", 0); }
void BM_tiny_decode_f32(benchmark::State& s) { decode(s, tiny(DType::F32), "tiny_f32", 0); }
void BM_2b_decode_bf16(benchmark::State& s) {
  decode(s, big(DType::BF16), "gemma2_2b_shapes_bf16", llamacpp()["floors_gemma2_2b_shapes"]["decode_bf16_ms_per_token"]);
}
void BM_2b_prefill128_bf16(benchmark::State& s) { prefill(s, big(DType::BF16), "gemma2_2b_shapes_bf16"); }
// The opt-in bf16_activations precision: activations rounded to bf16, oneDNN's bf16 matmul.
void BM_2b_prefill128_bf16_fast(benchmark::State& s) {
  CpuBackend::set_precision(CpuBackend::Precision::bf16_activations);
  prefill(s, big(DType::BF16), "gemma2_2b_shapes_bf16");
  CpuBackend::set_precision(CpuBackend::Precision::exact);
  s.SetLabel(CpuBackend::bf16_matmul_available() ? "bf16 matmul" : "no bf16 matmul here: exact path");
}
void BM_2b_decode_f32(benchmark::State& s) {
  decode(s, big(DType::F32), "gemma2_2b_shapes_f32", llamacpp()["floors_gemma2_2b_shapes"]["decode_f32_ms_per_token"]);
}
void BM_2b_prefill128_f32(benchmark::State& s) { prefill(s, big(DType::F32), "gemma2_2b_shapes_f32"); }

}  // namespace

BENCHMARK(BM_tiny_prefill128_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tiny_prefill128_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tiny_decode_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tiny_decode_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_2b_decode_bf16)->Unit(benchmark::kMillisecond)->Iterations(8);
BENCHMARK(BM_2b_prefill128_bf16)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_2b_prefill128_bf16_fast)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_2b_decode_f32)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_2b_prefill128_f32)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_MAIN();
