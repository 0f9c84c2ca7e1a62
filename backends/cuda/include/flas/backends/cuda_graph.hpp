#pragma once
// One CUDA graph per decode step (flow steps + base model), llama.cpp's way: each step is *recorded*
// by running the unchanged host code under stream capture, then launched as a single graph. The
// executable graph is kept and updated in place (cudaGraphExecUpdate) when the new recording has the
// same topology — every decode step of a batch does — so a step costs one capture, one cheap update
// and one launch instead of ~15 launches per layer.
//
// Why re-record rather than replay: the model templates bake step-dependent host values into the
// calls (the past length in KV-cache slices, kv_len, positions and padding bytes copied from the
// host). Re-recording picks them up with no change to any model or field.
//
// Rules while recording (the step function must respect them; violations throw flas::Error):
//   - no device -> host reads (download, cross_entropy's loss): read results after run() returns;
//   - every weight already on the device: run one step eagerly first (or preload the weights);
//   - nothing else uses the stream until run() returns (it launches right after recording).
// Allocating inside the step is fine: the caching allocator hands out ordinary device memory (a
// tensor made inside, such as the step's logits, stays valid afterwards), and after one eager step its
// cache already holds every block a step needs. Host inputs go through pinned staging that is not
// reused before the device has passed them (begin_recording makes room first).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "flas/backends/cuda.hpp"

namespace flas::cuda {

// Routes this thread's CudaBackend ops to `s` for the scope's lifetime.
class StreamScope {
 public:
  explicit StreamScope(Stream s) : previous_(CudaBackend::stream()) { CudaBackend::set_stream(s); }
  ~StreamScope() { CudaBackend::set_stream(previous_); }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  Stream previous_;
};

class StepGraph {
 public:
  struct Stats {
    std::int64_t launches = 0, instantiations = 0, updates = 0;
    std::size_t nodes = 0;  // of the last recording
  };

  StepGraph();
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Records `step()` on CudaBackend::stream() and launches it; returns without waiting for the GPU.
  template <class Step>
  void run(Step&& step) {
    begin_recording();
    try {
      std::forward<Step>(step)();
    } catch (...) {
      abandon_recording();
      throw;
    }
    finish_recording_and_launch();
  }

  const Stats& stats() const;

  void begin_recording();
  void finish_recording_and_launch();
  void abandon_recording();  // after an exception inside the step: ends capture, drops the recording

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flas::cuda
