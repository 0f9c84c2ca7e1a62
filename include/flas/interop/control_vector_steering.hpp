#pragma once
// Steering with llama.cpp control vectors: a steering tap that adds the (summed, scaled) direction of
// layer N to the output of decoder layer N, at every position of every row, in prefill and decode,
// for the layers in [first, last] (inclusive, llama.cpp's --control-vector-layer-range). The add is
// the one llama.cpp does: h ← h + d, with d = Σ scale_i · direction_i already formed in f32.
#include <map>

#include "flas/core/backend.hpp"
#include "flas/interop/control_vector.hpp"
#include "flas/models/gemma2/steering_tap.hpp"

namespace flas::interop {

struct LayerRange {
  int first = 1, last = -1;  // last < 0: up to the model's last layer
};

template <Backend B>
class ControlVectorSteering {
 public:
  ControlVectorSteering(const ControlVector& cv, std::int64_t hidden_size, int num_layers, LayerRange range = {}) {
    FLAS_CHECK(cv.n_embd == hidden_size, "control vector: directions of ", cv.n_embd, " elements, the model's hidden size is ",
               hidden_size);
    const int last = range.last < 0 ? num_layers - 1 : range.last;
    FLAS_CHECK(range.first >= 0 && range.first <= last, "control vector: layer range ", range.first, "..", last, " is empty");
    for (const auto& [layer, d] : cv.directions) {
      FLAS_CHECK(layer < num_layers, "control vector: a direction for layer ", layer, ", the model has layers 0..",
                 num_layers - 1);
      if (layer < range.first || layer > last) continue;
      auto t = tensor_t<B>::empty({hidden_size}, B::activation_dtype);
      Tensor host = Tensor::wrap(const_cast<float*>(d.data()), {hidden_size}, DType::F32);
      B::copy(t, host);
      dirs_.emplace(layer, std::move(t));
    }
  }

  bool wants(int layer) const { return dirs_.count(layer) != 0; }
  std::size_t layers() const { return dirs_.size(); }

  void operator()(gemma2::TapSite<B>& site) {
    const auto& d = dirs_.at(site.layer);
    for (std::int64_t b = 0; b < site.h.dim(0); ++b)
      for (std::int64_t s = 0; s < site.h.dim(1); ++s) {
        auto row = site.h[b][s];
        B::add(row, d);
      }
  }

 private:
  std::map<int, tensor_t<B>> dirs_;
};

}  // namespace flas::interop
