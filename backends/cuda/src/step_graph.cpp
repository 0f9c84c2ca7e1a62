// StepGraph: record one step under stream capture, update (or instantiate) the executable graph,
// launch it. See cuda_graph.hpp for the rules a recorded step follows.
//
// Capture mode is relaxed: inside a step the weight cache may still need cudaMalloc for a cold
// weight (it refuses the upload itself with a clear error), and relaxed mode keeps such calls from
// invalidating the capture of unrelated threads.
#include "flas/backends/cuda_graph.hpp"
#include "runtime.hpp"
#include "transfers.hpp"

namespace flas::cuda {

using namespace cuda_detail;

struct StepGraph::Impl {
  cudaGraphExec_t exec = nullptr;
  cudaStream_t recording_on = nullptr;
  Stats stats;
};

StepGraph::StepGraph() : impl_(std::make_unique<Impl>()) {}

StepGraph::~StepGraph() {
  if (impl_->recording_on) abandon_recording();
  if (impl_->exec) (void)cudaGraphExecDestroy(impl_->exec);
}

const StepGraph::Stats& StepGraph::stats() const { return impl_->stats; }

void StepGraph::begin_recording() {
  FLAS_CHECK(!impl_->recording_on, "StepGraph: already recording");
  const cudaStream_t s = current_stream();
  make_staging_room_for_recording(s);
  FLAS_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
  impl_->recording_on = s;
}

void StepGraph::finish_recording_and_launch() {
  FLAS_CHECK(impl_->recording_on, "StepGraph: not recording");
  const cudaStream_t s = impl_->recording_on;
  impl_->recording_on = nullptr;
  cudaGraph_t graph = nullptr;
  FLAS_CUDA(cudaStreamEndCapture(s, &graph));
  std::size_t nodes = 0;
  (void)cudaGraphGetNodes(graph, nullptr, &nodes);
  impl_->stats.nodes = nodes;
  bool updated = false;
  if (impl_->exec) {
    cudaGraphExecUpdateResultInfo info{};
    updated = cudaGraphExecUpdate(impl_->exec, graph, &info) == cudaSuccess;
    if (!updated) {
      (void)cudaGetLastError();  // a topology change is not an error: instantiate afresh
      (void)cudaGraphExecDestroy(impl_->exec);
      impl_->exec = nullptr;
    }
  }
  if (!impl_->exec) {
    const cudaError_t e = cudaGraphInstantiate(&impl_->exec, graph, 0);
    if (e != cudaSuccess) {
      (void)cudaGraphDestroy(graph);
      throw_cuda_error(e, "cudaGraphInstantiate", __FILE__, __LINE__);
    }
    ++impl_->stats.instantiations;
  } else if (updated) {
    ++impl_->stats.updates;
  }
  (void)cudaGraphDestroy(graph);  // the executable graph keeps what it needs
  FLAS_CUDA(cudaGraphLaunch(impl_->exec, s));
  ++impl_->stats.launches;
}

void StepGraph::abandon_recording() {
  const cudaStream_t s = impl_->recording_on;
  if (!s) return;
  impl_->recording_on = nullptr;
  cudaGraph_t graph = nullptr;
  (void)cudaStreamEndCapture(s, &graph);
  if (graph) (void)cudaGraphDestroy(graph);
  (void)cudaGetLastError();
  // Host-input copies recorded into the dropped graph never ran: their cache entries are stale.
  forget_host_inputs();
}

}  // namespace flas::cuda
