#pragma once
// The CUDA backend: the op set of flas/core/backend.hpp on device tensors, with the f32 semantics of
// ScalarBackend<float> (activations are F32 on the device; weights F32 or BF16).
//
// Where the templates hand a backend host tensors. Gemma-2 and the FLAS flow keep weights, token ids,
// positions, inv_freq and padding masks on the host (`Tensor`) and only activations in `tensor_t<B>`.
// The ops therefore take such operands as `cuda::Operand` — a host or a device tensor — and move host
// ones to the device themselves:
//   - weights, norm weights, gates, biases, tables, inv_freq: uploaded once into a weight cache keyed by
//     the host tensor's address, size, dtype and owner (an address reused by a new tensor is a miss);
//   - ids, positions, labels and AttentionParams::key_valid: small; copied on each call through pinned
//     staging, skipped when the bytes at that host address are unchanged since the last copy.
// Host weights must not change while cached: after editing one on the host, call forget(weight).
//
// Streams. Every op is enqueued on stream() — a process-wide non-blocking stream unless set_stream()
// named another for this thread — and returns without waiting. Memory comes from a caching allocator
// whose blocks are reused only on the stream that freed them, so freeing a tensor whose kernels are
// still queued is safe. Reading results back (download, copy to a host tensor, the loss of
// cross_entropy) synchronises the stream. cuda_graph.hpp records a whole decode step as one CUDA graph.
//
// This header does not include CUDA headers: CUstream_st* is cudaStream_t.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "flas/core/backend.hpp"
#include "flas/core/dtype.hpp"
#include "flas/core/memory_space.hpp"
#include "flas/core/tensor.hpp"
#include "flas/core/attention_params.hpp"

struct CUstream_st;

namespace flas {

// Device memory of the current CUDA device, from the caching allocator, tied to the current stream.
struct CudaSpace {
  static constexpr const char* name = "cuda";
  static constexpr std::size_t alignment = 256;
  static std::shared_ptr<void> allocate(std::size_t bytes);
};

using CudaTensor = BasicTensor<CudaSpace>;

namespace cuda {

using Stream = CUstream_st*;

// A read-only operand that may live on the host or on the device. Built implicitly from either tensor
// type, so model code passes its host weights and its device activations alike. It only points at the
// tensor: it must not outlive the call it is passed to.
class Operand {
 public:
  Operand(const Tensor& host) : host_(&host) {}           // NOLINT(google-explicit-constructor)
  Operand(const CudaTensor& device) : device_(&device) {}  // NOLINT(google-explicit-constructor)
  const Tensor* host() const { return host_; }
  const CudaTensor* device() const { return device_; }
  const Shape& shape() const { return host_ ? host_->shape() : device_->shape(); }
  DType dtype() const { return host_ ? host_->dtype() : device_->dtype(); }
  std::int64_t numel() const { return shape().numel(); }

 private:
  const Tensor* host_ = nullptr;
  const CudaTensor* device_ = nullptr;
};

// An operand that may be absent (a bias): nullptr, a host tensor pointer or a device tensor pointer.
class OptionalOperand {
 public:
  OptionalOperand(std::nullptr_t) {}                                 // NOLINT(google-explicit-constructor)
  OptionalOperand(const Tensor* host) : host_(host) {}               // NOLINT(google-explicit-constructor)
  OptionalOperand(const CudaTensor* device) : device_(device) {}     // NOLINT(google-explicit-constructor)
  bool present() const { return host_ || device_; }
  Operand get() const { return host_ ? Operand(*host_) : Operand(*device_); }

 private:
  const Tensor* host_ = nullptr;
  const CudaTensor* device_ = nullptr;
};

}  // namespace cuda

struct CudaBackend {
  using space = CudaSpace;
  static constexpr const char* name = "cuda";
  static constexpr DType activation_dtype = DType::F32;

