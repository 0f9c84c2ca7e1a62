#pragma once
// Launchers of the backend's kernels: plain C++ declarations (raw device pointers, element counts, a
// stream), so that the host-side op code compiles with the host compiler and the .cu files stay the
// only nvcc work. Every launcher returns at once for empty sizes, launches on `s`, and throws
// flas::Error on a launch error. Activations are f32; weight-like operands F32 or BF16 (WeightPtr).
#include <cuda_runtime.h>

#include <cstdint>

namespace flas::cuda_kernels {

// A weight-like operand of F32 or BF16 elements, read as f32. p == nullptr: absent (bias, gate).
struct WeightPtr {
  const void* p = nullptr;
  bool bf16 = false;
};

// --- pointwise.cu: row-wise and element-wise forwards, casts, column sums ---------------------------
void embedding(const std::int64_t* ids, WeightPtr table, float scale, float* out, std::int64_t n, std::int64_t H,
               cudaStream_t s);
void rms_norm(const float* x, WeightPtr w, float eps, float* y, std::int64_t M, std::int64_t D, cudaStream_t s);
// h += gate ⊙ rms_norm(x) (gate.p == nullptr: gate 1).
void rms_norm_residual(float* h, const float* x, WeightPtr w, WeightPtr gate, float eps, std::int64_t M,
                       std::int64_t D, cudaStream_t s);
void add(float* y, const float* x, std::int64_t n, cudaStream_t s);
void add_gated(float* y, WeightPtr g, const float* x, std::int64_t n, std::int64_t D, cudaStream_t s);
void gate_product(float* out, WeightPtr g, const float* x, std::int64_t n, std::int64_t D, cudaStream_t s);
void axpy(float* y, float a, const float* x, std::int64_t n, cudaStream_t s);
void scale(float* x, float a, std::int64_t n, cudaStream_t s);
void fill(float* x, float value, std::int64_t n, cudaStream_t s);
void softcap(float* x, float cap, std::int64_t n, cudaStream_t s);
void gelu_tanh_mul(const float* gate, const float* up, float* out, std::int64_t n, cudaStream_t s);
void silu(float* x, std::int64_t n, cudaStream_t s);
// Rotates pairs (i, i + hd/2) of each of the `rows` × nh heads by angle pos·inv_freq_i (f32), or by
// −angle when sin_sign = −1 (the VJP).
void rope(float* x, const std::int64_t* positions, const float* inv_freq, std::int64_t rows, std::int64_t nh,
          std::int64_t hd, float sin_sign, cudaStream_t s);
void round_to_bf16(const float* x, std::uint16_t* out, std::int64_t n, cudaStream_t s);
void widen_bf16(const std::uint16_t* x, float* out, std::int64_t n, cudaStream_t s);
void add_bias(float* y, WeightPtr bias, std::int64_t M, std::int64_t N, cudaStream_t s);
// out[d] += Σ_m a[m,d] · (b ? b[m,d] : 1) · (row_scale ? row_scale[m] : 1), one thread per column
// summing in a fixed order (deterministic).
void column_dot_accumulate(const float* a, const float* b, const float* row_scale, std::int64_t M, std::int64_t D,
                           float* out, cudaStream_t s);

// --- gemv.cu: decode-sized linear -------------------------------------------------------------------
inline constexpr int kSmallLinearMaxRows = 8;
// y[M,N] = x[M,K]·w[N,K]ᵀ (+ bias), M <= kSmallLinearMaxRows; y must not overlap x.
void small_m_linear(const float* x, WeightPtr w, WeightPtr bias, float* y, int M, int N, int K, cudaStream_t s);

// --- attention.cu / attention_backward.cu -----------------------------------------------------------
// q [B,Sq,nH,hd], k/v [B,cap,nKV,hd], out [B,Sq,nH,hd]; keys j < Sk are used; query i sits at key
// index past + i; rule = int(nn::MaskRule).
struct AttentionArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
  const std::uint8_t* key_valid = nullptr;  // device [B, cap] or nullptr
  int B = 0, Sq = 0, nH = 0, hd = 0, cap = 0, nKV = 0, Sk = 0, group = 1;
  std::int64_t past = 0, window = 0;
  float scale = 1.0f, softcap = 0.0f;
  int rule = 0;
  bool causal = true;
};

