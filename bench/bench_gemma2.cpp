// Gemma-2 inference on the CPU backend: prefill of 128 tokens and per-token decode, for the bundled
// chat model (bf16 as shipped, and f32) and for random weights with Gemma-2-2B shapes (bf16 and f32),
// 2 threads by default (OMP_NUM_THREADS), against floors measured in the same run: decode against a
// plain read of all the weights after every token (memory bandwidth drifts), prefill against its FLOPs
// at the f32 FMA peak (exact path) or the bf16 dot-product peak (bf16-activations mode). llama.cpp on
// the same models, side by side: bench/peers/llamacpp_bench.sh.
//   build/bench/bench_gemma2 [--benchmark_filter=tiny]
#include <chrono>

#include "bench_models.hpp"
#include "bench_main.hpp"
#include "read_floor.hpp"
#include "flas/backends/cpu.hpp"
#include "flas/models/gemma2/model.hpp"

using namespace flas;
using Model = gemma2::Model<CpuBackend>;

namespace {

const bench::ComputePeaks& peaks() { return bench::compute_peaks(); }

// FLOPs of a prefill of S tokens: every projection for every token, causal attention (QK and AV over
// the visible keys), and the LM head for the last position only (what prefill computes).
double prefill_flops(const gemma2::Config& c, std::int64_t S) {
  const double H = double(c.hidden_size), I = double(c.intermediate_size), hd = double(c.head_dim);
  const double qd = double(c.num_attention_heads) * hd, kvd = double(c.num_key_value_heads) * hd;
  const double per_layer_params = qd * H + 2 * kvd * H + H * qd + 3 * I * H;
  const double attention = 2.0 * 2.0 * qd * double(S) * double(S + 1) / 2.0;
  return double(c.num_hidden_layers) * (2.0 * double(S) * per_layer_params + attention) +
         2.0 * double(c.vocab_size) * H;
}

// `peak_gflops`: the rate the matmuls of this mode can reach at best (its floor = FLOPs / peak).
void prefill(benchmark::State& state, const Model& m, double peak_gflops) {
  const auto ids = bench::prompt_of(128, m.config().vocab_size);
  Tensor t = Tensor::empty({1, 128}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto cache = m.new_cache(1, 128);
    auto h = m.forward(t, Tensor{}, cache);
    benchmark::DoNotOptimize(m.logits(Model::last_positions(h)));
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double per_prefill = seconds / double(state.iterations());
  state.counters["tok/s"] = 128.0 / per_prefill;
  if (peak_gflops > 0) {
    const double floor_s = prefill_flops(m.config(), 128) / (peak_gflops * 1e9);
    state.counters["floor_ms"] = 1e3 * floor_s;
    state.counters["of_peak"] = floor_s / per_prefill;  // the fraction of the arithmetic peak reached
  }
}

// Decode at context depth D = state.range(0), as llama-bench's "tg32 @ dD": windows of 32 tokens after
// a prefill of D tokens (re-done, untimed, when a window is full). `read_floor` (the 2B shapes): each
// token is followed by a plain read of all the model's weights, the same-moment bandwidth floor, since
// this shared machine's bandwidth drifts (read_floor.hpp).
void decode(benchmark::State& state, const Model& m, bool read_floor) {
  const std::int64_t depth = state.range(0), window = 32;
  Tensor prompt = Tensor::empty({1, std::max<std::int64_t>(depth, 1)}, DType::I64);
  const auto ids = bench::prompt_of(prompt.shape()[1], m.config().vocab_size);
  std::copy(ids.begin(), ids.end(), prompt.data<std::int64_t>());
  auto fresh_cache = [&] {
    auto c = m.new_cache(1, depth + window);
    if (depth > 0) m.forward(prompt, Tensor{}, c);
    return c;
  };
  auto cache = fresh_cache();
  Tensor next = Tensor::empty({1, 1}, DType::I64);
  next.data<std::int64_t>()[0] = 42;
  const auto buffers = bench::weight_buffers(m.weights());
  double decode_s = 0, read_s = 0;
  for (auto _ : state) {
    if (cache.free_slots() == 0) {
      state.PauseTiming();
      cache = fresh_cache();
      state.ResumeTiming();
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto h = m.forward(next, Tensor{}, cache);
    benchmark::DoNotOptimize(m.logits(Model::last_positions(h)));
    decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (read_floor) read_s += bench::plain_read_seconds(buffers, std::max(1, CpuBackend::num_threads()));
  }
  const double n = double(state.iterations());
  state.counters["tok/s"] = n / decode_s;
  state.counters["decode_ms/tok"] = 1e3 * decode_s / n;
  if (read_floor) {
    state.counters["read_floor_ms"] = 1e3 * read_s / n;  // all weight bytes, plain read, same moment
    state.counters["decode/read_floor"] = decode_s / read_s;
    state.counters["GB/s"] = double(bench::total_bytes(buffers)) * n / decode_s / 1e9;
  }
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

void BM_tiny_prefill128_bf16(benchmark::State& s) { prefill(s, tiny(DType::BF16), peaks().f32); }
void BM_tiny_prefill128_f32(benchmark::State& s) { prefill(s, tiny(DType::F32), peaks().f32); }
void BM_tiny_decode_bf16(benchmark::State& s) { decode(s, tiny(DType::BF16), false); }
void BM_tiny_decode_f32(benchmark::State& s) { decode(s, tiny(DType::F32), false); }
void BM_2b_decode_bf16(benchmark::State& s) { decode(s, big(DType::BF16), true); }
void BM_2b_prefill128_bf16(benchmark::State& s) { prefill(s, big(DType::BF16), peaks().f32); }
// The opt-in bf16_activations precision: activations rounded to bf16, oneDNN's bf16 matmul.
void BM_2b_prefill128_bf16_fast(benchmark::State& s) {
  CpuBackend::set_precision(CpuBackend::Precision::bf16_activations);
  const bool bf16 = CpuBackend::bf16_matmul_available();
  prefill(s, big(DType::BF16), bf16 ? peaks().bf16 : peaks().f32);
  CpuBackend::set_precision(CpuBackend::Precision::exact);
  s.SetLabel(bf16 ? "bf16 matmul" : "no bf16 matmul here: exact path");
}
void BM_2b_decode_f32(benchmark::State& s) { decode(s, big(DType::F32), true); }
void BM_2b_prefill128_f32(benchmark::State& s) { prefill(s, big(DType::F32), peaks().f32); }

}  // namespace

BENCHMARK(BM_tiny_prefill128_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tiny_prefill128_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_tiny_decode_bf16)->Unit(benchmark::kMillisecond)->Arg(0)->Arg(128)->Arg(512);
BENCHMARK(BM_tiny_decode_f32)->Unit(benchmark::kMillisecond)->Arg(0)->Arg(128)->Arg(512);
BENCHMARK(BM_2b_decode_bf16)->Unit(benchmark::kMillisecond)->Arg(128)->Iterations(8);
BENCHMARK(BM_2b_prefill128_bf16)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_2b_prefill128_bf16_fast)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_2b_decode_f32)->Unit(benchmark::kMillisecond)->Arg(128)->Iterations(5);
BENCHMARK(BM_2b_prefill128_f32)->Unit(benchmark::kMillisecond)->Iterations(2);

int main(int argc, char** argv) {
  bench::measure_compute_peaks();
  return bench::run_benchmarks(argc, argv);
}
