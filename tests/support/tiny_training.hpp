#pragma once
// The short training run several suites compare across implementations (backends, rank counts): the
// bundled model at layer 3, 20 AdamW steps at the shipped recipe's rate (so parameters move far from
// where they started), and the comparison of two resulting flows against how far training moved them.
// Needs FLAS_PROJECT_MODELS and FLAS_PROJECT_DATA.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "flas/io/safetensors.hpp"
#include "flas/train/train_run.hpp"

namespace flas::testing {

inline train::TrainRecipe tiny_training_recipe(const std::filesystem::path& out, std::int64_t batch = 4, int accum = 1) {
  namespace fs = std::filesystem;
  train::TrainRecipe r;
  r.model_dir = fs::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat";
  r.data = {fs::path(FLAS_PROJECT_DATA) / "axbench/concept10_prod_2b_l20_v1_train.jsonl"};
  r.out_dir = out;
  r.layer = 3;
  r.steps = 20;
  r.batch_size = batch;
  r.grad_accum = accum;
  r.lr = 1e-3;
  r.warmup = 5;
  r.val_every = 10;
  r.val_samples = 16;
  r.max_len = 64;
  r.held_out_concepts = 1;
  r.seed = 3;
  r.progress = false;
  return r;
}

struct FlowDistance {
  double max_abs = 0, max_moved = 0;  // max |θ_a − θ_b| and max |θ_b − θ_start| over every parameter
};

inline FlowDistance compare_flows(const std::filesystem::path& a, const std::filesystem::path& b,
                                  const std::filesystem::path& start) {
  const auto fa = io::SafeTensorsFile::open(a), fb = io::SafeTensorsFile::open(b), f0 = io::SafeTensorsFile::open(start);
  FlowDistance d;
  for (const auto& name : fb.names()) {
    const Tensor x = fa.get(name), y = fb.get(name), z = f0.get(name);
    REQUIRE(x.shape() == y.shape());
    for (std::int64_t i = 0; i < y.numel(); ++i) {
      d.max_abs = std::max(d.max_abs, std::fabs(element_as_double(x, i) - element_as_double(y, i)));
      d.max_moved = std::max(d.max_moved, std::fabs(element_as_double(y, i) - element_as_double(z, i)));
    }
  }
  return d;
}

}  // namespace flas::testing
