#pragma once
// The FLAS training loss of a flow on one batch, and its gradient with respect to every flow parameter
// (SPEC.md "Training loss"):
//   h_L   = base layers 0..L on the batch (frozen; no gradient below L, so no backward through them)
//   h_N   = N Euler steps of the flow from h_L: dt = f32(T/N), t_k = f32(k·dt), concept row i for batch
//           row i (the concept encoder frozen, run once per batch), flow padding mask = attention mask
//   loss  = HF mean CE of layers L+1..end, final norm, tied head and soft-cap on h_N
//           + div_weight · L_div(v_{N−1}), the diversity loss of the last step's velocity.
// The Euler steps run through the ODE core (ode::solve with PerRowTime<float> and StepCount{N}, the
// exact FLAS update) with the Direct or Checkpointed gradient strategy; the flow is the
// DifferentiableField of flow_ode_field.hpp. Frozen base weights get no gradient and no gradient memory.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "flas/condition/concept_encoder.hpp"
#include "flas/core/precision_scope.hpp"
#include "flas/ode/butcher_tableau.hpp"
#include "flas/ode/solve.hpp"
#include "flas/train/diversity_loss.hpp"
#include "flas/train/flow_ode_field.hpp"
#include "flas/train/gemma2_backward.hpp"

namespace flas::train {

struct TrainBatch {                      // one batch, HF conventions
  Tensor input_ids;                      // I64 [B, S], right padded
  Tensor attention_mask;                 // U8 or I64 [B, S]
  Tensor labels;                         // I64 [B, S], −100 = ignored, not shifted (the loss shifts)
  Tensor concept_ids, concept_mask;      // I64 [B, Lc] and mask: the concept of each row (<bos> first)
  std::vector<std::int64_t> concept_of_row;  // concept identity per row (the diversity loss pairs different ones)
  float flowtime = 1.0f;                 // T, one per batch
  int steps = 3;                         // Euler steps N
};

struct LossParts {
  double lm_loss = 0, div_loss = 0, loss = 0;
  std::int64_t tokens = 0;               // labels that count in the LM loss
  std::size_t flow_gradient_bytes = 0;   // peak bytes kept for the flow's gradient: ODE states + activation tapes
};

enum class GradientStrategy {
  direct,        // keep every Euler step's activations (no recomputation)
  checkpointed,  // keep states only; each step's activations are recomputed in its VJP
};

// A zero gradient shaped like a flow's parameters, in `dtype` (F32 for the trainer).
inline field::FlowWeights zero_flow_gradients(const field::FlowWeights& like, DType dtype = DType::F32) {
  field::FlowWeights g = like;
  field::for_each_flow_parameter(g, [&](const std::string&, Tensor& t) { t = zeros(t.shape(), dtype); });
  return g;
}

template <TrainableBackend B>
class FlasLoss {
 public:
  FlasLoss(const gemma2::Model<B>& base, int layer, float div_weight = 0.1f,
           GradientStrategy strategy = GradientStrategy::direct)
      : base_(base), layer_(layer), div_weight_(div_weight), strategy_(strategy) {
    FLAS_CHECK(layer >= 0 && layer < base.config().num_hidden_layers, "FLAS loss: steering layer ", layer,
               " is outside 0..", base.config().num_hidden_layers - 1);
  }

