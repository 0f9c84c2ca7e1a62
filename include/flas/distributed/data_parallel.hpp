#pragma once
// Data parallelism over a Communicator: which rows of a global batch a rank takes, and the two
// collectives on a flow's parameters (gradients summed before the optimiser step; parameters sent
// from rank 0 so that every rank starts from the same flow). One flat buffer per collective: a
// single message per step, whatever the number of parameter tensors.
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/distributed/communicator.hpp"
#include "flas/field/flow_weights.hpp"

namespace flas::distributed {

// Rank r's contiguous slice of a global batch of G rows: rows [r·G/K, (r+1)·G/K). G must be a multiple
// of K, so that every rank runs the same shapes (and the diversity loss can gather equal shards).
template <class T>
std::span<const T> shard_of(std::span<const T> global, const Communicator& comm) {
  const std::size_t K = std::size_t(comm.size()), G = global.size();
  FLAS_CHECK(G % K == 0 && G >= K, "data parallel: a global batch of ", G, " rows cannot be split evenly over ", K,
             " ranks (use a batch size that is a multiple of the number of ranks)");
  return global.subspan(std::size_t(comm.rank()) * (G / K), G / K);
}

// Round-robin rows for work that is summed afterwards (validation losses): rank r takes r, r+K, ...
template <class T>
std::vector<T> strided_share(const std::vector<T>& all, const Communicator& comm) {
  std::vector<T> mine;
  for (std::size_t i = std::size_t(comm.rank()); i < all.size(); i += std::size_t(comm.size())) mine.push_back(all[i]);
  return mine;
}

// The number of F32 values in a flow's parameters (the size of one gradient message).
inline std::size_t flow_parameter_count(const field::FlowWeights& w) {
  std::size_t n = 0;
  field::for_each_flow_parameter(w, [&](const std::string&, const Tensor& t) { n += std::size_t(t.numel()); });
  return n;
}

// Every rank's gradients (F32 host tensors) replaced by their sum over ranks.
inline void allreduce_flow_gradients(field::FlowWeights& grads, const Communicator& comm) {
  if (comm.size() == 1) return;
  std::vector<float> flat;
  flat.reserve(flow_parameter_count(grads));
  field::for_each_flow_parameter(grads, [&](const std::string& n, Tensor& g) {
    FLAS_CHECK(g.dtype() == DType::F32, "data parallel: gradient ", n, " is ", dtype_name(g.dtype()), ", expected F32");
    flat.insert(flat.end(), g.data<float>(), g.data<float>() + g.numel());
  });
  comm.allreduce_sum_host(std::span<float>(flat));
  std::size_t at = 0;
  field::for_each_flow_parameter(grads, [&](const std::string&, Tensor& g) {
    std::memcpy(g.data<float>(), flat.data() + at, std::size_t(g.numel()) * sizeof(float));
    at += std::size_t(g.numel());
  });
}

// Rank `root`'s parameters (any dtype, host) to every rank. The shapes must already agree (each rank
// built the flow from the same recipe); a mismatch is caught by comparing the byte count first.
inline void broadcast_flow_parameters(field::FlowWeights& params, const Communicator& comm, int root = 0) {
  if (comm.size() == 1) return;
  std::vector<std::byte> flat;
  field::for_each_flow_parameter(params, [&](const std::string&, Tensor& t) {
    const auto* p = static_cast<const std::byte*>(t.raw());
    flat.insert(flat.end(), p, p + t.bytes());
  });
  const auto bytes = std::int64_t(flat.size());
  FLAS_CHECK(comm.sum(bytes) == bytes * comm.size(), "data parallel: the ranks' flows differ in size (", bytes,
             " bytes on rank ", comm.rank(), "): every rank must build the same flow");
  comm.broadcast_host(std::span<std::byte>(flat), root);
  std::size_t at = 0;
  field::for_each_flow_parameter(params, [&](const std::string&, Tensor& t) {
    std::memcpy(t.raw(), flat.data() + at, t.bytes());
    at += t.bytes();
  });
}

}  // namespace flas::distributed
