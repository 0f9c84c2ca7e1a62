#pragma once
// One optimiser step of a flow, as the trainer takes it after its micro-batches: the accumulated
// gradients averaged over the micro-batches, clipped to a global norm, then one AdamW update of
// every parameter at rate lr. Shared by the trainer and the training benchmark.
#include <string>
#include <vector>

#include "flas/field/flow_weights.hpp"
#include "flas/train/adamw.hpp"

namespace flas::train {

// Returns the gradient norm before clipping. `grads` is modified (averaged and clipped).
inline double apply_flow_gradients(field::FlowWeights& params, field::FlowWeights& grads, AdamW& adam, double lr,
                                   double clip_norm, int grad_accum = 1) {
  FLAS_CHECK(grad_accum >= 1, "optimiser step: grad_accum must be >= 1, got ", grad_accum);
  if (grad_accum > 1)
    field::for_each_flow_parameter(grads, [&](const std::string&, Tensor& g) {
      float* p = g.data<float>();
      for (std::int64_t i = 0; i < g.numel(); ++i) p[i] /= float(grad_accum);
    });
  const double norm = clip_grad_norm(
      [&](auto&& f) { field::for_each_flow_parameter(grads, [&](const std::string&, Tensor& g) { f(g); }); }, clip_norm);
  adam.begin_step();
  std::vector<Tensor*> gs;
  field::for_each_flow_parameter(grads, [&](const std::string&, Tensor& g) { gs.push_back(&g); });
  std::size_t i = 0;
  field::for_each_flow_parameter(params, [&](const std::string& name, Tensor& w) { adam.update(name, w, *gs[i++], lr); });
  return norm;
}

}  // namespace flas::train
