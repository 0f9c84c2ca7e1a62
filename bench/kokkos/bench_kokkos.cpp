// The Kokkos backend against the CPU backend on the bundled chat model (prefill of 128 tokens, decode
// per token, bf16 as shipped and f32), and a 1024³ f32 matmul through KokkosBackend::linear, i.e.
// KokkosBlas::gemm on the BLAS that Kokkos Kernels was built against (Debian: libblas.so.3, whichever of
// reference BLAS and OpenBLAS update-alternatives selects; the program prints which one is loaded).
// Kokkos here is Debian's Serial build: one core. CpuBackend runs on OMP_NUM_THREADS threads; the
// "_1thread" rows cap it at one for a like-for-like comparison.
//   build/backends/kokkos/bench/bench_kokkos [--benchmark_filter=gemm]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "flas/backends/cpu.hpp"
#include "flas/backends/kokkos.hpp"
#include "flas/models/gemma2/model.hpp"

using namespace flas;

namespace {

template <class B>
const gemma2::Model<B>& tiny(DType dt) {
  static const auto bf = gemma2::Model<B>::load(std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat");
  static const gemma2::Model<B> f32(bf.config(), gemma2::weights_as(bf.weights(), DType::F32));
  return dt == DType::BF16 ? bf : f32;
}

Tensor prompt(std::int64_t n, std::int64_t vocab) {
  Tensor t = Tensor::empty({1, n}, DType::I64);
  for (std::int64_t i = 0; i < n; ++i) t.data<std::int64_t>()[i] = 3 + (i * 7919) % (vocab - 3);
  return t;
}

// Runs the benchmark body with CpuBackend capped at `threads` (0: its default), restoring it after.
struct CpuThreads {
  explicit CpuThreads(int threads) { CpuBackend::set_num_threads(threads); }
  ~CpuThreads() { CpuBackend::set_num_threads(0); }
};

template <class B>
void prefill(benchmark::State& state, DType dt, int cpu_threads) {
  CpuThreads cap(cpu_threads);
  const auto& m = tiny<B>(dt);
  const Tensor t = prompt(128, m.config().vocab_size);
  for (auto _ : state) {
    auto cache = m.new_cache(1, 128);
    auto h = m.forward(t, Tensor{}, cache);
    benchmark::DoNotOptimize(m.logits(gemma2::Model<B>::last_positions(h)));
  }
  state.counters["tok/s"] = benchmark::Counter(128.0 * double(state.iterations()), benchmark::Counter::kIsRate);
}

template <class B>
void decode(benchmark::State& state, DType dt, int cpu_threads) {
  CpuThreads cap(cpu_threads);
  const auto& m = tiny<B>(dt);
  const std::int64_t context = 128, tokens = 256;
  const Tensor t = prompt(context, m.config().vocab_size);
  auto cache = m.new_cache(1, context + tokens);
  m.forward(t, Tensor{}, cache);
  Tensor next = Tensor::empty({1, 1}, DType::I64);
  next.data<std::int64_t>()[0] = 42;
  for (auto _ : state) {
    if (cache.free_slots() == 0) {
      state.PauseTiming();
      cache = m.new_cache(1, context + tokens);
      m.forward(t, Tensor{}, cache);
      state.ResumeTiming();
    }
    auto h = m.forward(next, Tensor{}, cache);
    benchmark::DoNotOptimize(m.logits(gemma2::Model<B>::last_positions(h)));
  }
  state.counters["tok/s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}

template <class B>
void gemm(benchmark::State& state, int cpu_threads) {
  CpuThreads cap(cpu_threads);
  const std::int64_t n = state.range(0);
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor x = Tensor::empty({n, n}, DType::F32), w = Tensor::empty({n, n}, DType::F32), y = Tensor::empty({n, n}, DType::F32);
  for (auto* t : {&x, &w})
    for (std::int64_t i = 0; i < t->numel(); ++i) t->template data<float>()[i] = u(gen);
  for (auto _ : state) {
    B::linear(x, w, nullptr, y);
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(n) * double(n) * double(n) * double(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
}

using K = KokkosBackend<>;
using C = CpuBackend;
void BM_kokkos_prefill128_bf16(benchmark::State& s) { prefill<K>(s, DType::BF16, 0); }
void BM_cpu_prefill128_bf16(benchmark::State& s) { prefill<C>(s, DType::BF16, 0); }
void BM_cpu_prefill128_bf16_1thread(benchmark::State& s) { prefill<C>(s, DType::BF16, 1); }
void BM_kokkos_prefill128_f32(benchmark::State& s) { prefill<K>(s, DType::F32, 0); }
void BM_cpu_prefill128_f32(benchmark::State& s) { prefill<C>(s, DType::F32, 0); }
void BM_cpu_prefill128_f32_1thread(benchmark::State& s) { prefill<C>(s, DType::F32, 1); }
void BM_kokkos_decode_bf16(benchmark::State& s) { decode<K>(s, DType::BF16, 0); }
void BM_cpu_decode_bf16(benchmark::State& s) { decode<C>(s, DType::BF16, 0); }
void BM_cpu_decode_bf16_1thread(benchmark::State& s) { decode<C>(s, DType::BF16, 1); }
void BM_kokkos_decode_f32(benchmark::State& s) { decode<K>(s, DType::F32, 0); }
void BM_cpu_decode_f32(benchmark::State& s) { decode<C>(s, DType::F32, 0); }
void BM_cpu_decode_f32_1thread(benchmark::State& s) { decode<C>(s, DType::F32, 1); }
void BM_kokkos_gemm(benchmark::State& s) { gemm<K>(s, 0); }
void BM_cpu_gemm(benchmark::State& s) { gemm<C>(s, 0); }
void BM_cpu_gemm_1thread(benchmark::State& s) { gemm<C>(s, 1); }

}  // namespace

BENCHMARK(BM_kokkos_prefill128_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_prefill128_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_prefill128_bf16_1thread)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_kokkos_prefill128_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_prefill128_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_prefill128_f32_1thread)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_kokkos_decode_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_decode_bf16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_decode_bf16_1thread)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_kokkos_decode_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_decode_f32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_decode_f32_1thread)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_kokkos_gemm)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_gemm)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cpu_gemm_1thread)->Arg(1024)->Unit(benchmark::kMillisecond);

// Prints the Kokkos build and which BLAS the process loaded (Kokkos Kernels calls libblas.so.3; update-alternatives picks the file).
int main(int argc, char** argv) {
  Tensor one = Tensor::empty({1}, DType::F32);
  K::fill(one, 0.0f);  // the first op initialises Kokkos
  std::printf("Kokkos %d.%d.%d, execution space %s\n", KOKKOS_VERSION / 10000, KOKKOS_VERSION / 100 % 100,
              KOKKOS_VERSION % 100, K::execution_space_name());
  std::ifstream maps("/proc/self/maps");
  std::string line, shown;
  while (std::getline(maps, line)) {
    const auto p = line.find('/');
    if (p == std::string::npos) continue;
    const std::string path = line.substr(p);
    if ((path.find("blas") != std::string::npos || path.find("lapack") != std::string::npos) &&
        shown.find(path) == std::string::npos) {
      std::printf("loaded: %s\n", path.c_str());
      shown += path + "\n";
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
