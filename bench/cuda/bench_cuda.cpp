// CUDA benchmark at Gemma-2-2B shapes (random bf16 weights), printed beside the PyTorch H100 reference
// (bench/anchors/flas_reference_pytorch_h100.json) and the decode bandwidth floor (all weight bytes
// once per token at the device's peak memory bandwidth):
//   - base decode, ms/token (eager, and each step as one CUDA graph), after a 128-token prompt;
//   - steered decode at N = 3 with a 1-block flow at layer 20 (eager and graphed), and the flow's share;
//   - flow prefill of 128 tokens (the steering tap alone over a 128-token prompt), and the LM prefill;
//   - a training step at batch 4 × 256 (train_step_proxy.hpp: the op sequence of a FLAS step).
// Without a CUDA device it says so and exits 0.
//   bench_cuda [--tokens N] [--no-train] [--precision exact|bf16]
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "bench_models_2b.hpp"
#include "flas/backends/cuda.hpp"
#include "flas/backends/cuda_flow.hpp"
#include "flas/backends/cuda_graph.hpp"
#include "flas/condition/concept_encoder.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "train_step_proxy.hpp"

using namespace flas;
using Model = gemma2::Model<CudaBackend>;
using Flow = field::FlasFlow<CudaBackend>;
using Steering = gemma2::FlowSteering<CudaBackend, Flow>;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int kLayer = 20, kSteps = 3;
constexpr std::int64_t kPrompt = 128;

double ms_since(clock_type::time_point t0) {
  CudaBackend::synchronize();
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

double peak_bandwidth_gbs() {
  int dev = 0, clock_khz = 0, bus_bits = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess)
    return 0;
  return 2.0 * double(clock_khz) * 1e3 * double(bus_bits) / 8.0 / 1e9;  // double data rate
}

double used_device_gb() {
  std::size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return double(total_b - free_b) / 1e9;
}

Tensor prompt_ids(std::int64_t n, std::int64_t vocab) {
  Tensor t = Tensor::empty({1, n}, DType::I64);
  t.data<std::int64_t>()[0] = 2;
  for (std::int64_t i = 1; i < n; ++i) t.data<std::int64_t>()[i] = 3 + (i * 7919) % (vocab - 3);
  return t;
}

// ms per decode token after a kPrompt-token prefill; `graph`: each step recorded and launched as one graph.
template <class Tap>
double decode_ms(const Model& m, Tap& tap, int tokens, cuda::StepGraph* graph) {
  auto cache = m.new_cache(1, kPrompt + tokens + 1);
  CudaTensor logits = m.logits(Model::last_positions(m.forward(prompt_ids(kPrompt, m.config().vocab_size), Tensor{}, cache, tap)));
  Tensor next = Tensor::empty({1, 1}, DType::I64);
  next.data<std::int64_t>()[0] = 42;
  auto step = [&] { logits = m.logits(Model::last_positions(m.forward(next, Tensor{}, cache, tap))); };
  step();  // warm-up: every weight on the device, allocator cache filled
  CudaBackend::synchronize();
  const auto t0 = clock_type::now();
  for (int i = 0; i < tokens; ++i) {
    if (graph) graph->run(step);
    else step();
  }
  return ms_since(t0) / tokens;
}

void row(const char* what, double ms, const nlohmann::json& anchors, const char* key, const char* note = "") {
  if (key && anchors.contains(key))
    std::printf("  %-44s %9.2f ms   (PyTorch H100 reference %8.2f ms: %5.1fx)%s\n", what, ms, anchors[key].get<double>(),
                anchors[key].get<double>() / ms, note);
  else
    std::printf("  %-44s %9.2f ms%s\n", what, ms, note);
}

}  // namespace

