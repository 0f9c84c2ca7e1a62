// What one data-parallel step sends, and how fast this machine's MPI moves it.
//   build/bench/distributed/bench_allreduce                     the per-step volume for 2B and 9B flows
//   mpirun -np 2 build/bench/distributed/bench_allreduce        + the measured allreduce of those sizes
// The trainer sends the flow's gradients as one f32 message per optimiser step (data_parallel.hpp); a
// ring allreduce moves 2(K-1)/K of it in and out of every rank. "Bus bandwidth" below is that traffic over
// the measured time (NCCL's convention), so figures compare across rank counts and with nccl-tests.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "flas/distributed/data_parallel.hpp"
#include "flas/distributed/mpi_communicator.hpp"
#include "flas/field/flow_weights.hpp"
#include "gemma2_2b_config.hpp"

namespace {

using namespace flas;

gemma2::Config gemma2_9b_config() {
  auto c = bench::gemma2_2b_config();  // the same family: softcaps, window, vocabulary
  c.hidden_size = 3584;
  c.intermediate_size = 14336;
  c.num_hidden_layers = 42;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.query_pre_attn_scalar = 256;
  c.layer_types.clear();
  for (int l = 0; l < c.num_hidden_layers; ++l)
    c.layer_types.push_back(l % 2 == 0 ? gemma2::LayerType::sliding_attention : gemma2::LayerType::full_attention);
  return c;
}

// Parameters of a FLAS flow with `blocks` blocks (default switches: self- and cross-attention) for `c`,
// counted from the shapes the checkpoint loader demands, without allocating them.
std::int64_t flow_parameters(const gemma2::Config& c, int blocks) {
  field::FlowWeights w;
  w.blocks.resize(std::size_t(blocks));
  std::int64_t n = 0;
  field::for_each_flow_parameter(w, [&](const std::string& name, Tensor&) {
    std::int64_t e = 1;
    for (auto d : field::expected_flow_shape(name, c)) e *= d;
    n += e;
  });
  return n;
}

double median_seconds(const distributed::Communicator& comm, std::vector<float>& buf, int reps) {
  std::vector<double> t;
  comm.allreduce_sum_host(std::span<float>(buf));  // warm-up: connections, page faults
  for (int r = 0; r < reps; ++r) {
    comm.barrier();
    const auto a = std::chrono::steady_clock::now();
    comm.allreduce_sum_host(std::span<float>(buf));
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  // The slowest rank decides the step: the maximum over ranks of each rank's median.
  std::sort(t.begin(), t.end());
  std::vector<double> all(std::size_t(comm.size()));
  comm.allgather_host(std::span<const double>(&t[t.size() / 2], 1), std::span<double>(all));
  return *std::max_element(all.begin(), all.end());
}

// The floor of a 2-rank allreduce on one machine: every rank must at least read the peer's buffer and
// add it into its own (read two buffers, write one). Timed here, in the same run, on one rank's buffers.
double local_sum_seconds(std::vector<float>& buf) {
  std::vector<float> peer(buf.size(), 0.5f);
  std::vector<double> t;
  for (int r = 0; r < 4; ++r) {
    const auto a = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] += peer[i];
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const bool mpi = distributed::launched_by_mpi();
  std::unique_ptr<distributed::MpiSession> session;
  std::unique_ptr<distributed::MpiCommunicator> world;
  if (mpi) {
    session = std::make_unique<distributed::MpiSession>(&argc, &argv);
    world = std::make_unique<distributed::MpiCommunicator>();
  }
  const distributed::Communicator& comm = world ? *world : distributed::single_process();
  const int K = comm.size();
  struct Row { const char* name; gemma2::Config c; int blocks; };
  const Row rows[] = {{"Gemma-2-2B, 1-block flow", bench::gemma2_2b_config(), 1},
                      {"Gemma-2-2B, 2-block flow", bench::gemma2_2b_config(), 2},
                      {"Gemma-2-9B, 1-block flow", gemma2_9b_config(), 1}};
  if (comm.is_root())
    std::printf("| flow | f32 parameters | message per step | ring traffic per rank (K=%d) | allreduce | bus bandwidth | local sum (floor) | allreduce / floor |\n"
                "|---|---|---|---|---|---|---|---|\n", std::max(K, 2));
  for (const auto& r : rows) {
    const std::int64_t n = flow_parameters(r.c, r.blocks);
    const double bytes = double(n) * 4, ring = bytes * 2.0 * (std::max(K, 2) - 1) / std::max(K, 2);
    char measured[160] = "(run under mpirun) | | | |";
    if (K > 1) {
      std::vector<float> buf(std::size_t(n), 1.0f);
      const double s = median_seconds(comm, buf, 5);
      comm.barrier();
      const double floor = comm.is_root() ? local_sum_seconds(buf) : 0.0;  // alone: the other rank waits
      comm.barrier();
      std::snprintf(measured, sizeof measured, "%.0f ms | %.1f GB/s | %.0f ms | %.1f", s * 1e3, ring / s / 1e9,
                    floor * 1e3, floor > 0 ? s / floor : 0.0);
    }
    if (comm.is_root())
      std::printf("| %s | %.1f M | %.0f MB | %.0f MB | %s |\n", r.name, double(n) / 1e6, bytes / 1e6, ring / 1e6,
                  measured);
  }
  return 0;
}
