// Steering against the references: Euler with per-row T (euler.*), the observer's trajectory
// (trajectory.*), steered greedy generation (generate.*), and step logits under teacher forcing
// through the cached prefill + decode path (single.*, batch.*, mixed.*).
#include <doctest/doctest.h>

#include "flas/condition/concept_encoder.hpp"
#include "flas/generate/generate.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas_sets.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {
constexpr double tol = 1e-5;

template <class B>
struct Trajectory {
  std::vector<Tensor> h, v;
  void on_step(int, std::span<const float>, const tensor_t<B>& hk, const tensor_t<B>& vk) {
    h.push_back(clone(hk));
    v.push_back(clone(vk));
  }
};

std::vector<std::vector<std::int64_t>> unpadded_rows(const Tensor& ids, const Tensor& mask) {
  std::vector<std::vector<std::int64_t>> rows(std::size_t(ids.dim(0)));
  for (std::int64_t b = 0; b < ids.dim(0); ++b)
    for (std::int64_t s = 0; s < ids.dim(1); ++s)
      if (!mask.defined() || element_as_double(mask, b * ids.dim(1) + s) != 0)
        rows[std::size_t(b)].push_back(ids.data<std::int64_t>()[b * ids.dim(1) + s]);
  return rows;
}

template <class B>
void check_euler(const flas::testing::FlasSet& fs, flas::testing::SetReport& report) {
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  auto base = gemma2::Model<B>::load(fs.base_dir);
  auto flow = flas::testing::load_flow(base, fs.flow);
  const auto concepts = condition::encode_concepts(base, fx.get("concept.input_ids"), fx.get("concept.attention_mask"));
  const Tensor h_in = fx.get("velocity.h");
  const std::int64_t Bn = h_in.dim(0), S = h_in.dim(1);
  Tensor pos = Tensor::empty({Bn, S}, DType::I64);
  for (std::int64_t i = 0; i < Bn * S; ++i) pos.data<std::int64_t>()[i] = i % S;
  std::vector<std::uint8_t> valid(std::size_t(Bn * S), 1);

  auto run = [&](const Tensor& T, int N, Trajectory<B>& traj) {
    gemma2::SteeringOptions o{fs.layer, N, flas::testing::floats(T), {}, 1.0f};
    gemma2::FlowSteering<B, field::FlasFlow<B>, Trajectory<B>&> tap(flow, flow.condition(concepts), o, traj);
    auto h = convert(h_in, B::activation_dtype);
    gemma2::TapSite<B> site{fs.layer, h, pos, valid.data(), S, 0};
    tap(site);
    return h;
  };
  Trajectory<B> traj;
  const Tensor h_out = run(fx.get("euler.T"), int(fx.get("euler.n_steps").data<std::int64_t>()[0]), traj);
  CHECK(report.check(max_rel_diff(h_out, fx.get("euler.h_out")), tol));

  if (std::filesystem::exists(fs.steps)) {
    auto st = io::SafeTensorsFile::open(fs.steps);
    Trajectory<B> tr;
    const Tensor hN = run(st.get("trajectory.T"), int(st.get("trajectory.n_steps").data<std::int64_t>()[0]), tr);
    const Tensor ref_h = st.get("trajectory.h"), ref_v = st.get("trajectory.v");
    REQUIRE(tr.h.size() + 1 == std::size_t(ref_h.dim(0)));
    for (std::size_t k = 0; k < tr.h.size(); ++k) {
      CHECK(report.check(max_rel_diff(tr.h[k], ref_h[std::int64_t(k)]), tol));
      CHECK(report.check(max_rel_diff(tr.v[k], ref_v[std::int64_t(k)]), tol));
    }
    CHECK(report.check(max_rel_diff(hN, ref_h[ref_h.dim(0) - 1]), tol));
  }
}

