// Generations per second of an evaluation grid on the bundled chat model with its shipped flow: the
// same 16 flas cells (8 concepts x 2 instructions, flow times mixed) generated as one batch with a
// different concept per row, against one call per cell (batch of 1). The ratio is the figure of merit:
// per-row conditioning in one batch should pay for itself. Both arms run in the same process, the
// arms interleaved per iteration, so the ratio is taken at the same moment of this shared machine.
//   OMP_NUM_THREADS=2 build/bench/bench_eval
#include <benchmark/benchmark.h>

#include <chrono>

#include "flas/backends/cpu.hpp"
#include "flas/eval/grid_runner.hpp"

using namespace flas;

namespace {

struct EvalSetup {
  gemma2::Model<CpuBackend> model = gemma2::Model<CpuBackend>::load(std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat");
  io::Tokenizer tok = io::Tokenizer::load(std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat");
  std::string flow_file = std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat-flow/flow.safetensors";
  field::FlowMeta meta = field::read_flow_meta(field::flow_meta_path(flow_file));
  field::FlasFlow<CpuBackend> flow{model.config(), model.inv_freq(), field::load_flow_weights(flow_file, model.config())};
  eval::EvalConfig cfg;
  eval::GridBatch batch;

  EvalSetup() {
    cfg.max_new_tokens = 32;
    batch.method = "flas";
    const char* concepts[] = {"references to rental services and associated equipment",
                              "scientific terms related to research findings and their implications",
                              "terms related to root in mathematical contexts",
                              "biographical information about a person.",
                              "references to academic papers and their formatting",
                              "layout attributes in a UI design context",
                              "statements about the nature and condition of entities",
                              "references to different worlds, realities, or fantastical settings within narratives"};
    const char* instructions[] = {"Write a short poem about the city.", "How do I plan a trip to Japan?"};
    for (int c = 0; c < 8; ++c)
      for (int i = 0; i < 2; ++i)
        batch.cells.push_back({{"flas", concepts[c], i, double(1 + (c + i) % 4), 0}, "held_in", instructions[i]});
  }
};

EvalSetup& setup() {
  static EvalSetup s;
  return s;
}

void BM_grid_mixed_batch_vs_per_cell(benchmark::State& state) {
  auto& s = setup();
  eval::GridRunner<CpuBackend> runner(s.model, s.tok, s.cfg, &s.flow, s.meta, nullptr);
  using clock = std::chrono::steady_clock;
  double batched = 0, single = 0;
  std::int64_t iters = 0;
  for (auto _ : state) {
    auto t0 = clock::now();
    benchmark::DoNotOptimize(runner.run(s.batch));
    auto t1 = clock::now();
    for (const auto& cell : s.batch.cells) {
      eval::GridBatch one{s.batch.method, 0, 0, {cell}};
      benchmark::DoNotOptimize(runner.run(one));
    }
    auto t2 = clock::now();
    batched += std::chrono::duration<double>(t1 - t0).count();
    single += std::chrono::duration<double>(t2 - t1).count();
    ++iters;
  }
  const double n = double(s.batch.cells.size()) * double(iters);
  state.counters["gen_per_s_batched"] = n / batched;
  state.counters["gen_per_s_per_cell"] = n / single;
  state.counters["speedup"] = single / batched;
}
BENCHMARK(BM_grid_mixed_batch_vs_per_cell)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
