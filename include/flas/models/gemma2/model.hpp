#pragma once
// The Gemma-2 causal LM over a Backend: embedding × √H, the decoder layers with a KV cache, the final
// norm and the soft-capped tied LM head, with a steering tap after any layer. Numerics follow HF
// transformers' Gemma2ForCausalLM (SPEC.md).
#include <cmath>
#include <filesystem>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/io/checkpoint.hpp"
#include "flas/models/gemma2/config.hpp"
#include "flas/models/gemma2/decoder_layer.hpp"
#include "flas/models/gemma2/kv_cache.hpp"
#include "flas/models/gemma2/rope.hpp"
#include "flas/models/gemma2/steering_tap.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::gemma2 {

template <Backend B>
class Model {
 public:
  Model(Config config, Weights weights)
      : cfg_(std::move(config)), w_(std::move(weights)), inv_freq_(rope_inv_freq(cfg_.rope_theta, cfg_.head_dim)) {}

  // A Hugging Face model folder: config.json + model.safetensors (or a sharded index).
  static Model load(const std::filesystem::path& dir) {
    Config c = Config::load(dir / "config.json");
    auto ckpt = io::Checkpoint::open(dir);
    Weights w = load_weights(ckpt, c);
    return Model(std::move(c), std::move(w));
  }

  const Config& config() const { return cfg_; }
  const Weights& weights() const { return w_; }
  const Tensor& inv_freq() const { return inv_freq_; }

  KVCache<B> new_cache(std::int64_t batch, std::int64_t capacity) const {
    FLAS_CHECK(capacity <= cfg_.max_position_embeddings, "a sequence of ", capacity,
               " tokens exceeds the model's context of ", cfg_.max_position_embeddings, " tokens");
    return KVCache<B>(cfg_, batch, capacity);
  }

  // E[ids] · √H, with √H rounded to the embedding's dtype as HF does.
  tensor_t<B> embed(const Tensor& ids) const {
    auto h = new_activation<B>({ids.dim(0), ids.dim(1), cfg_.hidden_size});
    float scale = float(std::sqrt(double(cfg_.hidden_size)));
    if (w_.embed.dtype() == DType::BF16) scale = round_to_bf16(scale);
    B::embedding(ids.view({ids.numel()}), w_.embed, scale, h);
    return h;
  }

  // Positions of new tokens [B, S]: the row's real-token count so far plus clamp(cumsum(valid) − 1, 0)
  // (HF's left-padding rule; in decode simply the past length of the row).
  static Tensor positions_for(const KVCache<B>& cache, const Tensor& new_valid) {
    const std::int64_t Bn = new_valid.dim(0), S = new_valid.dim(1);
    Tensor pos = Tensor::empty({Bn, S}, DType::I64);
    const auto* m = new_valid.data<std::uint8_t>();
    auto* p = pos.data<std::int64_t>();
    for (std::int64_t b = 0; b < Bn; ++b) {
      std::int64_t count = cache.real[std::size_t(b)];
      for (std::int64_t s = 0; s < S; ++s) {
        count += m[b * S + s];
        p[b * S + s] = std::max<std::int64_t>(count - 1, 0);
      }
    }
    return pos;
  }

  // Appends ids [B, S] (validity U8 [B, S]; empty Tensor = all real) to the cache, runs every layer
  // (the tap sees the layers it wants) and returns the final-normed hidden states [B, S, H].
  template <class Tap = NoTap>
  tensor_t<B> forward(const Tensor& ids, const Tensor& new_valid_in, KVCache<B>& cache, Tap&& tap = Tap{}) const {
    const std::int64_t Bn = ids.dim(0), S = ids.dim(1);
    FLAS_CHECK(Bn == cache.batch, "forward: ", Bn, " rows but the cache holds ", cache.batch);
    FLAS_CHECK(cache.length + S <= cache.capacity, "forward: ", cache.length, " cached + ", S,
               " new tokens exceed the cache capacity of ", cache.capacity, " tokens");
    Tensor new_valid = new_valid_in.defined() ? new_valid_in : ones_u8(Bn, S);
    const Tensor pos = positions_for(cache, new_valid);
    const std::int64_t past = cache.length;
    for (std::int64_t b = 0; b < Bn; ++b)
      for (std::int64_t s = 0; s < S; ++s) {
        const std::uint8_t m = new_valid.data<std::uint8_t>()[b * S + s];
        cache.valid[std::size_t(b * cache.capacity + past + s)] = m;
        cache.real[std::size_t(b)] += m;
      }
    auto h = embed(ids);
    TokenLayout at{pos, past, cache.capacity, cache.valid.data()};
    call_tap(tap, -1, h, at);
    for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
      decoder_layer_forward<B>(cfg_, w_.layers[std::size_t(l)], cfg_.is_sliding(l) ? cfg_.sliding_window : 0, h, at,
                               inv_freq_,
                               cache.k[std::size_t(l)], cache.v[std::size_t(l)]);
      call_tap(tap, l, h, at);
    }
    cache.length += S;
    B::rms_norm(h, w_.final_norm, float(cfg_.rms_norm_eps), h);
    return h;
  }

  // Soft-capped logits h·Eᵀ for final-normed states [..., H] -> [..., V].
  tensor_t<B> logits(const tensor_t<B>& normed) const {
    Shape s = normed.shape();
    s[s.rank() - 1] = cfg_.vocab_size;
    auto out = new_activation<B>(s);
    B::linear(normed, w_.embed, nullptr, out);
    if (cfg_.final_logit_softcapping > 0) B::softcap(out, float(cfg_.final_logit_softcapping));
    return out;
  }

  // The last position of each row: [B, S, H] -> [B, H].
  static tensor_t<B> last_positions(const tensor_t<B>& h) {
    const std::int64_t Bn = h.dim(0), S = h.dim(1), H = h.dim(2);
    auto out = new_activation<B>({Bn, H});
    for (std::int64_t b = 0; b < Bn; ++b) {
      auto dst = out[b];
      B::copy(dst, h[b][S - 1]);
    }
    return out;
  }

  static Tensor ones_u8(std::int64_t rows, std::int64_t cols) {
    Tensor t = Tensor::empty({rows, cols}, DType::U8);
    std::fill_n(t.data<std::uint8_t>(), t.numel(), std::uint8_t(1));
    return t;
  }

 private:
  template <class Tap>
  static void call_tap(Tap& tap, int layer, tensor_t<B>& h, const TokenLayout& at) {
    if constexpr (!std::is_same_v<std::remove_cvref_t<Tap>, NoTap>) {
      if (tap.wants(layer)) {
        TapSite<B> site{layer, h, at.positions, at.key_valid, at.capacity, at.past};
        tap(site);
      }
    }
  }

  Config cfg_;
  Weights w_;
  Tensor inv_freq_;
};

}  // namespace flas::gemma2
