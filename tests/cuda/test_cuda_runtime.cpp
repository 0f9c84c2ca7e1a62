// The CUDA backend's machinery: the caching allocator (reuse per stream), the weight cache (identity
// by owner, forget), the small-input cache (bytes changed in place are re-copied), transfers of every
// size, streams, and StepGraph (a recorded step equals the eager one bit for bit, later recordings
// update the executable graph, forbidden calls inside a recording fail cleanly).
#include <cuda_runtime.h>

#include <vector>

#include "cuda_test_support.hpp"

namespace flas::cuda_test {
namespace {

static_assert(Backend<CudaBackend>);

TEST_CASE("cuda allocator reuses a freed block on the same stream only") {
  const void* first = nullptr;
  {
    const CudaTensor a = CudaTensor::empty({1000}, DType::F32);
    first = a.raw();
  }
  const CudaTensor b = CudaTensor::empty({1000}, DType::F32);
  CHECK(b.raw() == first);
  cudaStream_t other = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking) == cudaSuccess);
  {
    const void* freed = nullptr;
    {
      const CudaTensor c = CudaTensor::empty({1000}, DType::F32);
      freed = c.raw();
    }
    cuda::StreamScope scope(other);
    const CudaTensor d = CudaTensor::empty({1000}, DType::F32);
    CHECK(d.raw() != freed);
  }
  CudaBackend::synchronize();
  REQUIRE(cudaStreamSynchronize(other) == cudaSuccess);
  CudaBackend::release_cached_memory();
  CHECK(CudaBackend::allocator_cached_bytes() == 0);
  (void)cudaStreamDestroy(other);
}

TEST_CASE("cuda transfers round-trip every dtype and size") {
  for (std::int64_t n : {1, 1000, 700000}) {  // 700000 f32 = 2.8 MB: past the staged-copy limit
    CAPTURE(n);
    const Tensor f = random_tensor({n});
    FLAS_CHECK_CLOSE(host(dev(f)), f, 0.0);
    const Tensor b = random_tensor({n}, DType::BF16);
    FLAS_CHECK_CLOSE(host(dev(b)), b, 0.0);
    const Tensor i = convert(b, DType::I64);
    FLAS_CHECK_CLOSE(host(dev(i)), i, 0.0);
  }
}

TEST_CASE("cuda weight cache: identity by owner, forget() after a host edit") {
  const CudaTensor x = dev(random_tensor({2, 8}));
  std::vector<float> buffer(32, 0.5f);
  auto run = [&](const Tensor& w) {
    CudaTensor y = poisoned_dev({2, 4});
    CudaBackend::linear(x, w, nullptr, y);
    return host(y);
  };
  auto ref = [&](const Tensor& w) {
    Tensor r = Tensor::empty({2, 4}, DType::F64);
    Ref::linear(to_f64(host(x)), w, nullptr, r);
    return r;
  };
  // Two host tensors at one address with different owners: the second is a new weight.
  const Tensor w1 = Tensor::wrap(buffer.data(), {4, 8}, DType::F32, std::make_shared<int>(1));
  FLAS_CHECK_CLOSE(run(w1), ref(w1), kReduction);
  std::fill(buffer.begin(), buffer.end(), -0.25f);
  const Tensor w2 = Tensor::wrap(buffer.data(), {4, 8}, DType::F32, std::make_shared<int>(2));
  FLAS_CHECK_CLOSE(run(w2), ref(w2), kReduction);
  // The same tensor edited in place stays cached until forget().
  buffer[0] = 3.0f;
  CHECK(flas::testing::max_rel_diff(run(w2), ref(w2)) > kReduction);
  CudaBackend::forget(w2);
  FLAS_CHECK_CLOSE(run(w2), ref(w2), kReduction);
  CHECK(CudaBackend::weight_cache_bytes() > 0);
}

TEST_CASE("cuda host inputs changed in place are copied again") {
  const Tensor x = random_tensor({1, 4, 2, 16});
  Tensor pos = Tensor::empty({1, 4}, DType::I64);
  Tensor inv_freq = Tensor::empty({8}, DType::F32);
  for (int i = 0; i < 8; ++i) inv_freq.data<float>()[i] = float(std::pow(10000.0, -i / 8.0));
  for (std::int64_t shift : {0, 100, 100, 7}) {
    CAPTURE(shift);
    for (int i = 0; i < 4; ++i) pos.data<std::int64_t>()[i] = shift + i;
    Tensor ref = to_f64(x);
    Ref::rope(ref, pos, inv_freq);
    CudaTensor y = dev(x);
    CudaBackend::rope(y, pos, inv_freq);
    FLAS_CHECK_CLOSE(host(y), ref, kElementwise);
  }
}

