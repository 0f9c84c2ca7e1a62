#pragma once
// AdamW as torch.optim.AdamW computes it (decoupled weight decay on every parameter, bias-corrected
// moments, eps added to the corrected root), over named f32 parameter tensors; plus global-norm
// gradient clipping as torch.nn.utils.clip_grad_norm_. The moments are tensors too, so the optimiser
// state saves and restores exactly (resume).
#include <cmath>
#include <map>
#include <string>

#include "flas/core/tensor.hpp"

namespace flas::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  explicit AdamW(AdamWOptions o = {}) : o_(o) {}

  const AdamWOptions& options() const { return o_; }
  std::int64_t steps_taken() const { return t_; }
  void set_steps_taken(std::int64_t t) { t_ = t; }
  // First and second moments by parameter name (created on first use).
  std::map<std::string, Tensor>& first_moments() { return m_; }
  std::map<std::string, Tensor>& second_moments() { return v_; }

  // Call begin_step() once per optimiser step, then update() for every parameter.
  void begin_step() { ++t_; }

  void update(const std::string& name, Tensor& param, const Tensor& grad, double lr) {
    FLAS_CHECK(param.dtype() == DType::F32 && grad.dtype() == DType::F32 && param.numel() == grad.numel(),
               "AdamW: parameter '", name, "' must be an F32 tensor with an F32 gradient of the same size (got ",
               dtype_name(param.dtype()), " ", param.shape(), " and ", dtype_name(grad.dtype()), " ", grad.shape(), ")");
    FLAS_CHECK(t_ >= 1, "AdamW: update() before begin_step()");
    Tensor& m = moment(m_, name, param);
    Tensor& v = moment(v_, name, param);
    const double bc1 = 1.0 - std::pow(o_.beta1, double(t_)), bc2 = 1.0 - std::pow(o_.beta2, double(t_));
    const double step = lr / bc1, root_bc2 = std::sqrt(bc2), decay = 1.0 - lr * o_.weight_decay;
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* mp = m.data<float>();
    float* vp = v.data<float>();
    for (std::int64_t i = 0; i < param.numel(); ++i) {
      const double gi = g[i];
      mp[i] = float(o_.beta1 * mp[i] + (1.0 - o_.beta1) * gi);
      vp[i] = float(o_.beta2 * vp[i] + (1.0 - o_.beta2) * gi * gi);
      const double denom = std::sqrt(double(vp[i])) / root_bc2 + o_.eps;
      p[i] = float(double(p[i]) * decay - step * double(mp[i]) / denom);
    }
  }

 private:
  static Tensor& moment(std::map<std::string, Tensor>& store, const std::string& name, const Tensor& like) {
    auto it = store.find(name);
    if (it == store.end()) it = store.emplace(name, zeros(like.shape(), DType::F32)).first;
    return it->second;
  }
  AdamWOptions o_;
  std::int64_t t_ = 0;
  std::map<std::string, Tensor> m_, v_;
};

// Scales all gradients so that their joint L2 norm is at most max_norm; returns the norm before.
template <class ForEachGrad>
double clip_grad_norm(ForEachGrad&& for_each_grad, double max_norm) {
  double sq = 0;
  for_each_grad([&](Tensor& g) {
    const float* p = g.data<float>();
    for (std::int64_t i = 0; i < g.numel(); ++i) sq += double(p[i]) * double(p[i]);
  });
  const double norm = std::sqrt(sq);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for_each_grad([&](Tensor& g) {
      float* p = g.data<float>();
      for (std::int64_t i = 0; i < g.numel(); ++i) p[i] = float(double(p[i]) * coef);
    });
  return norm;
}

}  // namespace flas::train
