#pragma once
// A training-state folder as `flas train --resume` reads it: `latest` (the input up to the first
// NUL), then state.json (the rest) in the folder `latest` names, beside valid flow/AdamW safetensors.
// An accepted state must let the trainer continue: the rows it hands to the batch maker are rows of
// the training set (the real batch maker indexes the dataset with them).
#include <string_view>
#include <cstdint>
#include "flas/train/trainer.hpp"
#include "fuzz_support.hpp"
#include "toy_trainer.hpp"

namespace flas::fuzz {

inline void feed_train_state(std::string_view input) {
  const auto [latest, state_json] = fuzz::split_at_nul(input);
  const auto dir = fuzz::scratch_dir() / "state";
  fuzz::write_toy_state_folder(dir);  // a complete state-3 (valid safetensors), rewritten each time
  fuzz::write_file(dir / "latest", latest);
  fuzz::write_file(dir / "state-3" / "state.json", state_json);
  fuzz::refuses_cleanly([&] {
    fuzz::ToyFlow flow = fuzz::toy_flow();
    auto o = fuzz::toy_options(dir);
    o.resume = true;
    o.steps = std::numeric_limits<std::int64_t>::max();
    o.stop_after = 2;  // two steps after resuming: crosses an epoch boundary with the toy data
    const std::size_t n_rows = fuzz::toy_rows().size();
    train::Trainer<fuzz::ToyFlow, fuzz::ToyBatch, fuzz::ToyLoss> trainer(flow, fuzz::ToyLoss{}, [&](std::span<const std::size_t> rows) {
      for (std::size_t r : rows)
        if (r >= n_rows) fuzz::finding("resumed trainer hands out a row outside the training set");
      return fuzz::ToyBatch{{rows.begin(), rows.end()}};
    }, fuzz::toy_rows(), o);
    (void)trainer.run([](const fuzz::ToyFlow&) { return train::Validation{}; });
  });
}

}  // namespace flas::fuzz
