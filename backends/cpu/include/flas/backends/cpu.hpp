#pragma once
// The optimised CPU backend: the same op set and the same f32 semantics as ScalarBackend<float>, with
// hand-written SIMD kernels for decode-sized matmuls, oneDNN for prefill-sized ones, and OpenMP over
// rows and heads everywhere else. Only declarations live here: oneDNN, OpenMP and intrinsics stay
// inside the compiled library (backends/cpu/src), so including this header costs nothing.
//
// Kernel selection happens at run time (the library runs on CPUs without AVX-512):
//   FLAS_CPU_ISA=avx512|avx2|generic caps the hand-written kernels; without it, ONEDNN_MAX_CPU_ISA
//   (AVX2, SSE41, AVX512_CORE...) caps them too, so one variable moves both to the same level.
// Threads: OpenMP, honouring OMP_NUM_THREADS; set_num_threads() overrides it for later calls.
#include <cstdint>
#include <span>

#include "flas/core/backend.hpp"
#include "flas/core/dtype.hpp"
#include "flas/core/memory_space.hpp"
#include "flas/core/tensor.hpp"
#include "flas/core/attention_params.hpp"
#include "flas/core/shared_input_linear.hpp"

namespace flas {

struct CpuBackend {
  using space = HostSpace;
  static constexpr const char* name = "cpu";
  static constexpr DType activation_dtype = DType::F32;

  // How linear() treats activations.
  //  exact:            every product is an f32 activation times an (exactly widened) f32/bf16 weight,
  //                    accumulated in f32: matches the f32 reference up to summation order.
  //  bf16_activations: activations are rounded to bf16 for bf16 weights with M above the decode
  //                    threshold, and oneDNN's bf16 matmul runs (AMX / avx512_bf16 where present).
  //                    Relative error ~ 2^-9 per product; for prefill benchmarks, off by default.
  enum class Precision : std::uint8_t { exact, bf16_activations };
  // The instruction set of the hand-written kernels.
  enum class KernelIsa : std::uint8_t { generic, avx2, avx512 };

  // Global settings (thread-safe to read; set them before a model runs).
  static void set_precision(Precision p);
  static Precision precision();
  static void set_num_threads(int n);  // n <= 0: back to the OpenMP default
  static int num_threads();
  // Caps the hand-written kernels at `isa` (clamped to what this CPU supports); returns the level in use.
  static KernelIsa set_kernel_isa(KernelIsa isa);
  static KernelIsa kernel_isa();
  static KernelIsa best_supported_isa();
  static const char* isa_name(KernelIsa isa);
  // Whether oneDNN can run a bf16 matmul here (bf16_activations falls back to exact where it cannot).
  static bool bf16_matmul_available();
  // Decode-sized calls (rows of x <= this; <= 2x this for bf16 weights, in two passes) take the
  // streaming kernel; larger ones oneDNN.
  static constexpr std::int64_t small_m_max = 8;

  // The op set (see flas/core/backend.hpp). Activations are F32; weights, tables, norm weights and gates
  // may be F32 or BF16.
  static void embedding(const Tensor& ids, const Tensor& table, float scale, Tensor& out);
  static void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y);
  static void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, Precision p);
  // Projections of one x (flas/core/shared_input_linear.hpp) in one launch: x packed once, one thread
  // team; decode sizes with weights of one dtype, prefill sizes with bf16 weights on the prefill
  // kernel. Anything else: one linear per weight.
  static void linear_shared_input(const Tensor& x, std::span<const SharedInputProjection<Tensor>> ps);
  static void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y);
  static void add(Tensor& y, const Tensor& x);
  static void add_gated(Tensor& y, const Tensor& g, const Tensor& x);
  static void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq);
  static void gelu_tanh_mul(const Tensor& gate, const Tensor& up, Tensor& out);
  static void softcap(Tensor& x, float cap);
  static void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                        const nn::AttentionParams& p);
  static void axpy(Tensor& y, float a, const Tensor& x);
  static void scale(Tensor& x, float a);
  static void copy(Tensor& dst, const Tensor& src);
  static void fill(Tensor& x, float value);
};

static_assert(Backend<CpuBackend>);

}  // namespace flas
