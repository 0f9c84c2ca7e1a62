#pragma once
// Concept encodings, cached: a concept's conditioning (its cross-attention keys/values per flow block,
// or its pooled vectors) is computed once, as one row exactly as `flas steer` computes it, and reused
// by every request that names it. Least recently used entries go beyond `capacity`. A batch's
// conditioning is its rows' stacked, concept keys right-padded with masked zeros (a masked key weighs
// exactly nothing under the soft-capped −1e4 rule), so a row sees what it sees alone.
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "flas/condition/concept_encoder.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::serve {

template <Backend B>
class ConceptCache {
 public:
  using Conditioning = typename field::FlasFlow<B>::Conditioning;

  ConceptCache(const gemma2::Model<B>& model, const io::Tokenizer& tok, const field::FlasFlow<B>& flow,
               int concept_layers, std::size_t capacity = 256)
      : model_(model), tok_(tok), flow_(flow), concept_layers_(concept_layers), capacity_(capacity) {}

  // One row's conditioning for `text`; not thread-safe (the engine's thread owns it).
  std::shared_ptr<const Conditioning> get(const std::string& text) {
    if (auto it = index_.find(text); it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
    const auto& cfg = model_.config();
    auto [ids, mask] = condition::tokenize_concepts(tok_, {text}, cfg.bos_token_id, cfg.pad_token_id);
    auto cond = std::make_shared<const Conditioning>(
        flow_.condition(condition::encode_concepts(model_, ids, mask, concept_layers_)));
    order_.emplace_front(text, cond);
    index_[text] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return cond;
  }

  std::size_t size() const { return order_.size(); }
  std::size_t hits() const { return hits_; }
  std::size_t misses() const { return misses_; }

 private:
  const gemma2::Model<B>& model_;
  const io::Tokenizer& tok_;
  const field::FlasFlow<B>& flow_;
  int concept_layers_;
  std::size_t capacity_;
  std::list<std::pair<std::string, std::shared_ptr<const Conditioning>>> order_;  // most recent first
  std::unordered_map<std::string, typename decltype(order_)::iterator> index_;
  std::size_t hits_ = 0, misses_ = 0;
};

// Rows' single-row conditionings stacked into one batch conditioning.
template <Backend B>
typename field::FlasFlow<B>::Conditioning stack_conditionings(
    const std::vector<const typename field::FlasFlow<B>::Conditioning*>& rows) {
  typename field::FlasFlow<B>::Conditioning out;
  if (rows.empty()) return out;
  const auto R = std::int64_t(rows.size());
  const std::size_t blocks = rows[0]->per_block.size();
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    std::int64_t Lc = 0;
    for (const auto* r : rows) Lc = std::max(Lc, r->per_block[blk].k.dim(1));
    const auto& first = rows[0]->per_block[blk].k;
    const Shape kv{R, Lc, first.dim(2), first.dim(3)};
    condition::ConceptKV<B> c{tensor_t<B>::empty(kv, B::activation_dtype), tensor_t<B>::empty(kv, B::activation_dtype),
                              zeros({R, Lc}, DType::U8)};
    B::fill(c.k, 0.0f);
    B::fill(c.v, 0.0f);
    for (std::int64_t i = 0; i < R; ++i) {
      const auto& src = rows[std::size_t(i)]->per_block[blk];
      const std::int64_t L = src.k.dim(1);
      auto dk = c.k[i].slice(0, L), dv = c.v[i].slice(0, L);
      B::copy(dk, src.k[0]);
      B::copy(dv, src.v[0]);
      std::copy_n(src.mask.template data<std::uint8_t>(), L, c.mask.template data<std::uint8_t>() + i * Lc);
    }
    out.per_block.push_back(std::move(c));
  }
  for (std::size_t blk = 0; blk < rows[0]->pooled.size(); ++blk) {
    const auto& first = rows[0]->pooled[blk];
    auto p = tensor_t<B>::empty({R, first.dim(1)}, B::activation_dtype);
    for (std::int64_t i = 0; i < R; ++i) {
      auto dst = p[i];
      B::copy(dst, rows[std::size_t(i)]->pooled[blk][0]);
    }
    out.pooled.push_back(std::move(p));
  }
  return out;
}

}  // namespace flas::serve