  // How linear() multiplies by BF16 weights when x has more than small_m_max rows (decode-sized calls
  // always take the exact streaming kernel: f32 activations times widened bf16 weights).
  //  exact:        the weight is widened to f32 in a scratch buffer and an f32 GEMM runs (no TF32).
  //  bf16_inputs:  x is rounded to bf16 and cuBLAS multiplies bf16 × bf16 with f32 accumulation
  //                (tensor cores; ~2^-9 relative error per product). The default, as DESIGN.md §4 says.
  // F32 weights always take the f32 GEMM.
  enum class Precision : std::uint8_t { exact, bf16_inputs };
  // Which attention kernel runs (automatic picks by shape; the others exist to test each kernel).
  //  rows:      one block per query row, scores in shared memory (the simplest; any head size).
  //  tiled:     flash-style: 16 queries × 32-key tiles with an online softmax (head size <= 256).
  //  split_kv:  decode: keys split over blocks, GQA heads of a kv head together, partial softmaxes
  //             merged by a second kernel (head size <= 256, queries × group <= 8).
  enum class AttentionKernel : std::uint8_t { automatic, rows, tiled, split_kv };
  static constexpr std::int64_t small_m_max = 8;

  // --- device, settings ----------------------------------------------------------------------------
  // A usable device is present (false without a driver or a GPU: callers skip, they do not fail).
  static bool available();
  static std::string device_description();
  static void set_precision(Precision p);
  static Precision precision();
  static void set_attention_kernel(AttentionKernel k);
  static AttentionKernel attention_kernel();

  // --- streams ---------------------------------------------------------------------------------------
  static cuda::Stream stream();
  // Ops of this thread go to `s` from now on (nullptr: back to the process-wide stream).
  static void set_stream(cuda::Stream s);
  static void synchronize();

  // --- host <-> device ------------------------------------------------------------------------------
  static CudaTensor upload(const Tensor& host);
  static Tensor download(const CudaTensor& device);  // synchronises
  static void copy(CudaTensor& dst, const Tensor& src);
  static void copy(Tensor& dst, const CudaTensor& src);  // synchronises

  // --- caches ----------------------------------------------------------------------------------------
  static void preload(const Tensor& weight);  // upload now rather than at first use
  static void forget(const Tensor& weight);   // drop the device copy (after a host-side edit)
  static void clear_weight_cache();
  static std::size_t weight_cache_bytes();
  static std::size_t allocator_cached_bytes();  // free blocks held for reuse
  static void release_cached_memory();          // synchronises, then frees them

  // --- the op set (flas/core/backend.hpp) -----------------------------------------------------------
  static void embedding(cuda::Operand ids, cuda::Operand table, float scale, CudaTensor& out);
  static void linear(const CudaTensor& x, cuda::Operand w, cuda::OptionalOperand bias, CudaTensor& y);
  static void rms_norm(const CudaTensor& x, cuda::Operand w, float eps, CudaTensor& y);
  static void add(CudaTensor& y, const CudaTensor& x);
  static void add_gated(CudaTensor& y, cuda::Operand g, const CudaTensor& x);
  static void rope(CudaTensor& x, cuda::Operand positions, cuda::Operand inv_freq);
  static void gelu_tanh_mul(const CudaTensor& gate, const CudaTensor& up, CudaTensor& out);
  static void softcap(CudaTensor& x, float cap);
  static void attention(const CudaTensor& q, const CudaTensor& k, const CudaTensor& v, CudaTensor& out,
                        const nn::AttentionParams& p);
  static void axpy(CudaTensor& y, float a, const CudaTensor& x);
  static void scale(CudaTensor& x, float a);
  static void copy(CudaTensor& dst, const CudaTensor& src);
  static void fill(CudaTensor& x, float value);

  // --- extensions ------------------------------------------------------------------------------------
  static void silu(CudaTensor& x);  // x = x·σ(x), in place (nn::silu uses it)
  // h += g ⊙ rms_norm(x, w) in one pass (g absent: 1) — the post-norm + residual of every block.
  static void rms_norm_residual(CudaTensor& h, const CudaTensor& x, cuda::Operand w, float eps,
                                cuda::OptionalOperand gate);
};

static_assert(Backend<CudaBackend>);

// A device tensor's bytes on the host, and a host tensor's on the device (found by ADL).
inline Tensor to_host(const CudaTensor& t) { return CudaBackend::download(t); }
inline CudaTensor to_device(const Tensor& t) { return CudaBackend::upload(t); }

}  // namespace flas