TEST_CASE("cuda ops on a thread's own stream") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  const Tensor x = random_tensor({40, 64}), w = random_tensor({32, 64}, DType::BF16);
  Tensor ref = Tensor::empty({40, 32}, DType::F64);
  Ref::linear(to_f64(x), w, nullptr, ref);
  {
    cuda::StreamScope scope(s);
    CHECK(CudaBackend::stream() == s);
    PrecisionScope exact(CudaBackend::Precision::exact);
    CudaTensor y = poisoned_dev({40, 32});
    CudaBackend::linear(dev(x), w, nullptr, y);
    FLAS_CHECK_CLOSE(host(y), ref, kReduction);
  }
  CHECK(CudaBackend::stream() != s);
  (void)cudaStreamDestroy(s);
}

// A small decode-like step: norm, projection, rope, attention over a cache with padding, residual.
struct MiniStep {
  Tensor w = random_tensor({64, 64}, DType::BF16), norm = random_tensor({64}), inv_freq = Tensor::empty({8}, DType::F32);
  CudaTensor k = dev(random_tensor({2, 10, 4, 16})), v = dev(random_tensor({2, 10, 4, 16}));
  std::vector<std::uint8_t> valid = std::vector<std::uint8_t>(20, 1);
  Tensor pos = Tensor::empty({2, 1}, DType::I64);
  MiniStep() {
    for (int i = 0; i < 8; ++i) inv_freq.data<float>()[i] = float(std::pow(10000.0, -i / 8.0));
  }
  // h [2, 1, 64] -> updated h; `past` keys in use before this token.
  void operator()(CudaTensor& h, std::int64_t past) {
    CudaTensor t = CudaTensor::empty(h.shape(), DType::F32);
    CudaBackend::rms_norm(h, norm, 1e-6f, t);
    CudaTensor q = CudaTensor::empty({2, 1, 4, 16}, DType::F32);
    CudaBackend::linear(t, w, nullptr, q);
    for (int b = 0; b < 2; ++b) pos.data<std::int64_t>()[b] = past;
    valid[std::size_t(past)] = 1;
    valid[std::size_t(10 + past)] = past % 2 ? 0 : 1;
    CudaBackend::rope(q, pos, inv_freq);
    nn::AttentionParams p;
    p.scale = 0.25f;
    p.softcap = 50.0f;
    p.kv_len = past + 1;
    p.key_valid = valid.data();
    CudaTensor a = CudaTensor::empty(q.shape(), DType::F32);
    CudaBackend::attention(q, k, v, a, p);
    CudaBackend::add(h, a.view(h.shape()));
  }
};

TEST_CASE("cuda StepGraph: a recorded step equals the eager one, later steps update the graph") {
  MiniStep step;
  const Tensor h0 = random_tensor({2, 1, 64});
  CudaTensor eager = dev(h0), graphed = dev(h0);
  for (std::int64_t past = 0; past < 6; ++past) step(eager, past);
  const Tensor want = host(eager);

  cuda::StepGraph graph;
  step(graphed, 0);  // warm-up: weights uploaded eagerly
  for (std::int64_t past = 1; past < 6; ++past) graph.run([&] { step(graphed, past); });
  FLAS_CHECK_CLOSE(host(graphed), want, 0.0);
  CHECK(graph.stats().launches == 5);
  CHECK(graph.stats().instantiations + graph.stats().updates == 5);
  CHECK(graph.stats().nodes > 0);
  MESSAGE("graph nodes ", graph.stats().nodes, ", instantiations ", graph.stats().instantiations, ", updates ",
          graph.stats().updates);
}

TEST_CASE("cuda StepGraph refuses reads and uploads inside a recording, and recovers") {
  cuda::StepGraph graph;
  const CudaTensor x = dev(random_tensor({4, 8}));
  CHECK_THROWS_AS(graph.run([&] { (void)host(x); }), Error);
  const Tensor cold_weight = random_tensor({8, 8});
  CHECK_THROWS_AS(graph.run([&] {
                    CudaTensor y = CudaTensor::empty({4, 8}, DType::F32);
                    CudaBackend::linear(x, cold_weight, nullptr, y);
                  }),
                  Error);
  // Eager work is fine afterwards.
  CudaTensor y = poisoned_dev({4, 8});
  CudaBackend::linear(x, cold_weight, nullptr, y);
  Tensor ref = Tensor::empty({4, 8}, DType::F64);
  Ref::linear(to_f64(host(x)), cold_weight, nullptr, ref);
  FLAS_CHECK_CLOSE(host(y), ref, kReduction);
}

}  // namespace
}  // namespace flas::cuda_test
