// Generation checked against second computations: cached decode vs full recomputation, a batch row vs
// the same row alone, the tap, sampling reproducibility and the context limit.
#include <doctest/doctest.h>

#include "flas/generate/generate.hpp"
#include "flas/models/gemma2/model.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {
const std::filesystem::path tiny_dir = std::filesystem::path(FLAS_PROJECT_FIXTURES) / "gemma2-tiny";

std::vector<std::int64_t> some_ids(std::size_t n, std::int64_t salt) {
  std::vector<std::int64_t> v{2};
  for (std::size_t i = 1; i < n; ++i) v.push_back(3 + (std::int64_t(i) * 37 + salt * 11) % 500);
  return v;
}

// Logits of the last position after running `ids` from scratch in one pass.
template <class B>
Tensor full_pass_last_logits(const gemma2::Model<B>& m, const std::vector<std::int64_t>& ids) {
  Tensor t = Tensor::empty({1, std::int64_t(ids.size())}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  auto cache = m.new_cache(1, t.dim(1));
  return host_logits_f32(m.logits(gemma2::Model<B>::last_positions(m.forward(t, Tensor{}, cache))));
}
}  // namespace

TEST_CASE_TEMPLATE("cached decode equals full recomputation, past the sliding window", B, FLAS_HOST_BACKENDS) {
  auto model = gemma2::Model<B>::load(tiny_dir);
  GenerateOptions opt;
  opt.max_new_tokens = 14;  // window is 8: later steps see a sliding mask over cached keys
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  const auto prompt = some_ids(5, 1);
  auto r = generate(model, {prompt}, opt, gemma2::NoTap{});
  auto ctx = prompt;
  const std::int64_t V = model.config().vocab_size;
  for (std::int64_t k = 0; k < opt.max_new_tokens; ++k) {
    const Tensor full = full_pass_last_logits(model, ctx);
    const Tensor step = r.step_logits[0][k].view({1, V});
    CHECK(max_rel_diff(step, full) <= 1e-5);
    ctx.push_back(r.tokens[0][std::size_t(k)]);
  }
}

TEST_CASE_TEMPLATE("a row in a left-padded batch gets exactly what it gets alone", B, FLAS_HOST_BACKENDS) {
  auto model = gemma2::Model<B>::load(tiny_dir);
  GenerateOptions opt;
  opt.max_new_tokens = 10;
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  const std::vector<std::vector<std::int64_t>> prompts{some_ids(9, 2), some_ids(4, 3), some_ids(6, 4)};
  auto batch = generate(model, prompts, opt, gemma2::NoTap{});
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    auto alone = generate(model, {prompts[b]}, opt, gemma2::NoTap{});
    CHECK(alone.tokens[0] == batch.tokens[b]);
    CHECK(max_rel_diff(batch.step_logits[std::int64_t(b)], alone.step_logits[0]) <= 1e-5);
  }
}

namespace {
// Adds a constant to the residual stream after one layer and records what it saw.
template <class B>
struct ShiftTap {
  int layer;
  float shift;
  std::vector<std::int64_t> pasts;
  bool wants(int l) const { return l == layer; }
  void operator()(gemma2::TapSite<B>& s) {
    pasts.push_back(s.past);
    Tensor ones = Tensor::empty(s.h.shape(), B::activation_dtype);
    B::fill(ones, 1.0f);
    B::axpy(s.h, shift, ones);
  }
};
}  // namespace

TEST_CASE_TEMPLATE("the steering tap sees prefill and decode and can replace the stream", B, FLAS_HOST_BACKENDS) {
  auto model = gemma2::Model<B>::load(tiny_dir);
  GenerateOptions opt;
  opt.max_new_tokens = 4;
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  const auto prompt = some_ids(6, 5);
  auto base = generate(model, {prompt}, opt, gemma2::NoTap{});
  ShiftTap<B> zero{1, 0.0f, {}};
  auto same = generate(model, {prompt}, opt, zero);
  CHECK(max_rel_diff(same.step_logits, base.step_logits) == 0);
  CHECK(zero.pasts == std::vector<std::int64_t>{0, 6, 7, 8});
  ShiftTap<B> shifted{1, 3.0f, {}};
  auto moved = generate(model, {prompt}, opt, shifted);
  CHECK(max_rel_diff(moved.step_logits[0][0], base.step_logits[0][0]) > 1e-3);
}

TEST_CASE("sampling is reproducible from its seed and top_k = 1 is greedy") {
  auto model = gemma2::Model<ScalarBackend<float>>::load(tiny_dir);
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  opt.stop_ids = {-1};
  opt.sampling = {1.0f, 0, 0.9f, 1234};
  const auto prompt = some_ids(5, 6);
  auto a = generate(model, {prompt}, opt, gemma2::NoTap{});
  auto b = generate(model, {prompt}, opt, gemma2::NoTap{});
  CHECK(a.tokens == b.tokens);
  opt.sampling.seed = 99;
  opt.sampling.temperature = 5.0f;
  opt.sampling.top_p = 1.0f;
  auto c = generate(model, {prompt}, opt, gemma2::NoTap{});
  CHECK(c.tokens != a.tokens);  // a hot, different seed: the odds of all 8 matching are negligible
  opt.sampling = {0.7f, 1, 1.0f, 7};
  GenerateOptions greedy = opt;
  greedy.sampling = {};
  CHECK(generate(model, {prompt}, opt, gemma2::NoTap{}).tokens == generate(model, {prompt}, greedy, gemma2::NoTap{}).tokens);
}

TEST_CASE("a prompt longer than the context is refused with a clear error") {
  auto model = gemma2::Model<ScalarBackend<float>>::load(tiny_dir);
  GenerateOptions opt;
  opt.max_new_tokens = 10;
  const auto prompt = some_ids(std::size_t(model.config().max_position_embeddings), 7);
  CHECK_THROWS_WITH_AS(generate(model, {prompt}, opt, gemma2::NoTap{}),
                       doctest::Contains("exceeds the model's context of 256 tokens"), flas::Error);
  CHECK_THROWS_WITH_AS(generate(model, {std::vector<std::int64_t>{}}, opt, gemma2::NoTap{}),
                       doctest::Contains("empty prompt"), flas::Error);
}
