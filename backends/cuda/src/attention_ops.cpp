// attention() and attention_backward(): checks as the reference makes them, AttentionParams turned
// into kernel arguments (key_valid copied from the host), and the choice of kernel (attention.cu).
//
// Automatic choice: split_kv when all queries of a kv head's group fit one block (decode and short
// chunks: ≤ 8 rows), tiled for longer query runs, rows only for head sizes above 256.
#include <initializer_list>

#include "caching_allocator.hpp"
#include "flas/backends/cuda_backward.hpp"
#include "op_support.hpp"
#include "runtime.hpp"

namespace flas {
namespace {

using namespace cuda_detail;
namespace k = cuda_kernels;

struct Geometry {
  std::int64_t B, Sq, nH, hd, cap, nKV, Sk;
};

Geometry check_geometry(const CudaTensor& q, const CudaTensor& kt, const CudaTensor& v,
                        const nn::AttentionParams& p, const char* op) {
  FLAS_CHECK(q.rank() == 4 && kt.rank() == 4, op, ": q ", q.shape(), " and k ", kt.shape(),
             " must be [B, S, heads, head_dim]");
  expect_f32(q, op, "q");
  expect_f32(kt, op, "k");
  expect_f32(v, op, "v");
  Geometry g{q.dim(0), q.dim(1), q.dim(2), q.dim(3), kt.dim(1), kt.dim(2), 0};
  g.Sk = p.kv_len < 0 ? g.cap : p.kv_len;
  FLAS_CHECK(g.nKV > 0 && g.nH % g.nKV == 0 && kt.dim(0) == g.B && kt.dim(3) == g.hd && v.shape() == kt.shape() &&
                 g.Sk <= g.cap && (g.Sk >= g.Sq || !p.causal) && (g.Sk > 0 || g.Sq == 0),
             op, ": q ", q.shape(), ", k ", kt.shape(), ", v ", v.shape(), ", kv_len ", g.Sk, " do not fit");
  for (std::int64_t n : {g.B, g.Sq, g.nH, g.hd, g.cap, g.nKV}) (void)as_int(n, op);
  return g;
}

k::AttentionArgs kernel_args(const Geometry& g, const nn::AttentionParams& p, const CudaTensor& q,
                             const CudaTensor& kt, const CudaTensor& v, cudaStream_t s) {
  k::AttentionArgs a;
  a.q = q.data<float>();
  a.k = kt.data<float>();
  a.v = v.data<float>();
  a.B = int(g.B);
  a.Sq = int(g.Sq);
  a.nH = int(g.nH);
  a.hd = int(g.hd);
  a.cap = int(g.cap);
  a.nKV = int(g.nKV);
  a.Sk = int(g.Sk);
  a.group = int(g.nH / g.nKV);
  a.past = p.causal ? g.Sk - g.Sq : 0;  // cross-attention has no past
  a.window = p.window;
  a.scale = p.scale;
  a.softcap = p.softcap;
  a.rule = int(p.rule);
  a.causal = p.causal;
  if (p.key_valid)
    a.key_valid = static_cast<const std::uint8_t*>(host_input_on_device(p.key_valid, std::size_t(g.B * g.cap), s));
  return a;
}

CudaBackend::AttentionKernel choose_kernel(const k::AttentionArgs& a) {
  const CudaBackend::AttentionKernel forced = CudaBackend::attention_kernel();
  const bool small_head = a.hd <= k::kAttentionMaxHeadDim;
  const bool split_fits = small_head && a.Sq * a.group <= k::kSplitKvMaxRows;
  switch (forced) {
    case CudaBackend::AttentionKernel::rows: return forced;
    case CudaBackend::AttentionKernel::tiled:
      if (small_head) return forced;
      break;
    case CudaBackend::AttentionKernel::split_kv:
      if (split_fits) return forced;
      break;
    case CudaBackend::AttentionKernel::automatic: break;
  }
  if (split_fits) return CudaBackend::AttentionKernel::split_kv;
  return small_head ? CudaBackend::AttentionKernel::tiled : CudaBackend::AttentionKernel::rows;
}

}  // namespace

void CudaBackend::attention(const CudaTensor& q, const CudaTensor& kt, const CudaTensor& v, CudaTensor& out,
                            const nn::AttentionParams& p) {
  const Geometry g = check_geometry(q, kt, v, p, "attention");
  expect_f32(out, "attention", "out");
  FLAS_CHECK(out.shape() == q.shape(), "attention: out ", out.shape(), " must match q ", q.shape());
  if (out.numel() == 0) return;
  const cudaStream_t s = current_stream();
  k::AttentionArgs a = kernel_args(g, p, q, kt, v, s);
  // The reference writes through a buffer, so out may alias any input; the kernels need it apart.
  const bool aliased = overlaps(out, q) || overlaps(out, kt) || overlaps(out, v);
  Scratch<float> tmp;
  if (aliased) tmp = scratch<float>(out.numel(), s);
  a.out = aliased ? tmp.ptr : out.data<float>();
  switch (choose_kernel(a)) {
    case AttentionKernel::rows: k::attention_rows(a, s); break;
    case AttentionKernel::tiled: k::attention_tiled(a, s); break;
    case AttentionKernel::split_kv:
    case AttentionKernel::automatic: {
      const int splits = k::split_kv_splits(a);
      const Scratch<float> partial = scratch<float>(g.B * g.Sq * g.nH * splits * (g.hd + 2), s);
      k::attention_split_kv(a, splits, partial.ptr, s);
      break;
    }
  }
  if (aliased) FLAS_CUDA(cudaMemcpyAsync(out.raw(), tmp.ptr, out.bytes(), cudaMemcpyDeviceToDevice, s));
}

void BackwardOps<CudaBackend>::attention_backward(const CudaTensor& q, const CudaTensor& kt, const CudaTensor& v,
                                                  const CudaTensor& out, const CudaTensor& dout,
                                                  const nn::AttentionParams& p, CudaTensor& dq, CudaTensor& dk,
                                                  CudaTensor& dv) {
  const Geometry g = check_geometry(q, kt, v, p, "attention_backward");
  for (const CudaTensor* t : std::initializer_list<const CudaTensor*>{&out, &dout, &dq, &dk, &dv})
    expect_f32(*t, "attention_backward", "out, dout, dq, dk or dv");
  FLAS_CHECK(g.Sk > 0, "attention_backward: no keys (kv_len 0)");
  FLAS_CHECK(out.shape() == q.shape() && dout.shape() == q.shape() && dq.shape() == q.shape() &&
                 dk.shape() == kt.shape() && dv.shape() == v.shape(),
             "attention_backward: out ", out.shape(), ", dout ", dout.shape(), ", dq ", dq.shape(), ", dk ", dk.shape(),
             ", dv ", dv.shape(), " must match q ", q.shape(), " and k/v ", kt.shape());
  FLAS_CHECK(g.hd <= k::kAttentionMaxHeadDim, "attention_backward: head size ", g.hd, " exceeds ",
             k::kAttentionMaxHeadDim);
  for (const CudaTensor* t : {&q, &kt, &v, &dout})
    FLAS_CHECK(!overlaps(dk, *t) && !overlaps(dv, *t), "attention_backward: dk/dv must not overlap the inputs");
  const cudaStream_t s = current_stream();
  const k::AttentionArgs a = kernel_args(g, p, q, kt, v, s);
  const Scratch<float> stats = scratch<float>(g.B * g.Sq * g.nH * 3, s);
  const bool aliased = overlaps(dq, q) || overlaps(dq, kt) || overlaps(dq, v) || overlaps(dq, dout) ||
                       overlaps(dq, dk) || overlaps(dq, dv);
  Scratch<float> tmp;
  if (aliased) tmp = scratch<float>(dq.numel(), s);
  k::attention_backward(a, dout.data<float>(), aliased ? tmp.ptr : dq.data<float>(), dk.data<float>(),
                        dv.data<float>(), stats.ptr, s);
  if (aliased) FLAS_CUDA(cudaMemcpyAsync(dq.raw(), tmp.ptr, dq.bytes(), cudaMemcpyDeviceToDevice, s));
}

}  // namespace flas
