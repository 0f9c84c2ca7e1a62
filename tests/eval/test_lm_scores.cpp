// The NLL proxy against a direct computation: one row at a time through the f64 scalar backend, the
// log-softmax of each reply token summed by hand; and the PMI proxy's sign on a real answer.
#include <doctest/doctest.h>

#include <cmath>

#include "eval_test_support.hpp"
#include "flas/backends/scalar.hpp"
#include "flas/eval/lm_scores.hpp"

using namespace flas;

TEST_CASE("reply NLL: batched CPU values equal a row-by-row f64 computation") {
  const auto& model = testing::chat_model();
  const auto& tok = testing::chat_tokenizer();
  std::vector<eval::ScoredText> items{
      {"How do I rent a car?", tok.encode("You can rent a car at the airport or online.")},
      {"Write a haiku about rain.", tok.encode("Soft rain on the roof")},
      {"Empty reply", {}},
      {"What is 2 + 2?", tok.encode("2 + 2 is 4.")}};
  const auto nll = eval::reply_nll(model, tok, items, 3);
  CHECK(std::isnan(nll[2]));

  const auto oracle = gemma2::Model<ScalarBackend<double>>::load(testing::chat_model_dir);
  for (std::size_t i : {0u, 1u, 3u}) {
    auto ids = io::encode_chat(tok, items[i].prompt, oracle.config().bos_token_id);
    const std::size_t P = ids.size();
    ids.insert(ids.end(), items[i].response.begin(), items[i].response.end());
    Tensor t = Tensor::empty({1, std::int64_t(ids.size())}, DType::I64);
    std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
    auto cache = oracle.new_cache(1, t.dim(1));
    const Tensor logits = oracle.logits(oracle.forward(t, Tensor{}, cache));
    const std::int64_t V = oracle.config().vocab_size;
    double sum = 0;
    for (std::size_t s = P; s < ids.size(); ++s) {
      const double* row = logits.data<double>() + std::int64_t(s - 1) * V;
      double mx = row[0], z = 0;
      for (std::int64_t v = 0; v < V; ++v) mx = std::max(mx, row[v]);
      for (std::int64_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
      sum -= row[ids[s]] - mx - std::log(z);
    }
    const double ref = sum / double(ids.size() - P);
    MESSAGE("reply ", i, ": NLL ", nll[i], " (f64 direct ", ref, ")");
    CHECK(nll[i] == doctest::Approx(ref).epsilon(1e-4));
  }
}

TEST_CASE("reply NLL: the model's own reply is likelier after its own question than after another") {
  const auto& model = testing::chat_model();
  const auto& tok = testing::chat_tokenizer();
  const std::vector<std::string> questions{"How do I rent a car?", "Write a poem about the sea.",
                                           "What are the health benefits of green tea?"};
  for (std::size_t q = 0; q < questions.size(); ++q) {
    GenerateOptions opt;
    opt.max_new_tokens = 40;
    auto reply = generate(model, {io::encode_chat(tok, questions[q], model.config().bos_token_id)}, opt,
                          gemma2::NoTap{}).tokens[0];
    if (model.config().is_eos(reply.back())) reply.pop_back();
    const auto other = questions[(q + 1) % questions.size()];
    const auto nll = eval::reply_nll(model, tok, {{questions[q], reply}, {other, reply}});
    MESSAGE("\"", questions[q], "\": own ", nll[0], ", after \"", other, "\" ", nll[1]);
    CHECK(nll[1] - nll[0] > 0.05);
  }
}