inline constexpr int kAttentionMaxHeadDim = 256;  // tiled and split_kv keep a head row in registers
inline constexpr int kSplitKvMaxRows = 8;         // split_kv: queries × group per block

void attention_rows(const AttentionArgs& a, cudaStream_t s);
void attention_tiled(const AttentionArgs& a, cudaStream_t s);
// Number of key splits split_kv uses, and the f32 scratch it needs ([B·Sq·nH·splits] × (hd + 2)).
int split_kv_splits(const AttentionArgs& a);
void attention_split_kv(const AttentionArgs& a, int splits, float* scratch, cudaStream_t s);

// dq written; dk, dv accumulated (rows < Sk). stats: f32 scratch of [B·Sq·nH] × 3.
void attention_backward(const AttentionArgs& a, const float* dout, float* dq, float* dk, float* dv, float* stats,
                        cudaStream_t s);

// --- backward.cu ------------------------------------------------------------------------------------
// Per row m of x [M,D]: r_m = (mean x² + eps)^−½ and c_m = Σ_d dy·(1 + w)·x.
void rms_norm_row_stats(const float* x, WeightPtr w, const float* dy, float eps, float* r, float* c, std::int64_t M,
                        std::int64_t D, cudaStream_t s);
// dx = r (1 + w) dy − r³ x c / D; dx may be dy.
void rms_norm_dx(const float* x, WeightPtr w, const float* dy, const float* r, const float* c, float* dx,
                 std::int64_t M, std::int64_t D, cudaStream_t s);
void gelu_tanh_mul_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                            std::int64_t n, cudaStream_t s);
void softcap_backward(const float* y, float cap, const float* dy, float* dx, std::int64_t n, cudaStream_t s);
void silu_backward(const float* x, const float* dy, float* dx, std::int64_t n, cudaStream_t s);
// Per row: loss_m = logsumexp(z) − z[label] with z = logits, or cap·tanh(logits/cap) when cap > 0;
// dlogits (may be logits, may be nullptr) = (softmax(z) − onehot)·inv_count, times the cap's
// derivative when cap > 0. Rows labelled −100 get loss 0 and gradient 0. Labels are valid (checked).
void cross_entropy(const float* logits, const std::int64_t* labels, float cap, float inv_count, float* dlogits,
                   float* row_loss, std::int64_t M, std::int64_t V, cudaStream_t s);

// --- state_ops.cu: ODE state arithmetic (F32 or F64 elements, `f64` says which) ----------------------
inline constexpr int kScaledSumMaxTerms = 16;
// y = x + Σ_j E(coeff[r·m + j])·k_j for each row r (uniform: one coefficient row for all rows; x ==
// nullptr: no base term), products and sums rounded separately in the element type E, terms in order.
void row_scaled_sum(void* y, const void* x, const void* const* k, int m, const double* coeff, bool uniform,
                    std::int64_t rows, std::int64_t per_row, bool f64, cudaStream_t s);
enum class StateReduction : int { dot, sum_sq, max_abs, error_norm, scaled_norm, scaled_norm_no_minus };
// Per-block partial results (sums, or maxima for max_abs) of the reduction's double terms over n elements
// of a, b, c (as the reduction uses them), into partial[0 .. state_reduce_blocks(n)).
int state_reduce_blocks(std::int64_t n);
void state_reduce(StateReduction kind, const void* a, const void* b, const void* c, double atol, double rtol,
                  std::int64_t n, bool f64, double* partial, cudaStream_t s);

}  // namespace flas::cuda_kernels
