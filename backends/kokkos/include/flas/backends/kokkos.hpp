#pragma once
// The Kokkos backend: the op set of flas/core/backend.hpp over one Kokkos execution space, so that the
// same model runs on whatever Kokkos was built for (Serial, OpenMP, CUDA, HIP). Elementwise ops are
// RangePolicy kernels, row reductions and attention TeamPolicy kernels (attention keeps one query row's
// scores in team scratch), and linear is KokkosBlas::gemm (the vendor BLAS behind Kokkos Kernels).
// Semantics are those of ScalarBackend<float> (f32 activations; F32 or BF16 weights).
//
// Initialisation: the first op (or tensor allocation in device memory) calls Kokkos::initialize unless
// the program already has, and Kokkos::finalize runs at exit only if flas initialised it. A program
// that manages Kokkos itself initialises before the first op and finalises after its last tensor dies.
// Threads: one execution-space instance is shared by all calls; with Serial, ops must not run from two
// host threads at once (Serial instances are not thread-safe).
//
// The ops are compiled once into flas::kokkos for Kokkos::DefaultExecutionSpace (extern template
// below); another space needs flas/backends/kokkos/ops_*.hpp and an explicit instantiation.
#include <Kokkos_Core.hpp>

#include <cstdint>

#include "flas/backends/kokkos/memory_space.hpp"
#include "flas/core/attention_params.hpp"
#include "flas/core/backend.hpp"
#include "flas/core/dtype.hpp"
#include "flas/core/tensor.hpp"

namespace flas {

template <class ExecSpace = Kokkos::DefaultExecutionSpace>
struct KokkosBackend {
  using execution_space = ExecSpace;
  using kokkos_memory_space = typename ExecSpace::memory_space;
  using space = kokkos_space_t<ExecSpace>;
  using tensor = BasicTensor<space>;
  static constexpr const char* name = "kokkos";
  static constexpr DType activation_dtype = DType::F32;

  // The execution space's name as Kokkos gives it ("Serial", "OpenMP", "Cuda", ...).
  static const char* execution_space_name() { return ExecSpace::name(); }

  static void embedding(const tensor& ids, const tensor& table, float scale, tensor& out);
  static void linear(const tensor& x, const tensor& w, const tensor* bias, tensor& y);
  static void rms_norm(const tensor& x, const tensor& w, float eps, tensor& y);
  static void add(tensor& y, const tensor& x);
  static void add_gated(tensor& y, const tensor& g, const tensor& x);
  static void rope(tensor& x, const tensor& positions, const tensor& inv_freq);
  static void gelu_tanh_mul(const tensor& gate, const tensor& up, tensor& out);
  static void softcap(tensor& x, float cap);
  static void attention(const tensor& q, const tensor& k, const tensor& v, tensor& out,
                        const nn::AttentionParams& p);
  static void axpy(tensor& y, float a, const tensor& x);
  static void scale(tensor& x, float a);
  static void copy(tensor& dst, const tensor& src);
  static void fill(tensor& x, float value);
};

extern template struct KokkosBackend<Kokkos::DefaultExecutionSpace>;
static_assert(Backend<KokkosBackend<>>);

}  // namespace flas
