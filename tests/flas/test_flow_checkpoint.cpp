// Flow checkpoints and initialisation: save/load round trip (f32 and bf16), refusal of checkpoints that
// do not fit the base model, and initialisation from base layer L checked against the reference flow
// (whose projections the reference copied from that layer, then perturbed by ~10%: cosine ≈ 0.994,
// while another layer's weights are uncorrelated).
#include <doctest/doctest.h>

#include "flas/field/flow_init.hpp"
#include "flas_sets.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {
double cosine(const Tensor& a, const Tensor& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = element_as_double(a, i), y = element_as_double(b, i);
    ab += x * y, aa += x * x, bb += y * y;
  }
  return ab / std::sqrt(aa * bb);
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("flas_test_" + std::to_string(::getpid()) + "_" + name);
}
}  // namespace

TEST_CASE("a flow saved and loaded again is the same flow, in f32 and bf16") {
  const auto fs = flas::testing::FlasSet::all().at(0);
  const auto cfg = gemma2::Config::load(fs.base_dir / "config.json");
  auto w = field::load_flow_weights(fs.flow, cfg);
  const auto file = temp_file("flow.safetensors");
  field::save_flow(file, w, {fs.layer, 3, 1.5f});
  const auto back = field::load_flow_weights(file, cfg);
  CHECK(back.switches == w.switches);
  CHECK(back.blocks.size() == w.blocks.size());
  int compared = 0;
  auto& bw = const_cast<field::FlowWeights&>(back);
  std::vector<Tensor> got;
  field::for_each_flow_parameter(bw, [&](const std::string&, Tensor& t) { got.push_back(t); });
  field::for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) {
    INFO(name);
    CHECK(max_rel_diff(got.at(std::size_t(compared++)), t) == 0);
  });
  CHECK(compared == 2 * 22 + 4);  // per block: 9 cross-attention, 7 self-attention, 6 MLP
  const auto meta = field::read_flow_meta(field::flow_meta_path(file));
  CHECK(meta.layer == fs.layer);
  CHECK(meta.steps == 3);
  CHECK(meta.flowtime == 1.5f);

  field::for_each_flow_parameter(w, [&](const std::string&, Tensor& t) { t = convert(t, DType::BF16); });
  field::save_flow(file, w, {fs.layer, 3, 1.5f});
  auto half = field::load_flow_weights(file, cfg);
  field::for_each_flow_parameter(half, [&](const std::string& name, Tensor& t) {
    INFO(name);
    CHECK(t.dtype() == DType::BF16);
  });
  std::filesystem::remove(file);
  std::filesystem::remove(field::flow_meta_path(file));
}

TEST_CASE("a flow that does not fit the base model is refused, naming the tensor") {
  const auto fs = flas::testing::FlasSet::all().at(0);
  const auto chat = gemma2::Config::load(std::filesystem::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat" / "config.json");
  CHECK_THROWS_WITH_AS(field::load_flow_weights(fs.flow, chat),
                       doctest::Contains("tensor 'time_embed.mlp.0.weight' has shape [64, 128] but the base model (hidden 256"),
                       flas::Error);
  const auto cfg = gemma2::Config::load(fs.base_dir / "config.json");
  auto w = field::load_flow_weights(fs.flow, cfg);
  std::vector<std::pair<std::string, Tensor>> tensors;
  field::for_each_flow_parameter(w, [&](const std::string& n, Tensor& t) {
    if (n != "blocks.1.mlp_gate") tensors.emplace_back(n, t);
  });
  const auto file = temp_file("broken_flow.safetensors");
  io::save_safetensors(file, tensors);
  CHECK_THROWS_WITH_AS(field::load_flow_weights(file, cfg), doctest::Contains("missing tensor 'blocks.1.mlp_gate'"),
                       flas::Error);
  tensors.emplace_back("blocks.1.mlp_gate", w.blocks[1].mlp_gate);
  tensors.emplace_back("blocks.0.extra_thing", w.blocks[1].mlp_gate);
  io::save_safetensors(file, tensors);
  CHECK_THROWS_WITH_AS(field::load_flow_weights(file, cfg), doctest::Contains("unexpected tensor 'blocks.0.extra_thing'"),
                       flas::Error);
  std::filesystem::remove(file);
}

TEST_CASE("initialisation from base layer L copies what the reference copies") {
  const auto fs = flas::testing::FlasSet::all().at(0);
  const auto cfg = gemma2::Config::load(fs.base_dir / "config.json");
  const auto ckpt = io::Checkpoint::open(fs.base_dir);
  const auto base = gemma2::load_weights(ckpt, cfg);
  auto ref = field::load_flow_weights(fs.flow, cfg);
  auto init = field::init_flow(cfg, base, fs.layer, {fs.blocks, {}, true, 0.1f, 7});
  std::map<std::string, Tensor> ref_params;
  field::for_each_flow_parameter(ref, [&](const std::string& n, Tensor& t) { ref_params[n] = t; });
  int copied = 0;
  field::for_each_flow_parameter(init, [&](const std::string& n, Tensor& t) {
    INFO(n);
    REQUIRE(ref_params.count(n));
    CHECK(t.shape() == ref_params[n].shape());
    const bool from_base = n.find("self_attn.") != std::string::npos || n.find("gate_proj") != std::string::npos ||
                           n.find("up_proj") != std::string::npos || n.find("down_proj") != std::string::npos;
    if (from_base) {
      CHECK(cosine(t, ref_params[n]) > 0.98);
      ++copied;
    }
    if (n.find("_gate") == n.size() - 5) CHECK(element_as_double(t, 0) == doctest::Approx(0.1));
    if (n.find("time_embed.mlp.2") == 0 || n.find("_norm.weight") != std::string::npos && n.find("cross") != std::string::npos)
      CHECK(max_rel_diff(t, zeros(t.shape())) == 0);
  });
  CHECK(copied == fs.blocks * 7);
  auto wrong = field::init_flow(cfg, base, fs.layer == 0 ? 1 : 0, {fs.blocks, {}, true, 0.1f, 7});
  CHECK(std::abs(cosine(wrong.blocks[0].self_attn.q_proj, ref.blocks[0].self_attn.q_proj)) < 0.2);
  auto xav = field::init_flow(cfg, base, fs.layer, {1, {}, false, 0.1f, 7});
  CHECK(max_rel_diff(xav.blocks[0].mlp.gate_proj, base.layers[std::size_t(fs.layer)].mlp.gate_proj) > 0.5);
  CHECK_THROWS_AS(field::init_flow(cfg, base, 99, {}), flas::Error);
}
