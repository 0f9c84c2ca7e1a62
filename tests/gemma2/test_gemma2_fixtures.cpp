// Gemma-2 against HF transformers: every gemma2_<tag> fixture set found (project folder and
// $FLAS_FIXTURES), on every host backend. Tolerance: max|Δ|/max|ref| ≤ 1e-5 in f32.
#include <doctest/doctest.h>

#include <map>

#include "flas/generate/generate.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/models/gemma2/model.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {

constexpr double tol = 1e-5;

// Captures the embedding output and every layer's output.
template <class B>
struct CaptureAll {
  std::map<int, Tensor> seen;
  bool wants(int) const { return true; }
  void operator()(gemma2::TapSite<B>& s) { seen[s.layer] = clone(s.h); }
};

Tensor to_u8(const Tensor& mask) { return convert(mask, DType::U8); }

template <class B>
void check_set(const flas::testing::FixtureSet& set) {
  flas::testing::SetReport report(std::string("gemma2/") + B::name, set.tag);
  auto fx = io::SafeTensorsFile::open(set.file);
  auto model = gemma2::Model<B>::load(set.folder / ("gemma2-" + set.tag));
  auto expect_close = [&](const std::string& what, const Tensor& got, const Tensor& ref, double bound) {
    const double d = max_rel_diff(got, ref);
    INFO(set.tag << " " << what << ": max rel diff " << d);
    CHECK(report.check(d, bound));
  };

  {  // unpadded batch: every layer, final norm, logits
    const Tensor ids = fx.get("full.input_ids");
    auto cache = model.new_cache(ids.dim(0), ids.dim(1));
    CaptureAll<B> cap;
    auto h = model.forward(ids, Tensor{}, cache, cap);
    expect_close("full.embed_out", cap.seen.at(-1), fx.get("full.embed_out"), tol);
    for (int l = 0; l < model.config().num_hidden_layers; ++l) {
      const std::string name = "full.layer" + std::to_string(l) + "_out";
      if (fx.contains(name)) expect_close(name, cap.seen.at(l), fx.get(name), tol);
    }
    expect_close("full.final_norm_out", h, fx.get("full.final_norm_out"), tol);
    expect_close("full.logits", model.logits(h), fx.get("full.logits"), tol);
  }
  {  // left-padded batch
    const Tensor ids = fx.get("padded.input_ids");
    const Tensor valid = to_u8(fx.get("padded.attention_mask"));
    auto cache = model.new_cache(ids.dim(0), ids.dim(1));
    const Tensor pos = gemma2::Model<B>::positions_for(cache, valid);
    const bool same_pos = max_rel_diff(pos, fx.get("padded.position_ids")) == 0;
    CHECK(same_pos);
    same_pos ? report.pass() : report.fail();
    auto h = model.forward(ids, valid, cache);
    expect_close("padded.logits", model.logits(h), fx.get("padded.logits"), tol);
  }
  {  // greedy decode with the KV cache (runs past the sliding window)
    const Tensor prompt = fx.get("decode.prompt_ids");
    const Tensor ref_ids = fx.get("decode.greedy_ids");
    std::vector<std::int64_t> p(prompt.data<std::int64_t>(), prompt.data<std::int64_t>() + prompt.numel());
    GenerateOptions opt;
    opt.max_new_tokens = ref_ids.dim(1);
    opt.stop_ids = {-1};  // the reference decodes a fixed number of tokens
    opt.keep_step_logits = true;
    auto r = generate(model, {p}, opt, gemma2::NoTap{});
    std::vector<std::int64_t> want(ref_ids.data<std::int64_t>(), ref_ids.data<std::int64_t>() + ref_ids.numel());
    CHECK(r.tokens[0] == want);
    r.tokens[0] == want ? report.pass() : report.fail();
    expect_close("decode.step_logits", r.step_logits, fx.get("decode.step_logits"), tol);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("gemma2 fixture sets match HF transformers", B, FLAS_HOST_BACKENDS) {
  const auto sets = flas::testing::discover("gemma2_", "_fixtures.safetensors");
  REQUIRE(!sets.empty());
  for (const auto& set : sets) check_set<B>(set);
}
