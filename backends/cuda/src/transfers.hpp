#pragma once
// Moving host bytes to the device and back, and the two caches that make host operands cheap:
// weights (uploaded once) and small per-call inputs (ids, positions, padding bytes; re-copied only
// when their bytes change). See cuda.hpp for the policy and transfers.cpp / weight_cache.cpp for how.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "flas/backends/cuda.hpp"

namespace flas::cuda_detail {

// Host -> device, stream-ordered. Up to kStagedCopyMax bytes go through pinned staging (recordable
// into a graph); larger copies synchronise the stream before returning (the source may be pageable).
void copy_to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t s);
// Device -> host; synchronises the stream.
void copy_to_host(void* dst, const void* src, std::size_t bytes, cudaStream_t s);

// A device copy of `bytes` host bytes at `host` (ids, positions, key_valid), valid for work enqueued
// on `s` after this call. Re-copied only when the bytes differ from the last copy of that address.
const void* host_input_on_device(const void* host, std::size_t bytes, cudaStream_t s);
// Forgets every cached input copy (after a graph recording was abandoned: its copies never ran).
void forget_host_inputs();
// Before recording: makes sure staging has room for one step, so it never has to wrap mid-recording.
void make_staging_room_for_recording(cudaStream_t s);

// The device copy of a host weight (uploaded on first use; refused while recording a graph).
const void* weight_on_device(const Tensor& w, cudaStream_t s);

// An operand resolved to device memory.
struct DeviceOperand {
  const void* ptr = nullptr;
  DType dtype = DType::F32;
  Shape shape;
  std::int64_t numel() const { return shape.numel(); }
  bool bf16() const { return dtype == DType::BF16; }
};
// A weight-like operand (weights, tables, norms, gates, biases, inv_freq): F32 or BF16 (inv_freq: F32).
DeviceOperand weight_operand(const cuda::Operand& o, cudaStream_t s);
// An index-like operand (ids, positions, labels): I64.
DeviceOperand index_operand(const cuda::Operand& o, cudaStream_t s);

}  // namespace flas::cuda_detail
