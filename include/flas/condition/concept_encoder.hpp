#pragma once
// The FLAS concept encoder: the frozen base model's own embedding (× √H), its first K decoder layers
// and its final norm, over the concept tokens with positions 0..Lc−1 and full causal attention plus
// the concept padding mask — no sliding window, even on sliding layers (SPEC.md). Pad rows are
// computed too. Computed once per concept and reused by every flow step.
#include <string>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/decoder_layer.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::condition {

inline constexpr std::int64_t max_concept_tokens = 64;

template <Backend B>
struct EncodedConcepts {
  tensor_t<B> hidden;  // [Bc, Lc, H]
  Tensor mask;         // U8 [Bc, Lc], 1 = real token
  std::int64_t rows() const { return hidden.dim(0); }
  std::int64_t length() const { return hidden.dim(1); }
};

// Tokenises concept texts as <bos> + text, capped at `max_tokens`, right-padded with `pad_id`.
inline std::pair<Tensor, Tensor> tokenize_concepts(const io::Tokenizer& tok, const std::vector<std::string>& texts,
                                                   std::int64_t bos, std::int64_t pad_id,
                                                   std::int64_t max_tokens = max_concept_tokens) {
  FLAS_CHECK(!texts.empty(), "concept encoder: no concept given");
  std::vector<std::vector<std::int64_t>> rows;
  std::size_t L = 0;
  for (const auto& text : texts) {
    FLAS_CHECK(text.find_first_not_of(" \t\r\n") != std::string::npos,
               "concept encoder: an empty concept (a concept needs some text, e.g. \"the ocean\")");
    auto ids = tok.encode(text);
    ids.insert(ids.begin(), bos);
    if (std::int64_t(ids.size()) > max_tokens) ids.resize(std::size_t(max_tokens));
    L = std::max(L, ids.size());
    rows.push_back(std::move(ids));
  }
  Tensor ids = Tensor::empty({std::int64_t(rows.size()), std::int64_t(L)}, DType::I64);
  Tensor mask = zeros({std::int64_t(rows.size()), std::int64_t(L)}, DType::U8);
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t i = 0; i < L; ++i) {
      const bool real = i < rows[r].size();
      ids.data<std::int64_t>()[r * L + i] = real ? rows[r][i] : pad_id;
      mask.data<std::uint8_t>()[r * L + i] = real ? 1 : 0;
    }
  return {ids, mask};
}

// ids I64 [Bc, Lc], mask (U8 or I64) [Bc, Lc] -> encoded concepts. `layers` = K (2 in FLAS).
template <Backend B>
EncodedConcepts<B> encode_concepts(const gemma2::Model<B>& base, const Tensor& ids, const Tensor& mask_in,
                                   int layers = 2) {
  const auto& c = base.config();
  FLAS_CHECK(layers >= 0 && layers <= c.num_hidden_layers, "concept encoder: ", layers,
             " layers requested but the base model has ", c.num_hidden_layers);
  const std::int64_t Bc = ids.dim(0), Lc = ids.dim(1);
  FLAS_CHECK(Lc >= 1, "concept encoder: an empty concept (no tokens)");
  const Tensor mask = mask_in.dtype() == DType::U8 ? mask_in : convert(mask_in, DType::U8);
  FLAS_CHECK(mask.shape() == ids.shape(), "concept encoder: mask ", mask.shape(), " does not match ids ", ids.shape());
  Tensor pos = Tensor::empty({Bc, Lc}, DType::I64);
  for (std::int64_t i = 0; i < Bc * Lc; ++i) pos.data<std::int64_t>()[i] = i % Lc;

  auto h = base.embed(ids);
  gemma2::TokenLayout at{pos, 0, Lc, mask.data<std::uint8_t>()};
  const Shape kv{Bc, Lc, c.num_key_value_heads, c.head_dim};
  auto k = tensor_t<B>::empty(kv, B::activation_dtype), v = tensor_t<B>::empty(kv, B::activation_dtype);
  for (int l = 0; l < layers; ++l)
    gemma2::decoder_layer_forward<B>(c, base.weights().layers[std::size_t(l)], /*window=*/0, h, at, base.inv_freq(),
                                     k, v);
  B::rms_norm(h, base.weights().final_norm, float(c.rms_norm_eps), h);
  return {h, mask};
}

}  // namespace flas::condition
