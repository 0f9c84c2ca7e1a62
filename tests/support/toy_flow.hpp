#pragma once
// The smallest flow the trainer accepts: one block, MLP only, width 3, all zeros. With a cheap loss
// (each user brings its own) it lets trainer tests and the training-state fuzz target run in
// milliseconds; the real FLAS loss is exercised by the training tests and the CLI.
#include <cstdint>
#include <vector>

#include "flas/field/flow_weights.hpp"

namespace flas::test {

struct ToyBatch {
  std::vector<std::size_t> rows;
  float flowtime = 0;
  int steps = 0;
};
struct ToyParts {
  double lm_loss = 0, div_loss = 0, loss = 0;
  std::int64_t tokens = 0;
};
struct ToyFlow {
  field::FlowWeights w;
  field::FlowWeights& weights() { return w; }
  const field::FlowWeights& weights() const { return w; }
};

inline ToyFlow toy_flow() {
  ToyFlow f;
  f.w.switches = {false, false, false, true, false};
  f.w.blocks.resize(1);
  auto& b = f.w.blocks[0];
  for (Tensor* t : {&b.pre_mlp_norm, &b.post_mlp_norm, &b.mlp_gate}) *t = zeros({3});
  for (Tensor* t : {&b.mlp.gate_proj, &b.mlp.up_proj, &b.mlp.down_proj}) *t = zeros({3, 3});
  return f;
}

}  // namespace flas::test
