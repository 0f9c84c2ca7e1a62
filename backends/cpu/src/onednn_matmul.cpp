// oneDNN 2.6 matmul (op-descriptor API) behind a primitive cache. Primitive creation costs tens of
// microseconds to milliseconds (JIT), execution of a cached one a few: prefill calls the same handful
// of shapes thousands of times, so primitives are created once per (shape, strides, types, bias).
// Scratchpads are user-managed and thread-local, so concurrent calls from different threads (the
// tiled bf16 path runs one matmul per OpenMP thread) never share oneDNN's global scratchpad.
#include "onednn_matmul.hpp"

#include <dnnl.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::cpu_detail {
namespace {

using dt = dnnl::memory::data_type;

struct Key {
  MatmulShape s;
  bool operator==(const Key& o) const {  // field by field: the struct has padding bytes
    return s.M == o.s.M && s.N == o.s.N && s.K == o.s.K && s.ldx == o.s.ldx && s.ldw == o.s.ldw &&
           s.ldy == o.s.ldy && s.type == o.s.type && s.bias == o.s.bias && s.accumulate == o.s.accumulate &&
           s.x_kmajor == o.s.x_kmajor && s.w_kmajor == o.s.w_kmajor;
  }
};
struct KeyHash {
  std::size_t operator()(const Key& k) const {
    const std::int64_t parts[] = {k.s.M, k.s.N, k.s.K, k.s.ldx, k.s.ldw, k.s.ldy,
                                  std::int64_t(k.s.type) * 16 + (k.s.x_kmajor ? 8 : 0) + (k.s.w_kmajor ? 4 : 0) +
                                      (k.s.bias ? 2 : 0) + (k.s.accumulate ? 1 : 0)};
    std::size_t h = 0xcbf29ce484222325ull;
    for (std::int64_t p : parts) h = (h ^ std::size_t(p)) * 0x100000001b3ull;
    return h;
  }
};

struct Entry {
  dnnl::matmul prim;
  dnnl::memory::desc src, wei, bias, dst;
  std::size_t scratch_bytes = 0;
};

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::matmul::primitive_desc make_pd(const MatmulShape& s, Entry& e) {
  const dt in = s.type == MatmulType::f32 ? dt::f32 : dt::bf16;
  using strides = dnnl::memory::dims;
  e.src = dnnl::memory::desc({s.M, s.K}, in, s.x_kmajor ? strides{1, s.ldx} : strides{s.ldx, 1});
  // w [N, K] is seen as its transpose [K, N] ("ba"); a K-major w is that matrix as stored ("ab").
  e.wei = dnnl::memory::desc({s.K, s.N}, in, s.w_kmajor ? strides{s.ldw, 1} : strides{1, s.ldw});
  e.dst = dnnl::memory::desc({s.M, s.N}, dt::f32, {s.ldy, 1});
  if (s.bias) e.bias = dnnl::memory::desc({1, s.N}, dt::f32, {s.N, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::desc d = s.bias ? dnnl::matmul::desc(e.src, e.wei, e.bias, e.dst)
                                      : dnnl::matmul::desc(e.src, e.wei, e.dst);
  return dnnl::matmul::primitive_desc(d, attr, engine());
}

class PrimitiveCache {
 public:
  std::shared_ptr<const Entry> get(const MatmulShape& s) {
    const Key key{s};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = map_.find(key); it != map_.end()) return it->second;
    }
    auto e = std::make_shared<Entry>();
    try {
      const auto pd = make_pd(s, *e);
      e->prim = dnnl::matmul(pd);
      e->scratch_bytes = pd.scratchpad_desc().get_size();
    } catch (const dnnl::error& err) {
      fail("cpu linear: oneDNN rejected a ", s.type == MatmulType::f32 ? "f32" : "bf16", " matmul of [", s.M,
           ", ", s.K, "] x [", s.N, ", ", s.K, "]: ", err.what());
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (map_.size() >= kCapacity) map_.clear();  // shapes churn only in unusual workloads; start over
    return map_.emplace(key, std::move(e)).first->second;
  }

 private:
  static constexpr std::size_t kCapacity = 512;
  std::mutex mutex_;
  std::unordered_map<Key, std::shared_ptr<const Entry>, KeyHash> map_;
};

PrimitiveCache& cache() {
  static PrimitiveCache c;
  return c;
}

}  // namespace

void onednn_matmul(const MatmulShape& s, const void* x, const void* w, const float* bias, float* y) {
  const auto entry = cache().get(s);
  thread_local dnnl::stream stream(engine());
  thread_local std::vector<std::uint8_t> scratch;
  if (scratch.size() < entry->scratch_bytes) scratch.resize(entry->scratch_bytes);

  auto mem = [](const dnnl::memory::desc& md, const void* p) {
    return dnnl::memory(md, engine(), const_cast<void*>(p));
  };
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, mem(entry->src, x)},
                                             {DNNL_ARG_WEIGHTS, mem(entry->wei, w)},
                                             {DNNL_ARG_DST, mem(entry->dst, y)}};
  if (s.bias) args.emplace(DNNL_ARG_BIAS, mem(entry->bias, bias));
  if (entry->scratch_bytes > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory(dnnl::memory::desc({std::int64_t(entry->scratch_bytes)}, dt::u8, {1}), engine(),
                              scratch.data()));
  entry->prim.execute(stream, args);
  stream.wait();
}

bool onednn_has_fast(MatmulType type) {
  auto probe = [](MatmulType t) {
    try {
      MatmulShape s{64, 64, 64, 64, 64, 64, t, false};
      Entry e;
      const auto pd = make_pd(s, e);
      return std::string(pd.impl_info_str()).find("ref") == std::string::npos;
    } catch (const dnnl::error&) {
      return false;
    }
  };
  static const bool f32 = probe(MatmulType::f32);
  static const bool bf16 = probe(MatmulType::bf16);
  return type == MatmulType::f32 ? f32 : bf16;
}

}  // namespace flas::cpu_detail
