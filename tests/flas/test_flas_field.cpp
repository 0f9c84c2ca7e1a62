// The FLAS flow field against the reference implementation: concept encoder, v(h, t, c) with per-row
// t, the flow without self-attention, and a concept longer than the sliding window.
#include <doctest/doctest.h>

#include "flas/condition/concept_encoder.hpp"
#include "flas_sets.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {
constexpr double tol = 1e-5;

// v(h, t, C) of a whole sequence without padding: positions 0..S−1, a fresh slot cache.
template <class B>
Tensor velocity_of(const field::FlasFlow<B>& flow, const gemma2::Model<B>& base, const Tensor& h, const Tensor& t,
                   const condition::EncodedConcepts<B>& concepts) {
  const std::int64_t Bn = h.dim(0), S = h.dim(1);
  Tensor pos = Tensor::empty({Bn, S}, DType::I64);
  for (std::int64_t i = 0; i < Bn * S; ++i) pos.data<std::int64_t>()[i] = i % S;
  std::vector<std::uint8_t> valid(std::size_t(Bn * S), 1);
  gemma2::TokenLayout at{pos, 0, S, valid.data()};
  auto cache = flow.new_slot_cache(Bn, S);
  auto hb = convert(h, B::activation_dtype);
  const auto times = flas::testing::floats(t);
  (void)base;
  return flow.velocity(hb, times, flow.condition(concepts), at, cache);
}

template <class B>
void check_set(const flas::testing::FlasSet& fs) {
  flas::testing::SetReport report(std::string("flas field/") + B::name, fs.set.tag);
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  auto base = gemma2::Model<B>::load(fs.base_dir);
  auto flow = flas::testing::load_flow(base, fs.flow);
  CHECK(flow.blocks() == fs.blocks);

  const auto concepts = condition::encode_concepts(base, fx.get("concept.input_ids"), fx.get("concept.attention_mask"));
  CHECK(report.check(max_rel_diff(concepts.hidden, fx.get("concept.hidden")), tol));

  const Tensor v = velocity_of(flow, base, fx.get("velocity.h"), fx.get("velocity.t"), concepts);
  CHECK(report.check(max_rel_diff(v, fx.get("velocity.v")), tol));

  if (std::filesystem::exists(fs.flow_noselfattn) && fx.contains("noselfattn.v")) {
    auto plain = flas::testing::load_flow(base, fs.flow_noselfattn);
    CHECK_FALSE(plain.weights().switches.self_attn);
    const Tensor v2 = velocity_of(plain, base, fx.get("velocity.h"), fx.get("velocity.t"), concepts);
    CHECK(report.check(max_rel_diff(v2, fx.get("noselfattn.v")), tol));
  }

  if (std::filesystem::exists(fs.steps)) {  // a concept longer than the sliding window
    auto st = io::SafeTensorsFile::open(fs.steps);
    const auto lc = condition::encode_concepts(base, st.get("longconcept.input_ids"), st.get("longconcept.attention_mask"));
    CHECK(report.check(max_rel_diff(lc.hidden, st.get("longconcept.hidden")), tol));
    const Tensor h = st.get("longconcept.h");
    const condition::EncodedConcepts<B> both{flas::testing::pick_rows(lc.hidden, {0, 0}),
                                             flas::testing::pick_rows(lc.mask, {0, 0})};
    const Tensor v3 = velocity_of(flow, base, h, st.get("longconcept.t"), both);
    CHECK(report.check(max_rel_diff(v3, st.get("longconcept.v")), tol));
  }
}
}  // namespace

TEST_CASE_TEMPLATE("FLAS field fixture sets match the reference", B, FLAS_HOST_BACKENDS) {
  const auto sets = flas::testing::FlasSet::all();
  REQUIRE(!sets.empty());
  for (const auto& s : sets) check_set<B>(s);
}