  // Loss of `flow` on the batch. With `grads` (shaped like flow.weights(); F32, or the backend's
  // activation dtype), ∂loss/∂θ is ADDED into it, so micro-batches accumulate.
  LossParts operator()(const field::FlasFlow<B>& flow, const TrainBatch& batch, field::FlowWeights* grads) const {
    check(flow, batch);
    const std::int64_t Bn = batch.input_ids.dim(0), S = batch.input_ids.dim(1);
    const BatchLayout at = BatchLayout::of(Bn, S, batch.attention_mask);
    const auto frozen = [&] {  // the frozen forward: nothing in it is differentiated
      Bf16ActivationsScope<B> fast(bf16_frozen_forward_);
      return std::pair{base_prefix_forward(base_, layer_, batch.input_ids, at),
                       condition::encode_concepts(base_, batch.concept_ids, batch.concept_mask)};
    }();
    const auto& h = frozen.first;
    const auto& concepts = frozen.second;
    const ConditioningTape<B> cond = record_conditioning(flow, concepts, base_.inv_freq());

    // The field accumulates into a target of the activation dtype; another dtype gets a staging copy.
    field::FlowWeights staging;
    field::FlowWeights* target = grads;
    if (grads && !in_activation_dtype(flow.weights(), *grads)) {
      staging = zero_flow_gradients(flow.weights(), B::activation_dtype);
      target = &staging;
    }
    FlowOdeField<B> field(flow, cond, at, base_.inv_freq(), target, strategy_ == GradientStrategy::direct);
    const ode::PerRowTime<float> axis{std::vector<double>(std::size_t(Bn), double(batch.flowtime))};
    const ode::StepCount schedule{batch.steps};
    LastVelocity last{batch.steps - 1, {}};
    UpperStack<B> upper(base_, layer_ + 1);
    LossParts parts;

    auto finish_forward = [&](const Tensor& h_N, bool with_gradient) {
      const LmLoss lm = upper.forward(h_N, batch.labels, at, with_gradient);
      parts.lm_loss = lm.loss;
      parts.tokens = lm.tokens;
    };
    if (!grads) {
      const auto sol = ode::integrate<ode::Euler>(field, h, axis, schedule, last);
      finish_forward(sol.ys.back(), false);
      parts.div_loss = diversity_loss<B>(last.v, at, batch.concept_of_row, nullptr);
    } else {
      auto backward = [&](auto& sol) {
        finish_forward(sol.ys.back(), true);
        auto dv = activation<B>(last.v.shape());
        parts.div_loss = diversity_loss<B>(last.v, at, batch.concept_of_row, &dv, double(div_weight_), *comm_);
        if (div_weight_ != 0.0f) field.add_cotangent(batch.steps - 1, dv);
        Tensor dh = upper.backward(at);
        if (comm_->size() > 1) weigh_by_global_tokens(dh, parts);
        const std::vector<Tensor> cot{zero_activation<B>(h.shape()), std::move(dh)};
        sol.backward(cot);
        field.finish();
        parts.flow_gradient_bytes = sol.stats.gradient_bytes_peak + field.tape_bytes_peak();
      };
      if (strategy_ == GradientStrategy::direct) {
        auto sol = ode::solve<ode::Euler>(field, h, axis, schedule, ode::Direct{}, last);
        backward(sol);
      } else {
        auto sol = ode::solve<ode::Euler>(field, h, axis, schedule, ode::Checkpointed{}, last);
        backward(sol);
      }
      if (target != grads) add_converted(*grads, staging);
    }
    parts.loss = parts.lm_loss + double(div_weight_) * parts.div_loss;
    return parts;
  }

  // Data-parallel training: this loss then sees one rank's shard of a global batch, and its gradient
  // is this rank's share of the global batch's gradient (summed over ranks by the trainer): the LM
  // loss is the mean over the global batch's tokens, the diversity loss pairs rows across ranks.
  // Forward-only calls (validation) stay local.
  void set_communicator(const distributed::Communicator& comm) { comm_ = &comm; }
  // Runs the frozen forward (base layers 0..L and the concept encoder, the largest share of a step's
  // FLOPs at 2B) with bf16 activation products where the backend has them (precision_scope.hpp). The
  // upper layers, their VJP and the flow stay exact. Off by default: docs/performance.md measures
  // what it moves the gradient by.
  void set_bf16_frozen_forward(bool on) { bf16_frozen_forward_ = on; }

  int layer() const { return layer_; }
  float div_weight() const { return div_weight_; }
  GradientStrategy strategy() const { return strategy_; }

 private:
  // An observer keeping the velocity of one Euler step (the diversity loss reads the last one).
  struct LastVelocity {
    std::int64_t step;
    Tensor v;
    void operator()(std::int64_t k, double, const Tensor&, const Tensor& vk) {
      if (k == step) v = clone(vk);
    }
  };

