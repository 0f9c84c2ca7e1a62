#pragma once
// Training through a frozen Gemma-2 around a steering site after decoder layer L:
//   base_prefix_forward   embedding and layers 0..L, no tape (nothing below L needs a gradient);
//   UpperStack            layers L+1..end with tapes, the LM loss, and the VJP back to the output of L;
//   lm_loss_grad_wrt_layer_output   both together, without a flow: what the gemma2 grad.* fixtures hold.
// Right-padded batches, positions arange, attention mask = key mask (batch_layout.hpp).
#include <cstddef>
#include <utility>
#include <vector>

#include "flas/models/gemma2/model.hpp"
#include "flas/train/batch_layout.hpp"
#include "flas/train/decoder_layer_backward.hpp"
#include "flas/train/lm_head_loss.hpp"

namespace flas::train {

// The residual stream after decoder layer `layer` (−1: the embedding output), for ids [B, S].
template <Backend B>
tensor_t<B> base_prefix_forward(const gemma2::Model<B>& model, int layer, const Tensor& ids, const BatchLayout& at) {
  const auto& c = model.config();
  FLAS_CHECK(layer >= -1 && layer < c.num_hidden_layers, "training: layer ", layer, " is outside 0..",
             c.num_hidden_layers - 1);
  auto h = model.embed(ids);
  const Shape kv{at.batch, at.seq, c.num_key_value_heads, c.head_dim};
  auto k = activation<B>(kv), v = activation<B>(kv);  // the batch is its own cache, reused by every layer
  const gemma2::TokenLayout tokens = at.tokens();
  for (int l = 0; l <= layer; ++l)
    gemma2::decoder_layer_forward<B>(c, model.weights().layers[std::size_t(l)], c.is_sliding(l) ? c.sliding_window : 0,
                                     h, tokens, model.inv_freq(), k, v);
  return h;
}

// Layers first..end and the LM loss, keeping each layer's tape for the VJP.
template <TrainableBackend B>
class UpperStack {
 public:
  UpperStack(const gemma2::Model<B>& model, int first_layer) : model_(model), first_(first_layer) {
    FLAS_CHECK(first_ >= 0 && first_ <= model.config().num_hidden_layers, "training: upper layers from ", first_,
               " in a model of ", model.config().num_hidden_layers, " layers");
  }

  // h: the input of layer `first` [B, S, H] (not modified). Returns the loss; with_gradient keeps the
  // tapes and ∂L/∂(last layer output) for backward().
  LmLoss forward(const tensor_t<B>& h_in, const Tensor& labels, const BatchLayout& at, bool with_gradient) {
    const auto& c = model_.config();
    tapes_.clear();
    auto h = copy_of<B>(h_in);
    for (int l = first_; l < c.num_hidden_layers; ++l) {
      const auto& w = model_.weights().layers[std::size_t(l)];
      if (with_gradient) {
        tapes_.emplace_back();
        decoder_layer_forward_recorded<B>(c, l, w, h, at, model_.inv_freq(), tapes_.back());
      } else {
        auto k = activation<B>({at.batch, at.seq, c.num_key_value_heads, c.head_dim}), v = activation<B>(k.shape());
        gemma2::decoder_layer_forward<B>(c, w, c.is_sliding(l) ? c.sliding_window : 0, h, at.tokens(),
                                         model_.inv_freq(), k, v);
      }
    }
    d_last_ = with_gradient ? activation<B>(h.shape()) : tensor_t<B>{};
    return lm_head_loss<B>(model_, h, labels, with_gradient ? &d_last_ : nullptr);
  }

  // ∂L/∂(input of layer `first`), after forward(…, with_gradient = true).
  tensor_t<B> backward(const BatchLayout& at) {
    const auto& c = model_.config();
    FLAS_CHECK(d_last_.defined(), "UpperStack::backward without a forward that kept its tapes");
    tensor_t<B> dh = std::move(d_last_);
    d_last_ = {};
    for (int l = c.num_hidden_layers - 1; l >= first_; --l) {
      DecoderLayerTape<B>& tape = tapes_[std::size_t(l - first_)];
      decoder_layer_backward<B>(c, l, model_.weights().layers[std::size_t(l)], tape, at, model_.inv_freq(), dh);
      tape = {};  // release as we go
    }
    tapes_.clear();
    return dh;
  }

  std::size_t tape_bytes() const {
    std::size_t n = d_last_.defined() ? d_last_.bytes() : 0;
    for (const auto& t : tapes_) n += t.bytes();
    return n;
  }

 private:
  const gemma2::Model<B>& model_;
  int first_;
  std::vector<DecoderLayerTape<B>> tapes_;
  tensor_t<B> d_last_;
};

// Mean cross-entropy of the base model (no steering) and its gradient with respect to the output of
// decoder layer `layer`. attention_mask: U8 or I64 [B, S], or empty (no padding).
template <TrainableBackend B>
std::pair<double, Tensor> lm_loss_grad_wrt_layer_output(const gemma2::Model<B>& model, int layer, const Tensor& input_ids,
                                                        const Tensor& labels, const Tensor& attention_mask) {
  FLAS_CHECK(input_ids.dtype() == DType::I64 && input_ids.rank() == 2, "training: input ids must be I64 [B, S], got ",
             dtype_name(input_ids.dtype()), " ", input_ids.shape());
  const BatchLayout at = BatchLayout::of(input_ids.dim(0), input_ids.dim(1), attention_mask);
  const auto h = base_prefix_forward(model, layer, input_ids, at);
  UpperStack<B> upper(model, layer + 1);
  const LmLoss lm = upper.forward(h, labels, at, true);
  return {lm.loss, upper.backward(at)};
}

}  // namespace flas::train
