// CpuBackend::linear on Gemma-2-2B shapes, next to this machine's floors measured at startup, in the
// same run (read_floor.hpp, compute_floor.hpp):
//  - decode GEMV (M = 1): weight GB/s read, against a plain read of the same cold buffers;
//  - prefill (M = 128): GFLOP/s, exact f32 (f32 and bf16 weights) and the bf16-activation fast mode,
//    against the f32 FMA and the bf16 dot-product peaks (fraction of peak printed).
// Shapes are [N, K] = [out, in]: 2304x2304 (q/o), 9216x2304 (gate/up), 2304x9216 (down), 256000x2304
// (the tied LM head, 1.2 GB in bf16). Also a plain read loop (the bandwidth available right now),
// attention at 2B sizes and the training VJPs of attention and linear at a 4 x 256-token batch.
// Runs in about 35 s on 2 threads.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
#include "bench_main.hpp"
#include "compute_floor.hpp"
#include "read_floor.hpp"

namespace {

using flas::CpuBackend;
using flas::DType;
using flas::Tensor;

// This machine's floors, measured once, at startup, with the benchmark's thread count.
struct Floors {
  double read_GBps = 0, f32_peak_GFLOPs = 0, bf16_peak_GFLOPs = 0;
};
Floors& floors() {
  static Floors f;
  return f;
}

// Counters of a per-iteration amount, shown per second: GB read, GFLOP done.
benchmark::Counter gigabytes_per_second(double bytes) {
  return benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
benchmark::Counter gigaflops_per_second(double flops) {
  return benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Deterministic, non-zero contents: never-written pages would all map the kernel's zero page and
// "stream" from cache.
Tensor make_tensor(std::int64_t rows, std::int64_t cols, DType dt) {
  Tensor t = Tensor::empty({rows, cols}, dt);
  const std::int64_t n = t.numel();
  std::uint32_t s = 0x9e3779b9u;
  for (std::int64_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    const float v = float(std::int32_t(s >> 8) - (1 << 23)) * (1.0f / float(1 << 27));
    if (dt == DType::F32) t.data<float>()[i] = v;
    else t.data<flas::bf16>()[i] = flas::f32_to_bf16(v);
  }
  return t;
}

// One weight shape at a time is kept (the LM head alone is 2.4 GB in f32), as enough copies to
// exceed the caches: a decode step streams 5 GB of weights, so each call must read cold memory too.
constexpr std::int64_t kColdBytes = std::int64_t(512) << 20;

const std::vector<Tensor>& weights(std::int64_t N, std::int64_t K, DType dt) {
  static std::int64_t n = -1, k = -1;
  static DType d = DType::F32;
  static std::vector<Tensor> w;
  if (N != n || K != k || dt != d) {
    w.clear();
    const std::int64_t one = N * K * std::int64_t(flas::dtype_size(dt));
    for (std::int64_t c = 0; c < std::max<std::int64_t>(1, kColdBytes / one); ++c) w.push_back(make_tensor(N, K, dt));
    n = N, k = K, d = dt;
  }
  return w;
}

// The machine's read bandwidth right now, on the same cold buffers: a plain 2-thread read loop. Shared
// machines drift by ±20% from minute to minute; compare the GEMV rows against this one too.
void BM_read_bandwidth(benchmark::State& state) {
  const std::vector<Tensor>& w = weights(2304, 9216, DType::BF16);
  std::vector<const Tensor*> buffers;
  for (const Tensor& c : w) buffers.push_back(&c);
  const int threads = std::max(1, CpuBackend::num_threads());
  for (auto _ : state) flas::bench::plain_read_seconds(buffers, threads);
  state.counters["GB/s"] = gigabytes_per_second(double(flas::bench::total_bytes(buffers)));
  state.counters["floor_GB/s"] = floors().read_GBps;
  state.SetLabel("plain read loop over the cold weight copies");
}

void BM_decode_gemv(benchmark::State& state, DType dt) {
  const std::int64_t N = state.range(0), K = state.range(1);
  const std::vector<Tensor>& w = weights(N, K, dt);
  const Tensor x = make_tensor(1, K, DType::F32);
  Tensor y = Tensor::empty({1, N}, DType::F32);
  CpuBackend::linear(x, w[0], nullptr, y);  // warm: thread team, buffers
  std::size_t next = 0;
  for (auto _ : state) {
    CpuBackend::linear(x, w[next], nullptr, y);  // round-robin over the copies: always cold
    next = (next + 1) % w.size();
    benchmark::DoNotOptimize(y.raw());
  }
  state.counters["GB/s"] = gigabytes_per_second(double(w[0].bytes()));
  state.counters["floor_GB/s"] = floors().read_GBps;
  state.SetLabel(std::string(flas::dtype_name(dt)) + " weights, " + CpuBackend::isa_name(CpuBackend::kernel_isa()) +
                 " kernel; floor = DRAM read bandwidth");
}

// `via_onednn`: the kernels capped at AVX2 for the call, which routes bf16 weights to oneDNN (the path
// before the AVX-512 prefill kernel, and the one CPUs without AVX-512 take): the same-run comparison.
void BM_prefill(benchmark::State& state, DType dt, CpuBackend::Precision p, bool via_onednn) {
  struct IsaCap {
    CpuBackend::KernelIsa before = CpuBackend::kernel_isa();
    explicit IsaCap(bool cap) { if (cap) CpuBackend::set_kernel_isa(CpuBackend::KernelIsa::avx2); }
    ~IsaCap() { CpuBackend::set_kernel_isa(before); }
  } cap(via_onednn);
  const std::int64_t M = 128, N = state.range(0), K = state.range(1);
  const Tensor& w = weights(N, K, dt)[0];  // compute-bound: one copy, cache-warm is fine
  const Tensor x = make_tensor(M, K, DType::F32);
  Tensor y = Tensor::empty({M, N}, DType::F32);
  CpuBackend::linear(x, w, nullptr, y, p);  // warm: primitive creation (JIT) happens once per shape
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    CpuBackend::linear(x, w, nullptr, y, p);
    benchmark::DoNotOptimize(y.raw());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const bool fast = p == CpuBackend::Precision::bf16_activations && dt == DType::BF16 &&
                    CpuBackend::bf16_matmul_available();
  state.counters["GFLOP/s"] = gigaflops_per_second(2.0 * double(M * N * K));
  const double peak = fast ? floors().bf16_peak_GFLOPs : floors().f32_peak_GFLOPs;
  state.counters["peak_GFLOP/s"] = peak;
  const double gflops = 2.0 * double(M * N * K) * 1e-9 * double(state.iterations()) / seconds;
  state.counters["of_peak"] = peak > 0 ? gflops / peak : 0;  // the fraction of the arithmetic peak reached
  const bool kernel = dt == DType::BF16 && CpuBackend::kernel_isa() == CpuBackend::KernelIsa::avx512;
  state.SetLabel(std::string(flas::dtype_name(dt)) + " weights, " + (fast ? "bf16 activations" : "exact f32") +
                 (kernel ? " (flas AVX-512 prefill kernel)" : fast ? " (oneDNN bf16)" : " (oneDNN f32)"));
}

// Gemma-2-2B attention (8 query heads over 4 kv heads, head size 256, soft-cap 50, HF mask): a causal
// prefill of S tokens (GFLOP/s over the visible half), and one decode step against S cached keys (GB/s
// of K and V read).
void BM_attention(benchmark::State& state, bool decode) {
  const std::int64_t S = state.range(0), Sq = decode ? 1 : S, nH = 8, nKV = 4, hd = 256;
  const Tensor q = make_tensor(Sq, nH * hd, DType::F32).view({1, Sq, nH, hd});
  const Tensor k = make_tensor(S, nKV * hd, DType::F32).view({1, S, nKV, hd});
  const Tensor v = make_tensor(S, nKV * hd, DType::F32).view({1, S, nKV, hd});
  Tensor out = Tensor::empty(q.shape(), DType::F32);
  flas::nn::AttentionParams p;
  p.scale = 1.0f / 16.0f;
  p.softcap = 50.0f;
  CpuBackend::attention(q, k, v, out, p);
  for (auto _ : state) {
    CpuBackend::attention(q, k, v, out, p);
    benchmark::DoNotOptimize(out.raw());
  }
  if (decode) {
    state.counters["GB/s"] = gigabytes_per_second(2.0 * double(k.bytes()));
    state.counters["floor_GB/s"] = floors().read_GBps;
  } else {
    const double flops = 4.0 * double(nH * hd) * double(S) * double(S + 1) / 2.0;
    state.counters["GFLOP/s"] = gigaflops_per_second(flops);
  }
  state.SetLabel(decode ? "decode step, f32 KV cache" : "causal prefill, online softmax");
}

// Training VJPs at a batch of 4 x 256 tokens. Attention: 8 query heads over 4 kv heads, hd 256, causal,
// soft-cap 50 (GFLOP/s over the visible half: 5 products of 2·hd flops per visible (query, key, head)).
void BM_attention_backward(benchmark::State& state) {
  const std::int64_t B = 4, S = 256, nH = 8, nKV = 4, hd = 256;
  const Tensor q = make_tensor(B * S, nH * hd, DType::F32).view({B, S, nH, hd});
  const Tensor k = make_tensor(B * S, nKV * hd, DType::F32).view({B, S, nKV, hd});
  const Tensor v = make_tensor(B * S, nKV * hd, DType::F32).view({B, S, nKV, hd});
  const Tensor dout = make_tensor(B * S, nH * hd, DType::F32).view({B, S, nH, hd});
  Tensor out = Tensor::empty(q.shape(), DType::F32), dq = Tensor::empty(q.shape(), DType::F32);
  Tensor dk = Tensor::empty(k.shape(), DType::F32), dv = Tensor::empty(v.shape(), DType::F32);
  flas::nn::AttentionParams p;
  p.scale = 1.0f / 16.0f;
  p.softcap = 50.0f;
  CpuBackend::attention(q, k, v, out, p);
  for (auto _ : state) {
    CpuBackend::fill(dk, 0.0f);
    CpuBackend::fill(dv, 0.0f);
    flas::BackwardOps<CpuBackend>::attention_backward(q, k, v, out, dout, p, dq, dk, dv);
    benchmark::DoNotOptimize(dq.raw());
  }
  state.counters["GFLOP/s"] = gigaflops_per_second(5.0 * 2.0 * double(B * nH * hd) * double(S) * double(S + 1) / 2.0);
  state.SetLabel("B 4, S 256, 8/4 heads, hd 256, causal, soft-cap 50");
}

// Linear VJP at M = 1024 rows: dx = dy·W for a frozen bf16 weight (the base model), dx and dW += dyᵀ·x
// for a trainable f32 one (the flow).
void BM_linear_backward(benchmark::State& state, DType dt) {
  const std::int64_t M = 1024, N = state.range(0), K = state.range(1);
  const Tensor w = make_tensor(N, K, dt);  // compute-bound: one cache-warm copy
  const Tensor x = make_tensor(M, K, DType::F32), dy = make_tensor(M, N, DType::F32);
  Tensor dx = Tensor::empty({M, K}, DType::F32), dw = make_tensor(N, K, DType::F32);
  Tensor* dwp = dt == DType::F32 ? &dw : nullptr;
  flas::BackwardOps<CpuBackend>::linear_backward(x, w, dy, &dx, dwp, nullptr);  // warm: primitives
  for (auto _ : state) {
    flas::BackwardOps<CpuBackend>::linear_backward(x, w, dy, &dx, dwp, nullptr);
    benchmark::DoNotOptimize(dx.raw());
  }
  state.counters["GFLOP/s"] = gigaflops_per_second((dwp ? 4.0 : 2.0) * double(M * N * K));
  state.SetLabel(dwp ? "f32 weights: dx and dW" : "bf16 weights: dx only");
}

void gemv_shapes(benchmark::internal::Benchmark* b) {
  b->Args({2304, 2304})->Args({9216, 2304})->Args({2304, 9216})->Args({256000, 2304});
  b->ArgNames({"N", "K"})->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
}
void prefill_shapes(benchmark::internal::Benchmark* b) {
  b->Args({9216, 2304})->Args({2304, 9216});
  b->ArgNames({"N", "K"})->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
}

void attention_sizes(benchmark::internal::Benchmark* b, std::int64_t S) {
  b->Arg(S)->ArgName("S")->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_attention, prefill, false)->Apply([](auto* b) { attention_sizes(b, 1024); });
BENCHMARK_CAPTURE(BM_attention, decode, true)->Apply([](auto* b) { attention_sizes(b, 4096); });
BENCHMARK(BM_attention_backward)->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
BENCHMARK_CAPTURE(BM_linear_backward, bf16, DType::BF16)->Apply(prefill_shapes);
BENCHMARK_CAPTURE(BM_linear_backward, f32, DType::F32)->Apply(prefill_shapes);
BENCHMARK(BM_read_bandwidth)->Unit(benchmark::kMillisecond)->MinTime(0.3)->UseRealTime();
BENCHMARK_CAPTURE(BM_decode_gemv, bf16, DType::BF16)->Apply(gemv_shapes);
BENCHMARK_CAPTURE(BM_decode_gemv, f32, DType::F32)->Apply(gemv_shapes);
// What one fork and join of the thread team costs with nothing to do: the price every parallel op
// pays, which sets the decode thresholds (kParallelMinWeights in linear.cpp, worth_parallel()).
void BM_thread_team_empty(benchmark::State& state) {
  volatile int sink = 0;
  for (auto _ : state) {
#pragma omp parallel for schedule(static, 1)
    for (int t = 0; t < omp_get_max_threads(); ++t) sink = sink + t;
  }
  state.counters["threads"] = omp_get_max_threads();
}
BENCHMARK(BM_thread_team_empty)->Unit(benchmark::kMicrosecond)->MinTime(0.2)->UseRealTime();

// The bundled chat model's decode projections, weights warm in cache as in its decode loop (11 MB in
// all): per-call fixed costs (thread team, horizontal sums of short rows) decide here, not DRAM.
void BM_decode_gemv_small(benchmark::State& state) {
  const std::int64_t N = state.range(0), K = state.range(1);
  const Tensor& w = weights(N, K, DType::BF16)[0];
  const Tensor x = make_tensor(1, K, DType::F32);
  Tensor y = Tensor::empty({1, N}, DType::F32);
  for (auto _ : state) {
    CpuBackend::linear(x, w, nullptr, y);
    benchmark::DoNotOptimize(y.raw());
  }
  state.counters["GB/s"] = gigabytes_per_second(double(w.bytes()));
}
BENCHMARK(BM_decode_gemv_small)
    ->Args({256, 256})->Args({128, 256})->Args({768, 256})->Args({256, 768})->Args({4096, 256})
    ->ArgNames({"N", "K"})->Unit(benchmark::kMicrosecond)->MinTime(0.2)->UseRealTime();
// The bundled chat model's projections (hidden 256, MLP 768, vocabulary 4096): small K, where a
// kernel's fixed costs (packing, thread team, stores) weigh most.
void prefill_small_shapes(benchmark::internal::Benchmark* b) {
  b->Args({256, 256})->Args({768, 256})->Args({256, 768})->Args({4096, 256});
  b->ArgNames({"N", "K"})->Unit(benchmark::kMicrosecond)->MinTime(0.2)->UseRealTime();
}
BENCHMARK_CAPTURE(BM_prefill, small_bf16w_exact, DType::BF16, CpuBackend::Precision::exact, false)->Apply(prefill_small_shapes);
BENCHMARK_CAPTURE(BM_prefill, small_bf16w_exact_onednn, DType::BF16, CpuBackend::Precision::exact, true)
    ->Apply(prefill_small_shapes);
BENCHMARK_CAPTURE(BM_prefill, small_bf16w_bf16act, DType::BF16, CpuBackend::Precision::bf16_activations, false)
    ->Apply(prefill_small_shapes);
BENCHMARK_CAPTURE(BM_prefill, small_bf16w_bf16act_onednn, DType::BF16, CpuBackend::Precision::bf16_activations, true)
    ->Apply(prefill_small_shapes);
BENCHMARK_CAPTURE(BM_prefill, f32_exact, DType::F32, CpuBackend::Precision::exact, false)->Apply(prefill_shapes);
BENCHMARK_CAPTURE(BM_prefill, bf16w_exact, DType::BF16, CpuBackend::Precision::exact, false)->Apply(prefill_shapes);
BENCHMARK_CAPTURE(BM_prefill, bf16w_exact_onednn, DType::BF16, CpuBackend::Precision::exact, true)
    ->Apply(prefill_shapes);
BENCHMARK_CAPTURE(BM_prefill, bf16w_bf16act, DType::BF16, CpuBackend::Precision::bf16_activations, false)
    ->Apply(prefill_shapes);
BENCHMARK_CAPTURE(BM_prefill, bf16w_bf16act_onednn, DType::BF16, CpuBackend::Precision::bf16_activations, true)
    ->Apply(prefill_shapes);

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("OMP_NUM_THREADS")) CpuBackend::set_num_threads(2);
  benchmark::AddCustomContext("flas_threads", std::to_string(CpuBackend::num_threads()));
  benchmark::AddCustomContext("flas_kernel_isa", CpuBackend::isa_name(CpuBackend::kernel_isa()));
  benchmark::AddCustomContext("onednn_bf16_matmul", CpuBackend::bf16_matmul_available() ? "yes" : "no");
  {  // the floors, with the thread count the kernels use; the read over the cold 2304x9216 bf16 copies
    const int threads = std::max(1, CpuBackend::num_threads());
    std::vector<const Tensor*> buffers;
    for (const Tensor& c : weights(2304, 9216, DType::BF16)) buffers.push_back(&c);
    flas::bench::plain_read_seconds(buffers, threads);  // first touch
    double best = 1e30;
    for (int r = 0; r < 3; ++r) best = std::min(best, flas::bench::plain_read_seconds(buffers, threads));
    floors() = {double(flas::bench::total_bytes(buffers)) / best * 1e-9, flas::bench::f32_fma_peak_gflops(threads),
                flas::bench::bf16_dot_peak_gflops(threads)};
  }
  benchmark::AddCustomContext("measured_read_GBps", std::to_string(floors().read_GBps));
  benchmark::AddCustomContext("measured_f32_fma_peak_GFLOPs", std::to_string(floors().f32_peak_GFLOPs));
  benchmark::AddCustomContext("measured_bf16_dot_peak_GFLOPs", std::to_string(floors().bf16_peak_GFLOPs));
  return flas::bench::run_benchmarks(argc, argv);
}
