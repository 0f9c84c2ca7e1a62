#pragma once
// Samples -> a training batch, as the FLAS reference collates: prompt = <bos> + Gemma chat template of
// the input, response tokens appended (no special tokens), cut at max_len; labels −100 on the prompt
// and on padding; right padding; concepts tokenised as <bos> + text, cut at the concept cap, right
// padded. Every row must keep at least one response token.
#include <span>
#include <vector>

#include "flas/condition/concept_encoder.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/train/axbench_data.hpp"

namespace flas::train {

struct CollateOptions {
  std::int64_t max_len = 256, concept_max_len = 64, bos = 2, pad = 0;
};

// Tokenised once, so that epochs do not re-tokenise.
struct TokenisedSample {
  std::vector<std::int64_t> ids;  // prompt + response, cut at max_len
  std::int64_t prompt_len = 0;
  std::int64_t concept_index = 0;
};

inline TokenisedSample tokenise_sample(const io::Tokenizer& tok, const SteeringSample& s, const CollateOptions& o) {
  TokenisedSample t;
  t.ids = io::encode_chat(tok, s.prompt, o.bos);
  t.prompt_len = std::int64_t(t.ids.size());
  const auto response = tok.encode(s.response);
  t.ids.insert(t.ids.end(), response.begin(), response.end());
  if (std::int64_t(t.ids.size()) > o.max_len) t.ids.resize(std::size_t(o.max_len));
  t.prompt_len = std::min(t.prompt_len, std::int64_t(t.ids.size()));
  t.concept_index = s.concept_index;
  return t;
}

inline bool has_response(const TokenisedSample& t) { return t.prompt_len < std::int64_t(t.ids.size()); }

// `Batch` has input_ids, attention_mask, labels, concept_ids, concept_mask, concept_of_row.
template <class Batch>
Batch collate(std::span<const TokenisedSample* const> rows, const io::Tokenizer& tok,
              const std::vector<std::string>& concept_texts, const CollateOptions& o) {
  FLAS_CHECK(!rows.empty(), "collate: an empty batch");
  std::size_t S = 0;
  for (const auto* r : rows) {
    FLAS_CHECK(has_response(*r), "collate: a sample has no response tokens left within max_len ", o.max_len,
               " (prompt of ", r->prompt_len, " tokens): raise --max-len");
    S = std::max(S, r->ids.size());
  }
  const auto Bn = std::int64_t(rows.size());
  Batch b;
  b.input_ids = Tensor::empty({Bn, std::int64_t(S)}, DType::I64);
  b.attention_mask = zeros({Bn, std::int64_t(S)}, DType::U8);
  b.labels = Tensor::empty({Bn, std::int64_t(S)}, DType::I64);
  std::vector<std::string> texts;
  for (std::int64_t i = 0; i < Bn; ++i) {
    const auto& r = *rows[std::size_t(i)];
    for (std::size_t s = 0; s < S; ++s) {
      const bool real = s < r.ids.size();
      b.input_ids.template data<std::int64_t>()[std::size_t(i) * S + s] = real ? r.ids[s] : o.pad;
      b.attention_mask.template data<std::uint8_t>()[std::size_t(i) * S + s] = real ? 1 : 0;
      b.labels.template data<std::int64_t>()[std::size_t(i) * S + s] =
          real && std::int64_t(s) >= r.prompt_len ? r.ids[s] : -100;
    }
    texts.push_back(concept_texts.at(std::size_t(r.concept_index)));
    b.concept_of_row.push_back(r.concept_index);
  }
  auto [cids, cmask] = condition::tokenize_concepts(tok, texts, o.bos, o.pad, o.concept_max_len);
  b.concept_ids = cids;
  b.concept_mask = cmask;
  return b;
}

}  // namespace flas::train
