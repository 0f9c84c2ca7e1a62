#pragma once
// A FLAS flow checkpoint and its JSON sidecar, as `flas steer` reads them: the input is the sidecar's
// text, a NUL, then the weights' safetensors bytes. The base model is a tiny Gemma-2 config (hidden 4)
// so that seeds stay small. An accepted flow must have every parameter at its expected shape.
#include <string_view>
#include <cstdint>
#include "flas/field/flow_checkpoint.hpp"
#include "fuzz_support.hpp"
#include "tiny_flow_config.hpp"

namespace flas::fuzz {

inline void feed_flow_checkpoint(std::string_view input) {
  static const gemma2::Config config = fuzz::tiny_flow_config();
  const auto [sidecar, weights] = fuzz::split_at_nul(input);
  const auto weights_file = fuzz::scratch_file("flow.safetensors", weights);
  const auto meta_file = fuzz::scratch_file("flow.json", sidecar);
  fuzz::refuses_cleanly([&] {
    const field::FlowMeta meta = field::read_flow_meta(meta_file);
    (void)meta;
  });
  fuzz::refuses_cleanly([&] {
    field::FlowWeights w = field::load_flow_weights(weights_file, config);
    field::for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) {
      if (!(t.shape() == field::expected_flow_shape(name, config))) fuzz::finding("accepted a parameter of the wrong shape");
      if (t.dtype() != DType::F32 && t.dtype() != DType::BF16) fuzz::finding("accepted a parameter of another dtype");
    });
  });
}

}  // namespace flas::fuzz