// Greedy steered generation of prompts (ids + mask) with per-row concepts (ids + mask) and T.
template <class B>
GenerateResult steered(const gemma2::Model<B>& base, const field::FlasFlow<B>& flow, int layer, const Tensor& prompt_ids,
                       const Tensor& prompt_mask, const Tensor& concept_ids, const Tensor& concept_mask,
                       std::vector<float> T, int N, std::int64_t new_tokens,
                       const std::vector<std::vector<std::int64_t>>* teacher = nullptr) {
  const auto concepts = condition::encode_concepts(base, concept_ids, concept_mask);
  gemma2::FlowSteering<B, field::FlasFlow<B>> tap(flow, flow.condition(concepts), {layer, N, std::move(T), {}, 1.0f});
  GenerateOptions opt;
  opt.max_new_tokens = new_tokens;
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  opt.teacher_ids = teacher;
  return generate(base, unpadded_rows(prompt_ids, prompt_mask), opt, tap);
}

template <class B>
void check_generation(const flas::testing::FlasSet& fs, flas::testing::SetReport& report) {
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  auto base = gemma2::Model<B>::load(fs.base_dir);
  auto flow = flas::testing::load_flow(base, fs.flow);
  const int layer = int(fx.get("generate.layer").data<std::int64_t>()[0]);
  const int N = int(fx.get("generate.n_steps").data<std::int64_t>()[0]);
  const Tensor cids = fx.get("concept.input_ids"), cmask = fx.get("concept.attention_mask");
  auto ids_equal = [&](const GenerateResult& r, const Tensor& want) {
    bool same = true;
    for (std::int64_t b = 0; b < want.dim(0); ++b) {
      std::vector<std::int64_t> w(want[b].data<std::int64_t>(), want[b].data<std::int64_t>() + want.dim(1));
      same = same && r.tokens[std::size_t(b)] == w;
    }
    same ? report.pass() : report.fail();
    return same;
  };
  const Tensor single_ids = fx.get("generate.steered_ids");
  const Tensor c0 = flas::testing::pick_rows(cids, {0}), m0 = flas::testing::pick_rows(cmask, {0});
  const float T = fx.get("generate.flowtime").data<float>()[0];
  CHECK(ids_equal(steered(base, flow, layer, fx.get("generate.prompt_ids"), Tensor{}, c0, m0, {T}, N, single_ids.dim(1)),
                  single_ids));
  CHECK(ids_equal(steered(base, flow, layer, fx.get("generate.prompt_ids"), Tensor{}, c0, m0, {0.0f}, N, single_ids.dim(1)),
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
  auto teacher_forced = [&](const std::string& g, const std::string& ids_key, const std::string& logits_key,
                            std::vector<float> Ts) {
    const Tensor ids = st.get(g + "." + ids_key);
    const auto teacher = unpadded_rows(ids, Tensor{});
    const Tensor mask = st.contains(g + ".attention_mask") ? st.get(g + ".attention_mask") : Tensor{};
    auto r = steered(base, flow, sl, st.get(g + ".prompt_ids"), mask, st.get(g + ".concept_input_ids"),
                     st.get(g + ".concept_attention_mask"), std::move(Ts),
                     int(st.get(g + ".n_steps").data<std::int64_t>()[0]), ids.dim(1), &teacher);
    INFO(g << "." << logits_key);
    CHECK(report.check(max_rel_diff(r.step_logits, st.get(g + "." + logits_key)), tol));
  };
  teacher_forced("single", "ids", "step_logits", flas::testing::floats(st.get("single.T")));
  teacher_forced("single", "unsteered_ids", "unsteered_step_logits", {0.0f});
  teacher_forced("batch", "ids", "step_logits", flas::testing::floats(st.get("batch.T")));
  teacher_forced("mixed", "ids", "step_logits", flas::testing::floats(st.get("mixed.T")));
}
}  // namespace

TEST_CASE_TEMPLATE("FLAS steering fixture sets match the reference", B, FLAS_HOST_BACKENDS) {
  const auto sets = flas::testing::FlasSet::all();
  REQUIRE(!sets.empty());
  for (const auto& s : sets) {
    flas::testing::SetReport report(std::string("flas steering/") + B::name, s.set.tag);
    check_euler<B>(s, report);
    check_generation<B>(s, report);
  }
}
