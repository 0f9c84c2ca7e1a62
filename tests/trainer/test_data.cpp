// AxBench rows and collation as the reference prepares them.
#include <doctest/doctest.h>

#include "flas/io/tokenizer.hpp"
#include "flas/train/axbench_data.hpp"
#include "flas/train/collate.hpp"

using namespace flas;

namespace {
const std::filesystem::path data_dir = std::filesystem::path(FLAS_PROJECT_DATA) / "axbench";
struct Batch {
  Tensor input_ids, attention_mask, labels, concept_ids, concept_mask;
  std::vector<std::int64_t> concept_of_row;
};
}  // namespace

TEST_CASE("AxBench: positive rows only, concepts by text across files, seeded disjoint splits") {
  const auto c10 = train::load_axbench({data_dir / "concept10_prod_2b_l20_v1_train.jsonl"});
  CHECK(c10.concepts.size() == 10);
  for (const auto& s : c10.samples) CHECK(s.concept_text != "EEEEE");
  const auto both = train::load_axbench({data_dir / "concept10_prod_2b_l20_v1_train.jsonl",
                                         data_dir / "conceptFD_prod_2b_l20_v1_train.jsonl"});
  CHECK(both.concepts.size() > c10.concepts.size());
  CHECK(both.samples.size() > c10.samples.size());

  const auto split = train::split_dataset(both, 3, 100, 42);
  CHECK(split.held_out_concepts.size() == 3);
  CHECK(split.validation.size() == 100);
  CHECK(split.train.size() + split.validation.size() + split.held_out.size() == both.samples.size());
  for (auto i : split.train)
    CHECK(std::find(split.held_out_concepts.begin(), split.held_out_concepts.end(), both.samples[i].concept_index) ==
          split.held_out_concepts.end());
  for (auto i : split.held_out)
    CHECK(std::find(split.held_out_concepts.begin(), split.held_out_concepts.end(), both.samples[i].concept_index) !=
          split.held_out_concepts.end());
  const auto again = train::split_dataset(both, 3, 100, 42);
  CHECK(again.train == split.train);
  CHECK(train::split_dataset(both, 3, 100, 43).validation != split.validation);

  const auto missing = data_dir / "no_such_file.jsonl";
  CHECK_THROWS_WITH_AS(train::load_axbench({missing}), doctest::Contains("no_such_file.jsonl: cannot open"), flas::Error);
}

TEST_CASE("collate: chat prompt + response, labels masked on the prompt and padding, right padding") {
  const auto tok = io::Tokenizer::load(std::filesystem::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat");
  train::SteeringDataset d;
  d.concepts = {"the ocean", "cooking"};
  d.samples = {{"Hi", "Waves crash.", "the ocean", 0}, {"Tell me a long story please", "Stir the pot slowly.", "cooking", 1}};
  train::CollateOptions o;
  const auto a = train::tokenise_sample(tok, d.samples[0], o), b = train::tokenise_sample(tok, d.samples[1], o);
  const std::vector<const train::TokenisedSample*> rows{&a, &b};
  const auto batch = train::collate<Batch>(rows, tok, d.concepts, o);
  const std::int64_t S = batch.input_ids.dim(1);
  CHECK(S == std::int64_t(std::max(a.ids.size(), b.ids.size())));
  const auto prompt = io::encode_chat(tok, "Hi", 2);
  const auto resp = tok.encode("Waves crash.");
  for (std::int64_t s = 0; s < S; ++s) {
    const auto id = batch.input_ids.data<std::int64_t>()[s];
    const auto label = batch.labels.data<std::int64_t>()[s];
    const auto m = batch.attention_mask.data<std::uint8_t>()[s];
    if (s < std::int64_t(prompt.size())) {
      CHECK(id == prompt[std::size_t(s)]);
      CHECK(label == -100);
      CHECK(m == 1);
    } else if (s < std::int64_t(prompt.size() + resp.size())) {
      CHECK(id == resp[std::size_t(s) - prompt.size()]);
      CHECK(label == id);
      CHECK(m == 1);
    } else {
      CHECK(id == 0);
      CHECK(label == -100);
      CHECK(m == 0);
    }
  }
  CHECK(batch.concept_of_row == std::vector<std::int64_t>{0, 1});
  CHECK(batch.concept_ids.data<std::int64_t>()[0] == 2);  // <bos> first

  o.max_len = std::int64_t(prompt.size());
  const auto cut = train::tokenise_sample(tok, d.samples[0], o);
  const std::vector<const train::TokenisedSample*> only{&cut};
  CHECK_THROWS_WITH_AS(train::collate<Batch>(only, tok, d.concepts, o), doctest::Contains("raise --max-len"), flas::Error);
}
