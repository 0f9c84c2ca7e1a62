// Steering checked against second computations: each row of a mixed batch (own concept, own T) equals
// the row alone; cached prefill + decode equals recomputing the whole sequence; T = 0 is exactly the
// base model; steered logits differ from unsteered ones.
#include <doctest/doctest.h>

#include "flas/condition/concept_encoder.hpp"
#include "flas/generate/generate.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas_sets.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;
using flas::testing::pick_rows;

namespace {
template <class B>
struct Rig {
  flas::testing::FlasSet fs = flas::testing::FlasSet::all().at(0);
  io::SafeTensorsFile fx = io::SafeTensorsFile::open(fs.set.file);
  gemma2::Model<B> base = gemma2::Model<B>::load(fs.base_dir);
  field::FlasFlow<B> flow = flas::testing::load_flow(base, fs.flow);

  // Steps of greedy steering for prompts with per-row concept rows (of concept.*) and T.
  GenerateResult run(const std::vector<std::vector<std::int64_t>>& prompts, const std::vector<std::int64_t>& concept_rows,
                     std::vector<float> T, std::int64_t new_tokens, int N = 2) {
    const auto concepts = condition::encode_concepts(base, pick_rows(fx.get("concept.input_ids"), concept_rows),
                                                     pick_rows(fx.get("concept.attention_mask"), concept_rows));
    gemma2::FlowSteering<B, field::FlasFlow<B>> tap(flow, flow.condition(concepts), {fs.layer, N, std::move(T), {}, 1.0f});
    GenerateOptions opt;
    opt.max_new_tokens = new_tokens;
    opt.stop_ids = {-1};
    opt.keep_step_logits = true;
    return generate(base, prompts, opt, tap);
  }
};

std::vector<std::int64_t> prompt(std::size_t n, std::int64_t salt) {
  std::vector<std::int64_t> v{2};
  for (std::size_t i = 1; i < n; ++i) v.push_back(3 + (std::int64_t(i) * 29 + salt * 13) % 500);
  return v;
}
}  // namespace

TEST_CASE_TEMPLATE("each row of a mixed batch gets exactly what it gets alone", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  const std::vector<std::vector<std::int64_t>> prompts{prompt(7, 1), prompt(3, 2), prompt(5, 3)};
  const std::vector<std::int64_t> rows{1, 0, 1};
  const std::vector<float> T{2.0f, 0.7f, 0.0f};
  auto batch = rig.run(prompts, rows, T, 6);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    auto alone = rig.run({prompts[b]}, {rows[b]}, {T[b]}, 6);
    CHECK(alone.tokens[0] == batch.tokens[b]);
    CHECK(max_rel_diff(batch.step_logits[std::int64_t(b)], alone.step_logits[0]) <= 1e-5);
  }
}

TEST_CASE_TEMPLATE("steered cached decode equals recomputing the whole sequence", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  auto ctx = prompt(6, 4);
  auto r = rig.run({ctx}, {0}, {1.5f}, 10);  // runs past the sliding window (8)
  const std::int64_t V = rig.base.config().vocab_size;
  for (std::int64_t k = 0; k < 10; ++k) {
    auto full = rig.run({ctx}, {0}, {1.5f}, 1);  // a fresh prefill of the whole context
    CHECK(max_rel_diff(r.step_logits[0][k].view({1, V}), full.step_logits[0][0].view({1, V})) <= 1e-5);
    ctx.push_back(r.tokens[0][std::size_t(k)]);
  }
}

TEST_CASE_TEMPLATE("T = 0 is exactly the base model; T > 0 is not", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  const std::vector<std::vector<std::int64_t>> prompts{prompt(5, 5), prompt(8, 6)};
  auto zero = rig.run(prompts, {0, 1}, {0.0f, 0.0f}, 5);
  GenerateOptions opt;
  opt.max_new_tokens = 5;
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  auto plain = generate(rig.base, prompts, opt, gemma2::NoTap{});
  CHECK(max_rel_diff(zero.step_logits, plain.step_logits) == 0);
  auto moved = rig.run(prompts, {0, 1}, {2.0f, 2.0f}, 1);
  CHECK(max_rel_diff(moved.step_logits[0][0], plain.step_logits[0][0]) > 1e-2);
}