  // HF's mean CE over this shard's tokens → its share of the mean over the global batch's tokens.
  void weigh_by_global_tokens(Tensor& dh, LossParts& parts) const {
    const std::int64_t global = comm_->sum(parts.tokens);
    B::scale(dh, global > 0 ? float(double(parts.tokens) / double(global)) : 0.0f);
    parts.lm_loss = comm_->sum(parts.lm_loss * double(parts.tokens)) / double(std::max<std::int64_t>(global, 1));
    parts.tokens = global;
  }

  void check(const field::FlasFlow<B>& flow, const TrainBatch& b) const {
    FLAS_CHECK(b.input_ids.dtype() == DType::I64 && b.input_ids.rank() == 2 && b.input_ids.numel() > 0,
               "FLAS loss: input ids must be I64 [B, S], got ", dtype_name(b.input_ids.dtype()), " ", b.input_ids.shape());
    const std::int64_t Bn = b.input_ids.dim(0);
    FLAS_CHECK(b.labels.shape() == b.input_ids.shape(), "FLAS loss: labels ", b.labels.shape(), " do not match ids ",
               b.input_ids.shape());
    FLAS_CHECK(b.concept_ids.rank() == 2 && b.concept_ids.dim(0) == Bn, "FLAS loss: concept ids ", b.concept_ids.shape(),
               " must hold one concept per batch row (", Bn, " rows)");
    FLAS_CHECK(b.concept_mask.defined() && b.concept_mask.shape() == b.concept_ids.shape(), "FLAS loss: concept mask ",
               b.concept_mask.shape(), " does not match the concept ids ", b.concept_ids.shape());
    FLAS_CHECK(std::int64_t(b.concept_of_row.size()) == Bn, "FLAS loss: ", b.concept_of_row.size(),
               " concept identities for ", Bn, " rows");
    FLAS_CHECK(b.steps >= 1, "FLAS loss: at least one Euler step, got ", b.steps);
    FLAS_CHECK(std::isfinite(b.flowtime) && b.flowtime >= 0, "FLAS loss: flow time must be finite and >= 0, got ",
               b.flowtime);
    FLAS_CHECK(flow.base_config().hidden_size == base_.config().hidden_size, "FLAS loss: the flow was built for hidden size ",
               flow.base_config().hidden_size, ", the base model has ", base_.config().hidden_size);
  }

  // Same parameters and shapes as the flow? (Checked.) Every tensor in the activation dtype? (Returned.)
  static bool in_activation_dtype(const field::FlowWeights& flow_w, field::FlowWeights& grads) {
    std::vector<std::pair<std::string, Shape>> want, got;
    bool same_dtype = true;
    field::for_each_flow_parameter(flow_w, [&](const std::string& n, const Tensor& t) { want.emplace_back(n, t.shape()); });
    field::for_each_flow_parameter(grads, [&](const std::string& n, Tensor& t) {
      got.emplace_back(n, t.shape());
      same_dtype = same_dtype && t.dtype() == B::activation_dtype;
    });
    FLAS_CHECK(want == got, "FLAS loss: the gradient tensors do not have the flow's parameters and shapes");
    return same_dtype;
  }

  static void add_converted(field::FlowWeights& into, field::FlowWeights& from) {
    std::vector<Tensor*> src;
    field::for_each_flow_parameter(from, [&](const std::string&, Tensor& t) { src.push_back(&t); });
    std::size_t i = 0;
    field::for_each_flow_parameter(into, [&](const std::string&, Tensor& t) {
      const Tensor& s = *src[i++];
      for (std::int64_t e = 0; e < t.numel(); ++e) {
        const double sum = element_as_double(t, e) + element_as_double(s, e);
        if (t.dtype() == DType::F32) t.data<float>()[e] = float(sum);
        else if (t.dtype() == DType::F64) t.data<double>()[e] = sum;
        else fail("FLAS loss: gradients must be F32 or F64, got ", dtype_name(t.dtype()));
      }
    });
  }

  const gemma2::Model<B>& base_;
  int layer_;
  float div_weight_;
  GradientStrategy strategy_;
  const distributed::Communicator* comm_ = &distributed::single_process();
  bool bf16_frozen_forward_ = false;
};

}  // namespace flas::train
