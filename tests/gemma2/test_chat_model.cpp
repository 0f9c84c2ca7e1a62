// The bundled chat model (bf16 weights) against HF: the first prompt's logits at 1e-3 (HF made them
// with a bf16-rounded RoPE table, SPEC.md) and the greedy continuations token for token.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;

namespace {
const std::filesystem::path chat_dir = std::filesystem::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat";

nlohmann::json greedy_samples() {
  std::ifstream f(chat_dir / "greedy_samples.json");
  return nlohmann::json::parse(f);
}
}  // namespace

TEST_CASE_TEMPLATE("chat model: prompt tokens and logits match HF", B, FLAS_HOST_BACKENDS) {
  auto model = gemma2::Model<B>::load(chat_dir);
  auto tok = io::Tokenizer::load(chat_dir);
  auto ref = io::SafeTensorsFile::open(chat_dir / "reference_logits.safetensors");
  const Tensor ref_ids = ref.get("prompt0.input_ids");
  const auto samples = greedy_samples();
  const auto ids = io::encode_chat(tok, samples[0]["instruction"].get<std::string>(), model.config().bos_token_id);
  CHECK(ids == std::vector<std::int64_t>(ref_ids.data<std::int64_t>(), ref_ids.data<std::int64_t>() + ref_ids.numel()));

  auto cache = model.new_cache(1, ref_ids.dim(1));
  auto h = model.forward(ref_ids, Tensor{}, cache);
  const double d = flas::testing::max_rel_diff(model.logits(h), ref.get("prompt0.logits"));
  INFO("max rel diff " << d);
  CHECK(d <= 1e-3);
}

TEST_CASE_TEMPLATE("chat model: greedy continuations match HF token for token", B, FLAS_HOST_BACKENDS) {
  auto model = gemma2::Model<B>::load(chat_dir);
  auto tok = io::Tokenizer::load(chat_dir);
  for (const auto& s : greedy_samples()) {
    const auto want = s["ids"].get<std::vector<std::int64_t>>();
    GenerateOptions opt;
    opt.max_new_tokens = std::int64_t(want.size());
    auto r = generate(model, {io::encode_chat(tok, s["instruction"].get<std::string>(), model.config().bos_token_id)},
                      opt, gemma2::NoTap{});
    INFO(s["instruction"].get<std::string>());
    CHECK(r.tokens[0] == want);
    CHECK(tok.decode(r.tokens[0]) == s["greedy"].get<std::string>());
  }
}
