// DiffMean vectors against a direct computation: every row run alone (no batching, no padding) through
// the f64 scalar backend, its response-token states averaged by hand, positives minus negatives.
#include <doctest/doctest.h>

#include <fstream>

#include "eval_test_support.hpp"
#include "flas/backends/scalar.hpp"
#include "flas/eval/diffmean.hpp"

using namespace flas;

namespace {
std::vector<double> direct_mean_state(const gemma2::Model<ScalarBackend<double>>& m, const io::Tokenizer& tok,
                                      const std::string& prompt, const std::string& response, int layer,
                                      std::int64_t max_resp) {
  auto ids = io::encode_chat(tok, prompt, m.config().bos_token_id);
  const std::size_t P = ids.size();
  auto r = tok.encode(response);
  if (std::int64_t(r.size()) > max_resp) r.resize(std::size_t(max_resp));
  ids.insert(ids.end(), r.begin(), r.end());
  Tensor t = Tensor::empty({1, std::int64_t(ids.size())}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  auto cache = m.new_cache(1, t.dim(1));
  eval::ResidualCapture<ScalarBackend<double>> cap{layer, {}};
  m.forward(t, Tensor{}, cache, cap);
  const std::int64_t H = m.config().hidden_size;
  std::vector<double> mean(std::size_t(H), 0.0);
  for (std::size_t s = P; s < ids.size(); ++s)
    for (std::int64_t d = 0; d < H; ++d) mean[std::size_t(d)] += cap.captured.data<float>()[std::int64_t(s) * H + d];
  for (auto& x : mean) x /= double(ids.size() - P);
  return mean;
}
}  // namespace

TEST_CASE("DiffMean: batched CPU vectors equal a row-by-row f64 computation") {
  const auto& model = testing::chat_model();
  const auto& tok = testing::chat_tokenizer();
  auto all = eval::load_labelled_rows(testing::project_data / "axbench/concept10_prod_2b_l20_v1_train.jsonl");
  // Two concepts with three positives each, and four shared negatives of the same file.
  std::vector<eval::LabelledRow> rows;
  std::map<std::string, int> taken;  // the first two concepts met, three positives each
  int negatives = 0;
  for (const auto& r : all) {
    const bool room = taken.count(r.concept_text) ? taken[r.concept_text] < 3 : taken.size() < 2;
    if (r.label == eval::RowLabel::positive && room) {
      ++taken[r.concept_text];
      rows.push_back(r);
    } else if (r.label == eval::RowLabel::negative && negatives < 4) {
      ++negatives;
      rows.push_back(r);
    }
  }
  REQUIRE(rows.size() == 10);
  const int layer = 3;
  const eval::DiffMeanOptions opt{layer, 24, 4};  // batches of 4 mix positives, negatives and padding
  const auto v = eval::compute_diffmean(model, tok, rows, opt);
  REQUIRE(v.concepts.size() == 2);

  const auto oracle = gemma2::Model<ScalarBackend<double>>::load(testing::chat_model_dir);
  const std::int64_t H = model.config().hidden_size;
  std::vector<double> neg(std::size_t(H), 0.0);
  for (const auto& r : rows)
    if (r.label == eval::RowLabel::negative) {
      const auto m = direct_mean_state(oracle, tok, r.input, r.output, layer, opt.max_response_tokens);
      for (std::int64_t d = 0; d < H; ++d) neg[std::size_t(d)] += m[std::size_t(d)] / 4.0;
    }
  for (std::size_t c = 0; c < 2; ++c) {
    std::vector<double> pos(std::size_t(H), 0.0);
    for (const auto& r : rows)
      if (r.label == eval::RowLabel::positive && r.concept_text == v.concepts[c]) {
        const auto m = direct_mean_state(oracle, tok, r.input, r.output, layer, opt.max_response_tokens);
        for (std::int64_t d = 0; d < H; ++d) pos[std::size_t(d)] += m[std::size_t(d)] / 3.0;
      }
    double max_err = 0, max_ref = 0;
    for (std::int64_t d = 0; d < H; ++d) {
      const double ref = pos[std::size_t(d)] - neg[std::size_t(d)];
      max_ref = std::max(max_ref, std::abs(ref));
      max_err = std::max(max_err, std::abs(double(v.directions.data<float>()[std::int64_t(c) * H + d]) - ref));
    }
    MESSAGE("concept ", c, ": max |diff - f64 direct| = ", max_err, " (max |ref| ", max_ref, ")");
    CHECK(max_ref > 0.1);
    CHECK(max_err <= 1e-4 * max_ref);  // f32 CPU kernels against f64: DESIGN.md's forward tolerance x10 for the mean
  }

  SUBCASE("save and load keep the vectors, layer and concept texts") {
    const auto dir = testing::scratch_folder("diffmean");
    eval::save_diffmean(dir / "v.safetensors", v);
    const auto back = eval::load_diffmean(dir / "v.safetensors");
    CHECK(back.layer == layer);
    CHECK(back.concepts == v.concepts);
    CHECK(std::equal(v.directions.data<float>(), v.directions.data<float>() + v.directions.numel(),
                     back.directions.data<float>()));
    CHECK_THROWS_WITH_AS(back.index_of("no such concept"), doctest::Contains("no such concept"), Error);
  }
}

TEST_CASE("DiffMean: refuses rows without negatives and files without rows, naming them") {
  const auto& model = testing::chat_model();
  const auto& tok = testing::chat_tokenizer();
  std::vector<eval::LabelledRow> rows{{"Say hi.", "Hello there, friend.", "greetings", eval::RowLabel::positive, "a.jsonl"}};
  CHECK_THROWS_WITH_AS(eval::compute_diffmean(model, tok, rows, {3, 16, 4}),
                       doctest::Contains("concept \"greetings\" has no negative rows in a.jsonl"), Error);
  const auto dir = testing::scratch_folder("rows");
  { std::ofstream(dir / "empty.jsonl") << "\n"; }
  CHECK_THROWS_WITH_AS(eval::load_labelled_rows(dir / "empty.jsonl"), doctest::Contains("empty.jsonl: no rows"), Error);
  { std::ofstream(dir / "bad.jsonl") << R"({"input": "a", "output": "b", "output_concept": "c", "category": "maybe"})" << "\n"; }
  CHECK_THROWS_WITH_AS(eval::load_labelled_rows(dir / "bad.jsonl"), doctest::Contains("bad.jsonl:1: category 'maybe'"), Error);
}
