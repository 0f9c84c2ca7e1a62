#pragma once
// Glue for running the FLAS flow templates on CudaBackend where a template is host-only today.
//
// condition::masked_mean (pooled-concept conditioning) static_asserts a host memory space, although
// its loop needs nothing from the host but the concept mask — every tensor access goes through
// backend ops. field::FlasFlow::condition() names masked_mean whether or not pooling is switched on,
// so FlasFlow<CudaBackend>::condition() does not compile without this explicit specialisation, which
// is the same loop on CudaBackend. Include this header before instantiating FlasFlow<CudaBackend>.
// It can go once pooled_concept.hpp drops its static_assert (then the primary template serves).
#include "flas/backends/cuda.hpp"
#include "flas/backends/cuda_ode.hpp"  // device states for the ODE core: steering integrates through it
#include "flas/condition/pooled_concept.hpp"

namespace flas::condition {

template <>
inline CudaTensor masked_mean<CudaBackend>(const EncodedConcepts<CudaBackend>& c) {
  const std::int64_t Bn = c.rows(), L = c.length(), H = c.hidden.dim(2);
  CudaTensor out = CudaTensor::empty({Bn, H}, CudaBackend::activation_dtype);
  CudaBackend::fill(out, 0.0f);
  const auto* mask = c.mask.data<std::uint8_t>();
  for (std::int64_t b = 0; b < Bn; ++b) {
    std::int64_t n = 0;
    CudaTensor row = out[b];
    for (std::int64_t i = 0; i < L; ++i)
      if (mask[b * L + i]) {
        CudaBackend::add(row, c.hidden[b][i]);
        ++n;
      }
    FLAS_CHECK(n > 0, "pooled concept: row ", b, " has no real concept token");
    CudaBackend::scale(row, 1.0f / float(n));
  }
  return out;
}

}  // namespace flas::condition