int main(int argc, char** argv) {
  int tokens = 64;
  bool train = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--no-train")) train = false;
    else if (!std::strcmp(argv[i], "--precision") && i + 1 < argc)
      CudaBackend::set_precision(std::strcmp(argv[++i], "exact") ? CudaBackend::Precision::bf16_inputs
                                                                   : CudaBackend::Precision::exact);
    else {
      std::printf("usage: %s [--tokens N] [--no-train] [--precision exact|bf16]\n", argv[0]);
      return 2;
    }
  }
  if (!CudaBackend::available()) {
    std::printf("bench_cuda: no usable CUDA device here (cudaGetDeviceCount failed or found none): nothing to measure\n");
    return 0;
  }
  std::ifstream anchor_file(std::string(FLAS_CUDA_ANCHORS) + "/flas_reference_pytorch_h100.json");
  const nlohmann::json anchors = anchor_file ? nlohmann::json::parse(anchor_file) : nlohmann::json::object();
  std::printf("device: %s\n", CudaBackend::device_description().c_str());
  std::printf("reference: %s\n", anchors.value("device", std::string("(anchors not found)")).c_str());

  const gemma2::Config cfg = bench_cuda::gemma2_2b_config();
  auto t0 = clock_type::now();
  const Model model(cfg, bench::random_weights(cfg, DType::BF16));
  const Flow flow(cfg, model.inv_freq(), bench::one_block_flow(cfg, model.weights(), kLayer, DType::BF16));
  std::printf("random bf16 weights made in %.1f s\n", std::chrono::duration<double>(clock_type::now() - t0).count());

  const double bytes = bench_cuda::weight_bytes(model.weights());
  const double bw = peak_bandwidth_gbs();
  const double floor_ms = bw > 0 ? bytes / (bw * 1e9) * 1e3 : 0;
  std::printf("weights %.2f GB (bf16); peak memory bandwidth %.0f GB/s -> decode floor %.2f ms/token\n", bytes / 1e9, bw,
              floor_ms);

  // LM prefill and decode.
  gemma2::NoTap none;
  {
    auto cache = model.new_cache(1, kPrompt);
    (void)model.forward(prompt_ids(kPrompt, cfg.vocab_size), Tensor{}, cache);  // uploads every weight
  }
  t0 = clock_type::now();
  {
    auto cache = model.new_cache(1, kPrompt);
    (void)model.logits(Model::last_positions(model.forward(prompt_ids(kPrompt, cfg.vocab_size), Tensor{}, cache)));
  }
  const double lm_prefill = ms_since(t0);
  const double base_eager = decode_ms(model, none, tokens, nullptr);
  cuda::StepGraph base_graph;
  const double base_graphed = decode_ms(model, none, tokens, &base_graph);

  // Steered: a 1-block flow at layer 20, N = 3, T = 2, an 8-token concept.
  Tensor cids = prompt_ids(8, cfg.vocab_size), cmask = Tensor::empty({1, 8}, DType::U8);
  std::fill_n(cmask.data<std::uint8_t>(), 8, std::uint8_t(1));
  const auto concepts = condition::encode_concepts(model, cids, cmask);
  Steering tap(flow, flow.condition(concepts), {kLayer, kSteps, {2.0f}, {}, 1.0f});
  const double steered_eager = decode_ms(model, tap, tokens, nullptr);
  cuda::StepGraph steered_graph;
  const double steered_graphed = decode_ms(model, tap, tokens, &steered_graph);

  // Flow prefill: the tap alone over a 128-token prompt.
  Tensor pos = Tensor::empty({1, kPrompt}, DType::I64);
  for (std::int64_t i = 0; i < kPrompt; ++i) pos.data<std::int64_t>()[i] = i;
  std::vector<std::uint8_t> valid(std::size_t(kPrompt), 1);
  CudaTensor h = CudaTensor::empty({1, kPrompt, cfg.hidden_size}, DType::F32);
  CudaBackend::fill(h, 0.5f);
  double flow_prefill = 0;
  for (int rep = 0; rep < 2; ++rep) {  // the first run warms caches
    Steering prefill_tap(flow, flow.condition(concepts), {kLayer, kSteps, {2.0f}, {}, 1.0f});
    gemma2::TapSite<CudaBackend> site{kLayer, h, pos, valid.data(), kPrompt, 0};
    t0 = clock_type::now();
    prefill_tap(site);
    flow_prefill = ms_since(t0);
  }

  std::printf("\nGemma-2-2B shapes, bf16 weights, batch 1, %lld-token prompt, %d decode tokens:\n", (long long)kPrompt,
              tokens);
  row("LM prefill, 128 tokens", lm_prefill, anchors, "lm_prefill128_ms");
  row("LM decode / token (eager)", base_eager, anchors, "lm_decode_token_ms");
  row("LM decode / token (CUDA graph per step)", base_graphed, anchors, "lm_decode_token_ms");
  std::printf("  %-44s %9.2f ms   (%.0f%% of the graphed decode)\n", "  bandwidth floor / token", floor_ms,
              base_graphed > 0 ? 100.0 * floor_ms / base_graphed : 0.0);
  row("steered decode / token, N=3 (eager)", steered_eager, anchors, nullptr);
  row("steered decode / token, N=3 (CUDA graph)", steered_graphed, anchors, nullptr);
  row("  flow share / token (graphed difference)", steered_graphed - base_graphed, anchors,
      "flow_decode_token_N3_ms_blocks1");
  row("flow prefill, 128 tokens, N=3", flow_prefill, anchors, "flow_prefill128_N3_ms_blocks1");
  std::printf("  graphs: base %lld instantiations / %lld updates, steered %lld / %lld, %zu nodes per steered step\n",
              (long long)base_graph.stats().instantiations, (long long)base_graph.stats().updates,
              (long long)steered_graph.stats().instantiations, (long long)steered_graph.stats().updates,
              steered_graph.stats().nodes);

  if (train) {
    const auto& blk = flow.weights().blocks.at(0);
    const bench_cuda::BlockWeights cross{&blk.pre_cross_norm, &blk.cross.q_proj, &blk.cross.k_proj, &blk.cross.v_proj,
                                         &blk.cross.o_proj, &blk.post_cross_norm, nullptr, nullptr, nullptr, nullptr,
                                         nullptr};
    const bench_cuda::BlockWeights self{&blk.pre_sa_norm, &blk.self_attn.q_proj, &blk.self_attn.k_proj,
                                        &blk.self_attn.v_proj, &blk.self_attn.o_proj, &blk.post_sa_norm,
                                        &blk.pre_mlp_norm, &blk.mlp.gate_proj, &blk.mlp.up_proj, &blk.mlp.down_proj,
                                        &blk.post_mlp_norm};
    (void)bench_cuda::train_step(cfg, model.weights(), model.inv_freq(), cross, self, kLayer, kSteps, 2.0f, 4, 256, 16);
    const auto t = bench_cuda::train_step(cfg, model.weights(), model.inv_freq(), cross, self, kLayer, kSteps, 2.0f, 4,
                                          256, 16);
    std::printf("\ntraining step, batch 4 x 256, N=3, flow at layer %d (op-sequence proxy, see train_step_proxy.hpp):\n",
                kLayer);
    row("base layers 0..L forward", t.base_lower_ms, anchors, nullptr);
    row("flow forward (3 Euler steps, activations kept)", t.flow_forward_ms, anchors, nullptr);
    row("upper layers forward", t.upper_forward_ms, anchors, nullptr);
    row("LM head + soft-capped cross-entropy + VJP", t.head_ms, anchors, nullptr);
    row("upper layers backward", t.upper_backward_ms, anchors, nullptr);
    row("flow backward (with parameter gradients)", t.flow_backward_ms, anchors, nullptr);
    row("flow forward + backward", t.flow_forward_ms + t.flow_backward_ms, anchors,
        "flow_train_b4s256_N3_fwdbwd_ms_blocks1");
    row("whole step", t.total_ms(), anchors, "flas_train_step_b4s256_ms");
    std::printf("  device memory in use after the step: %.1f GB (reference peak %.1f GB)\n", used_device_gb(),
                anchors.value("flas_train_step_peak_GB", 0.0));
  }
  return 0;
}
