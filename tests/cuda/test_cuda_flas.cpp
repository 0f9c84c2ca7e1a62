// The FLAS flow on CudaBackend — the unchanged field::FlasFlow, FlowSteering and concept-encoder
// templates — against every flas_<tag> fixture set (f32, the project's 1e-5): concept encoder,
// v(h, t, c) with per-row t, the flow without self-attention, a concept longer than the window, Euler
// with per-row T and its trajectory, steered greedy generation, and teacher-forced step logits of
// the steps file (single, batch, mixed rows) — the last also with every decode step recorded as a
// CUDA graph, which must agree bit for bit. Then the variants the fixtures do not cover, against
// ScalarBackend<float> running the same weights: pooled-concept conditioning and a steering vector.
#include "cuda_test_support.hpp"
#include "flas/backends/cuda_flow.hpp"
#include "flas/condition/concept_encoder.hpp"
#include "flas/field/flow_init.hpp"
#include "flas/field/steering_vector.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas/flas_sets.hpp"  // tests/flas/flas_sets.hpp (tests/ is on the include path)

namespace flas::cuda_test {
namespace {

using flas::testing::max_rel_diff;
using Model = gemma2::Model<CudaBackend>;
using Flow = field::FlasFlow<CudaBackend>;
constexpr double tol = 1e-5;

struct Trajectory {
  std::vector<Tensor> h, v;
  void on_step(int, std::span<const float>, const CudaTensor& hk, const CudaTensor& vk) {
    h.push_back(to_host(hk));
    v.push_back(to_host(vk));
  }
};

// Positions 0..S−1 and all-valid slots for an unpadded [B, S] batch.
struct Unpadded {
  Tensor pos;
  std::vector<std::uint8_t> valid;
  Unpadded(std::int64_t B, std::int64_t S) : pos(Tensor::empty({B, S}, DType::I64)), valid(std::size_t(B * S), 1) {
    for (std::int64_t i = 0; i < B * S; ++i) pos.data<std::int64_t>()[i] = i % S;
  }
};

template <class F, class B>
Tensor velocity_of(const F& flow, const Tensor& h, const std::vector<float>& t, const typename F::Conditioning& c) {
  const std::int64_t Bn = h.dim(0), S = h.dim(1);
  Unpadded u(Bn, S);
  gemma2::TokenLayout at{u.pos, 0, S, u.valid.data()};
  auto cache = flow.new_slot_cache(Bn, S);
  tensor_t<B> hb;
  if constexpr (std::is_same_v<B, CudaBackend>) hb = dev(convert(h, DType::F32));
  else hb = convert(h, DType::F32);
  const auto v = flow.velocity(hb, t, c, at, cache);
  if constexpr (std::is_same_v<B, CudaBackend>) return to_host(v);
  else return v;
}

std::vector<std::vector<std::int64_t>> unpadded_rows(const Tensor& ids, const Tensor& mask) {
  std::vector<std::vector<std::int64_t>> rows(std::size_t(ids.dim(0)));
  for (std::int64_t b = 0; b < ids.dim(0); ++b)
    for (std::int64_t s = 0; s < ids.dim(1); ++s)
      if (!mask.defined() || element_as_double(mask, b * ids.dim(1) + s) != 0)
        rows[std::size_t(b)].push_back(ids.data<std::int64_t>()[b * ids.dim(1) + s]);
  return rows;
}

GenerateResult steered(const Model& base, const Flow& flow, int layer, const Tensor& prompt_ids, const Tensor& prompt_mask,
                       const Tensor& concept_ids, const Tensor& concept_mask, std::vector<float> T, int N,
                       std::int64_t new_tokens, const std::vector<std::vector<std::int64_t>>* teacher = nullptr,
                       cuda::StepGraph* graph = nullptr) {
  const auto concepts = condition::encode_concepts(base, concept_ids, concept_mask);
  gemma2::FlowSteering<CudaBackend, Flow> tap(flow, flow.condition(concepts), {layer, N, std::move(T), {}, 1.0f});
  GenerateOptions opt;
  opt.max_new_tokens = new_tokens;
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  opt.teacher_ids = teacher;
  return generate_on_device(base, unpadded_rows(prompt_ids, prompt_mask), opt, tap, graph);
}

void check_field(const flas::testing::FlasSet& fs, flas::testing::SetReport& report) {
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  const Model base = Model::load(fs.base_dir);
  const Flow flow = flas::testing::load_flow(base, fs.flow);
  const auto concepts = condition::encode_concepts(base, fx.get("concept.input_ids"), fx.get("concept.attention_mask"));
  CHECK(report.check(max_rel_diff(to_host(concepts.hidden), fx.get("concept.hidden")), tol));
  const auto t = flas::testing::floats(fx.get("velocity.t"));
  const Tensor v = velocity_of<Flow, CudaBackend>(flow, fx.get("velocity.h"), t, flow.condition(concepts));
  CHECK(report.check(max_rel_diff(v, fx.get("velocity.v")), tol));
  if (std::filesystem::exists(fs.flow_noselfattn) && fx.contains("noselfattn.v")) {
    const Flow plain = flas::testing::load_flow(base, fs.flow_noselfattn);
    const Tensor v2 = velocity_of<Flow, CudaBackend>(plain, fx.get("velocity.h"), t, plain.condition(concepts));
    CHECK(report.check(max_rel_diff(v2, fx.get("noselfattn.v")), tol));
  }
  if (std::filesystem::exists(fs.steps)) {
    auto st = io::SafeTensorsFile::open(fs.steps);
    const auto lc = condition::encode_concepts(base, st.get("longconcept.input_ids"), st.get("longconcept.attention_mask"));
    const Tensor lc_hidden = to_host(lc.hidden);
    CHECK(report.check(max_rel_diff(lc_hidden, st.get("longconcept.hidden")), tol));
    const condition::EncodedConcepts<CudaBackend> both{dev(flas::testing::pick_rows(lc_hidden, {0, 0})),
                                                       flas::testing::pick_rows(lc.mask, {0, 0})};
    const Tensor v3 = velocity_of<Flow, CudaBackend>(flow, st.get("longconcept.h"),
                                                     flas::testing::floats(st.get("longconcept.t")), flow.condition(both));
    CHECK(report.check(max_rel_diff(v3, st.get("longconcept.v")), tol));
  }
}

void check_euler(const flas::testing::FlasSet& fs, flas::testing::SetReport& report) {
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  const Model base = Model::load(fs.base_dir);
  const Flow flow = flas::testing::load_flow(base, fs.flow);
  const auto concepts = condition::encode_concepts(base, fx.get("concept.input_ids"), fx.get("concept.attention_mask"));
  const Tensor h_in = fx.get("velocity.h");
  const std::int64_t Bn = h_in.dim(0), S = h_in.dim(1);
  Unpadded u(Bn, S);
  auto run = [&](const Tensor& T, int N, Trajectory& traj) {
    gemma2::SteeringOptions o{fs.layer, N, flas::testing::floats(T), {}, 1.0f};
    gemma2::FlowSteering<CudaBackend, Flow, Trajectory&> tap(flow, flow.condition(concepts), o, traj);
    CudaTensor h = dev(convert(h_in, DType::F32));
    gemma2::TapSite<CudaBackend> site{fs.layer, h, u.pos, u.valid.data(), S, 0};
    tap(site);
    return to_host(h);
  };
  Trajectory traj;
  const Tensor h_out = run(fx.get("euler.T"), int(fx.get("euler.n_steps").data<std::int64_t>()[0]), traj);
  CHECK(report.check(max_rel_diff(h_out, fx.get("euler.h_out")), tol));
  if (!std::filesystem::exists(fs.steps)) return;
  auto st = io::SafeTensorsFile::open(fs.steps);
  Trajectory tr;
  const Tensor hN = run(st.get("trajectory.T"), int(st.get("trajectory.n_steps").data<std::int64_t>()[0]), tr);
  const Tensor ref_h = st.get("trajectory.h"), ref_v = st.get("trajectory.v");
  REQUIRE(tr.h.size() + 1 == std::size_t(ref_h.dim(0)));
  for (std::size_t k = 0; k < tr.h.size(); ++k) {
    CHECK(report.check(max_rel_diff(tr.h[k], ref_h[std::int64_t(k)]), tol));
    CHECK(report.check(max_rel_diff(tr.v[k], ref_v[std::int64_t(k)]), tol));
  }
  CHECK(report.check(max_rel_diff(hN, ref_h[ref_h.dim(0) - 1]), tol));
}

void check_generation(const flas::testing::FlasSet& fs, flas::testing::SetReport& report) {
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  const Model base = Model::load(fs.base_dir);
  const Flow flow = flas::testing::load_flow(base, fs.flow);
  const int layer = int(fx.get("generate.layer").data<std::int64_t>()[0]);
  const int N = int(fx.get("generate.n_steps").data<std::int64_t>()[0]);
  const Tensor cids = fx.get("concept.input_ids"), cmask = fx.get("concept.attention_mask");
  auto ids_equal = [&](const GenerateResult& r, const Tensor& want) {
    bool same = true;
    for (std::int64_t b = 0; b < want.dim(0); ++b)
      same = same && r.tokens[std::size_t(b)] ==
                         std::vector<std::int64_t>(want[b].data<std::int64_t>(), want[b].data<std::int64_t>() + want.dim(1));
    same ? report.pass() : report.fail();
    return same;
  };
  const Tensor single_ids = fx.get("generate.steered_ids");
  const Tensor c0 = flas::testing::pick_rows(cids, {0}), m0 = flas::testing::pick_rows(cmask, {0});
  const float T = fx.get("generate.flowtime").data<float>()[0];
  CHECK(ids_equal(steered(base, flow, layer, fx.get("generate.prompt_ids"), Tensor{}, c0, m0, {T}, N, single_ids.dim(1)),
                  single_ids));
  CHECK(ids_equal(steered(base, flow, layer, fx.get("generate.prompt_ids"), Tensor{}, c0, m0, {0.0f}, N,
                          single_ids.dim(1)),
                  fx.get("generate.unsteered_ids")));
  const Tensor batch_ids = fx.get("generate.batch_steered_ids");
  const Tensor c1 = flas::testing::pick_rows(cids, {1, 1}), m1 = flas::testing::pick_rows(cmask, {1, 1});
  const float Tb = fx.get("generate.batch_flowtime").data<float>()[0];
  CHECK(ids_equal(steered(base, flow, layer, fx.get("generate.batch_prompt_ids"), fx.get("generate.batch_attention_mask"),
                          c1, m1, {Tb, Tb}, N, batch_ids.dim(1)),
                  batch_ids));

  if (!std::filesystem::exists(fs.steps)) return;
  auto st = io::SafeTensorsFile::open(fs.steps);
  const int sl = int(st.get("layer").data<std::int64_t>()[0]);
  for (const std::string g : {"single", "batch", "mixed"}) {
    const Tensor ids = st.get(g + ".ids");
    const auto teacher = unpadded_rows(ids, Tensor{});
    const Tensor mask = st.contains(g + ".attention_mask") ? st.get(g + ".attention_mask") : Tensor{};
    auto run = [&](cuda::StepGraph* graph) {
      return steered(base, flow, sl, st.get(g + ".prompt_ids"), mask, st.get(g + ".concept_input_ids"),
                     st.get(g + ".concept_attention_mask"), flas::testing::floats(st.get(g + ".T")),
                     int(st.get(g + ".n_steps").data<std::int64_t>()[0]), ids.dim(1), &teacher, graph);
    };
    const auto eager = run(nullptr);
    INFO(g << ".step_logits");
    CHECK(report.check(max_rel_diff(eager.step_logits, st.get(g + ".step_logits")), tol));
    cuda::StepGraph graph;
    const auto graphed = run(&graph);
    CHECK(report.check(max_rel_diff(graphed.step_logits, eager.step_logits), 0.0));
    MESSAGE(g, ": steered decode graphs: ", graph.stats().launches, " launches, ", graph.stats().instantiations,
            " instantiations, ", graph.stats().updates, " updates, ", graph.stats().nodes, " nodes per step");
  }
}

TEST_CASE("cuda: FLAS fixture sets match the reference") {
  const auto sets = flas::testing::FlasSet::all();
  REQUIRE(!sets.empty());
  for (const auto& s : sets) {
    flas::testing::SetReport report("flas/cuda", s.set.tag);
    check_field(s, report);
    check_euler(s, report);
    check_generation(s, report);
  }
}

TEST_CASE("cuda: pooled-concept and steering-vector fields match the scalar backend") {
  using Ref32 = ScalarBackend<float>;
  const auto fs = flas::testing::FlasSet::all().at(0);
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  const Model base = Model::load(fs.base_dir);
  const auto ref_base = gemma2::Model<Ref32>::load(fs.base_dir);
  field::FlowSwitches sw;
  sw.cross_attn = false;
  sw.pooled = true;
  field::FlowWeights w = field::init_flow(base.config(), base.weights(), fs.layer, {1, sw, true, 0.1f, 3});
  std::fill_n(w.time.w2.data<float>(), w.time.w2.numel(), 0.01f);
  const Flow pooled(base.config(), base.inv_freq(), w);
  const field::FlasFlow<Ref32> ref_pooled(ref_base.config(), ref_base.inv_freq(), w);
  const Tensor ids = fx.get("concept.input_ids"), mask = fx.get("concept.attention_mask");
  const Tensor h = fx.get("velocity.h");
  const std::vector<float> t{0.3f, 1.1f};
  const Tensor got = velocity_of<Flow, CudaBackend>(pooled, h, t, pooled.condition(condition::encode_concepts(base, ids, mask)));
  const Tensor want = velocity_of<field::FlasFlow<Ref32>, Ref32>(
      ref_pooled, h, t, ref_pooled.condition(condition::encode_concepts(ref_base, ids, mask)));
  CHECK(max_rel_diff(got, want) <= tol);

  Tensor d = Tensor::empty({2, h.dim(2)}, DType::BF16);
  for (std::int64_t i = 0; i < d.numel(); ++i) d.data<bf16>()[i] = f32_to_bf16(float(std::sin(0.37 * double(i))));
  const field::SteeringVectorField<CudaBackend> f(d);
  const std::vector<float> T{1.5f, 0.0f};
  gemma2::FlowSteering<CudaBackend, field::SteeringVectorField<CudaBackend>> tap(f, f.condition({1, 0}),
                                                                                  {fs.layer, 3, T, {}, 1.0f});
  Unpadded u(h.dim(0), h.dim(1));
  CudaTensor hd = dev(h);
  gemma2::TapSite<CudaBackend> site{fs.layer, hd, u.pos, u.valid.data(), h.dim(1), 0};
  tap(site);
  Tensor expect = clone(h);
  const float dt = T[0] / 3.0f;  // 0.5: exact in bf16, the steering vector's dtype
  for (std::int64_t s = 0; s < h.dim(1); ++s)
    for (std::int64_t i = 0; i < h.dim(2); ++i)
      for (int k = 0; k < 3; ++k) expect[0][s].data<float>()[i] += dt * bf16_to_f32(d[1].data<bf16>()[i]);
  CHECK(max_rel_diff(to_host(hd), expect) <= 1e-6);
  CHECK(max_rel_diff(to_host(hd)[1], h[1]) == 0);  // T = 0: untouched
}

}  // namespace
}  // namespace flas::cuda_test
