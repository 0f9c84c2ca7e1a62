// One FLAS training step on the CPU backend — the base model's forward to layer L, N = 3 Euler steps of
// a 1-block flow, the upper layers, LM + diversity loss, backward into every flow parameter, one AdamW
// step — for the bundled chat model (layer 3, batch 8 x 80, as `flas train` runs it) and for random bf16
// weights with Gemma-2-2B shapes (flow at layer 20, batch 4 x 256: the reference's configuration),
// printed beside the FLAS reference's 130 ms/step and 12.2 GB peak on an H100.
// Memory: the process's peak resident bytes during a step (Linux VmHWM, reset before each step; the
// reference's 12.2 GB counts its model too), the part beyond the frozen model, and the bytes the ODE
// gradient keeps (states + activation tapes).
//   OMP_NUM_THREADS=2 build/bench/bench_train [--benchmark_filter=tiny]
#include <chrono>
#include <fstream>
#include <optional>

#include "bench_models.hpp"
#include "bench_main.hpp"
#include "flas/backends/cpu_backward.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/train/flas_loss.hpp"
#include "flas/train/optimizer_step.hpp"

using namespace flas;
using Model = gemma2::Model<CpuBackend>;
using Flow = field::FlasFlow<CpuBackend>;

namespace {

// Resident-set figures of this process from /proc/self/status, in bytes.
std::int64_t status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  return -1;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct Setup {
  std::unique_ptr<Model> model;
  std::int64_t model_rss = 0;  // resident bytes before the first training step: the frozen model, flow, batch
  std::optional<Flow> flow;
  int layer = 0;
  train::TrainBatch batch;
};

// Rows of `seq` tokens: the first half a prompt (labels −100), the rest a response; two concepts.
train::TrainBatch synthetic_batch(std::int64_t rows, std::int64_t seq, std::int64_t vocab) {
  train::TrainBatch b;
  b.input_ids = Tensor::empty({rows, seq}, DType::I64);
  b.labels = Tensor::empty({rows, seq}, DType::I64);
  b.attention_mask = Model::ones_u8(rows, seq);
  const auto ids = bench::prompt_of(rows * seq, vocab);
  for (std::int64_t i = 0; i < rows * seq; ++i) {
    b.input_ids.data<std::int64_t>()[i] = ids[std::size_t(i)];
    b.labels.data<std::int64_t>()[i] = i % seq < seq / 2 ? -100 : ids[std::size_t(i)];
  }
  const std::int64_t Lc = 12;
  b.concept_ids = Tensor::empty({rows, Lc}, DType::I64);
  b.concept_mask = Model::ones_u8(rows, Lc);
  for (std::int64_t r = 0; r < rows; ++r) {
    b.concept_of_row.push_back(r % 2);
    for (std::int64_t i = 0; i < Lc; ++i) b.concept_ids.data<std::int64_t>()[r * Lc + i] = i == 0 ? 2 : 100 + 37 * i + (r % 2);
  }
  b.flowtime = 1.0f;
  b.steps = 3;
  return b;
}

Setup make_setup(std::unique_ptr<Model> model, int layer, std::int64_t rows, std::int64_t seq) {
  Setup s;
  s.model = std::move(model);
  s.layer = layer;
  s.flow.emplace(s.model->config(), s.model->inv_freq(),
                 bench::one_block_flow(s.model->config(), s.model->weights(), layer, DType::F32));
  s.batch = synthetic_batch(rows, seq, s.model->config().vocab_size);
  s.model_rss = status_bytes("VmRSS");
  return s;
}

Setup& tiny() {
  static Setup s = make_setup(
      std::make_unique<Model>(Model::load(std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat")), 3, 8, 80);
  return s;
}

Setup& big() {
  static Setup s = [] {
    const auto c = bench::gemma2_2b_config();
    return make_setup(std::make_unique<Model>(c, bench::random_weights(c, DType::BF16)), 20, 4, 256);
  }();
  return s;
}

const bench::ComputePeaks& peaks() { return bench::compute_peaks(); }

// Matmul FLOPs of one step, by part (attention scores and element-wise work are < 2% at these sizes):
// the frozen forward (layers 0..L; the concept encoder's 12-token rows are noise), the upper layers
// (forward + the VJP's dx, no weight gradient), the tied head on labelled rows (forward + dx), and the
// flow (N Euler steps forward, then dx and dW in the VJP: 3x).
struct StepFlops {
  double frozen = 0, rest = 0;
};
StepFlops step_flops(const Setup& s) {
  const auto& c = s.model->config();
  const double H = double(c.hidden_size), q = double(c.num_attention_heads * c.head_dim),
               kv = double(c.num_key_value_heads * c.head_dim), I = double(c.intermediate_size);
  const double layer = H * q + 2 * H * kv + q * H + 3 * H * I;  // weights per decoder layer
  const double tokens = double(s.batch.input_ids.numel());
  double labelled = 0, flow_params = 0;
  for (std::int64_t i = 0; i < s.batch.labels.numel(); ++i) labelled += s.batch.labels.data<std::int64_t>()[i] != -100;
  field::for_each_flow_parameter(s.flow->weights(), [&](const std::string&, const Tensor& t) { flow_params += double(t.numel()); });
  StepFlops f;
  f.frozen = 2 * tokens * layer * double(s.layer + 1);
  f.rest = 2 * 2 * tokens * layer * double(c.num_hidden_layers - s.layer - 1) +
           2 * 2 * labelled * double(c.vocab_size) * H + 3 * 2 * tokens * flow_params * double(s.batch.steps);
  return f;
}

void train_step(benchmark::State& state, Setup& s, train::GradientStrategy strategy, bool bf16_frozen = false) {
  train::FlasLoss<CpuBackend> loss(*s.model, s.layer, 0.1f, strategy);
  loss.set_bf16_frozen_forward(bf16_frozen);
  train::AdamW adam;
  auto grads = train::zero_flow_gradients(s.flow->weights());
  double seconds = 0, ode_bytes = 0;
  for (auto _ : state) {
    field::for_each_flow_parameter(grads, [](const std::string&, Tensor& g) { std::fill_n(g.data<float>(), g.numel(), 0.0f); });
    reset_peak_rss();
    const auto t0 = std::chrono::steady_clock::now();
    const auto parts = loss(*s.flow, s.batch, &grads);
    train::apply_flow_gradients(s.flow->weights(), grads, adam, 1e-4, 1.0);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ode_bytes = double(parts.flow_gradient_bytes);
    benchmark::DoNotOptimize(parts.loss);
  }
  const double n = double(state.iterations());
  const auto ref = bench::anchors("flas_reference_pytorch_h100.json");
  state.counters["step_ms"] = 1e3 * seconds / n;
  state.counters["tok/s"] = double(s.batch.input_ids.numel()) * n / seconds;
  // Peak of the last step (the optimiser moments exist by then, as in a long run).
  const double peak = double(status_bytes("VmHWM"));
  state.counters["peak_GB"] = peak / 1e9;
  state.counters["peak_beyond_model_GB"] = (peak - double(s.model_rss)) / 1e9;
  state.counters["ode_grad_GB"] = ode_bytes / 1e9;
  // The floor: every matmul FLOP at the measured peak (bf16 dot products for a bf16 frozen forward).
  const StepFlops f = step_flops(s);
  const bool bf16_products = bf16_frozen && CpuBackend::bf16_matmul_available();
  const double floor_s = f.frozen / ((bf16_products ? peaks().bf16 : peaks().f32) * 1e9) + f.rest / (peaks().f32 * 1e9);
  state.counters["step_TFLOP"] = (f.frozen + f.rest) / 1e12;
  state.counters["frozen_share"] = f.frozen / (f.frozen + f.rest);
  state.counters["floor_ms"] = 1e3 * floor_s;
  state.counters["step/floor"] = seconds / n / floor_s;
  state.counters["ref_h100_step_ms"] = ref["flas_train_step_b4s256_ms"].get<double>();
  state.counters["ref_h100_peak_GB"] = ref["flas_train_step_peak_GB"].get<double>();
}

void BM_tiny_train_step(benchmark::State& s) { train_step(s, tiny(), train::GradientStrategy::direct); }
void BM_tiny_train_step_checkpointed(benchmark::State& s) { train_step(s, tiny(), train::GradientStrategy::checkpointed); }
void BM_2b_train_step(benchmark::State& s) { train_step(s, big(), train::GradientStrategy::direct); }
void BM_2b_train_step_checkpointed(benchmark::State& s) { train_step(s, big(), train::GradientStrategy::checkpointed); }
void BM_2b_train_step_bf16_frozen(benchmark::State& s) { train_step(s, big(), train::GradientStrategy::direct, true); }

}  // namespace

BENCHMARK(BM_tiny_train_step)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_tiny_train_step_checkpointed)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_2b_train_step)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_2b_train_step_checkpointed)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_2b_train_step_bf16_frozen)->Unit(benchmark::kMillisecond)->Iterations(1);

int main(int argc, char** argv) {
  bench::measure_compute_peaks();
  return bench::run_benchmarks(argc, argv);
}
