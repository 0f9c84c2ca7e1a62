#pragma once
// Learning rate: linear warmup from 0, then cosine decay to 0 at total_steps, clamped there.
// The reference (FLAS train.py) evaluates its cosine on `step·grad_accum` and never clamps, so with
// accumulation its rate passes zero and climbs again after total_steps/grad_accum optimiser steps; we
// count optimiser steps and clamp (docs/training.md).
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace flas::train {

struct LrSchedule {
  double peak = 5e-5;
  std::int64_t warmup_steps = 0, total_steps = 1;

  // Rate for optimiser step `step` (0-based: the rate used by the first update is at(0)).
  double at(std::int64_t step) const {
    if (step < warmup_steps) return peak * double(step) / double(std::max<std::int64_t>(warmup_steps, 1));
    const double span = double(std::max<std::int64_t>(total_steps - warmup_steps, 1));
    const double progress = std::clamp(double(step - warmup_steps) / span, 0.0, 1.0);
    return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
};

}  // namespace flas::train
