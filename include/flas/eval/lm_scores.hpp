#pragma once
// Offline fluency and instruction-relevance proxies computed with the unsteered model:
//   NLL   mean negative log-likelihood per token of a reply given its own instruction (the reply's
//         perplexity is exp(NLL)): steering that breaks the language shows up here;
//   PMI   NLL of the reply given another instruction minus its NLL given its own: how much more
//         likely the reply is because of its instruction (a pointwise-mutual-information proxy for
//         "answers the question"; near 0 for a reply that ignores it).
// Both teacher-force the reply's token ids after the chat prompt and read the log-softmax of the
// model's soft-capped logits (f64 accumulation).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "flas/eval/residual_capture.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::eval {

struct ScoredText {
  std::string prompt;                  // the user's message
  std::vector<std::int64_t> response;  // reply token ids (no stop token)
};

// Mean NLL per reply token of each (prompt, reply); NaN for an empty reply.
template <Backend B>
std::vector<double> reply_nll(const gemma2::Model<B>& model, const io::Tokenizer& tok,
                              const std::vector<ScoredText>& items, std::size_t batch_size = 16) {
  const auto& cfg = model.config();
  std::vector<double> out(items.size(), std::numeric_limits<double>::quiet_NaN());
  for (std::size_t first = 0; first < items.size(); first += batch_size) {
    const std::size_t n = std::min(batch_size, items.size() - first);
    std::vector<std::vector<std::int64_t>> seqs;
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& it = items[first + i];
      if (it.response.empty()) continue;
      auto s = io::encode_chat(tok, it.prompt, cfg.bos_token_id);
      s.insert(s.end(), it.response.begin(), it.response.end());
      seqs.push_back(std::move(s));
      idx.push_back(first + i);
    }
    if (seqs.empty()) continue;
    auto [ids, valid] = left_pad(seqs, cfg.pad_token_id);
    const std::int64_t S = ids.dim(1), V = cfg.vocab_size;
    FLAS_CHECK(S <= cfg.max_position_embeddings, "NLL: a prompt plus reply of ", S,
               " tokens exceeds the model's context of ", cfg.max_position_embeddings);
    auto cache = model.new_cache(ids.dim(0), S);
    const Tensor logits = host_f32(model.logits(model.forward(ids, valid, cache)));
    for (std::size_t r = 0; r < seqs.size(); ++r) {
      const auto& resp = items[idx[r]].response;
      const std::int64_t R = std::int64_t(resp.size());
      double sum = 0;
      for (std::int64_t j = 0; j < R; ++j) {  // reply token j is at position S-R+j, predicted at S-R+j-1
        const float* row = logits.data<float>() + (std::int64_t(r) * S + (S - R + j - 1)) * V;
        double mx = row[0];
        for (std::int64_t v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
        double z = 0;
        for (std::int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
        sum -= double(row[resp[std::size_t(j)]]) - mx - std::log(z);
      }
      out[idx[r]] = sum / double(R);
    }
  }
  return out;
}

}  // namespace flas::eval
