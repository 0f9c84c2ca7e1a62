// The row-wise and element-wise CudaBackend ops against the f64 oracle, on the CPU suite's sizes:
// embedding (f32 and bf16 tables, host and device ids), rms_norm (in place too), add, add_gated, axpy,
// scale, fill, copy (device, host <-> device, overlapping), gelu_tanh_mul, softcap, silu, rope (large
// angles), and the fused rms_norm_residual. Tolerances from conformance.hpp.
#include <cmath>

#include "cuda_test_support.hpp"

namespace flas::cuda_test {
namespace {

constexpr std::int64_t kShapes[][2] = {{1, 1}, {1, 7}, {3, 33}, {5, 256}, {64, 2304}};

TEST_CASE("cuda embedding gathers and scales rows of f32 and bf16 tables") {
  for (DType dt : {DType::F32, DType::BF16})
    for (std::int64_t H : {1, 19, 64}) {
      CAPTURE(H);
      const Tensor table = random_tensor({50, H}, dt);
      Tensor ids = Tensor::empty({2, 3}, DType::I64);
      const std::int64_t pick[] = {0, 49, 7, 7, 13, 2};
      for (int i = 0; i < 6; ++i) ids.data<std::int64_t>()[i] = pick[i];
      Tensor ref = Tensor::empty({2, 3, H}, DType::F64);
      Ref::embedding(ids, table, 8.0f, ref);
      CudaTensor out = poisoned_dev({2, 3, H});
      CudaBackend::embedding(ids, table, 8.0f, out);
      FLAS_CHECK_CLOSE(host(out), ref, kElementwise);
      CudaTensor out2 = poisoned_dev({2, 3, H});
      CudaBackend::embedding(dev(ids), dev(table), 8.0f, out2);  // device ids and table
      FLAS_CHECK_CLOSE(host(out2), ref, kElementwise);
    }
  Tensor bad = Tensor::empty({1}, DType::I64);
  bad.data<std::int64_t>()[0] = 50;
  CudaTensor out = poisoned_dev({1, 4});
  CHECK_THROWS_AS(CudaBackend::embedding(bad, random_tensor({50, 4}), 1.0f, out), Error);
}

TEST_CASE("cuda rms_norm uses (1 + w), in place or not; rms_norm_residual fuses h += g ⊙ norm") {
  for (const auto& s : kShapes)
    for (DType wdt : {DType::F32, DType::BF16}) {
      CAPTURE(s[0]);
      CAPTURE(s[1]);
      const Tensor x = random_tensor({s[0], s[1]}, DType::F32, -3.0f, 3.0f);
      const Tensor w = random_tensor({s[1]}, wdt);
      Tensor ref = Tensor::empty({s[0], s[1]}, DType::F64);
      Ref::rms_norm(to_f64(x), w, 1e-6f, ref);
      CudaTensor y = poisoned_dev({s[0], s[1]});
      CudaBackend::rms_norm(dev(x), w, 1e-6f, y);
      FLAS_CHECK_CLOSE(host(y), ref, kReduction);
      CudaTensor inplace = dev(x);
      CudaBackend::rms_norm(inplace, w, 1e-6f, inplace);
      FLAS_CHECK_CLOSE(host(inplace), ref, kReduction);

      const Tensor h0 = random_tensor({s[0], s[1]}), g = random_tensor({s[1]}, wdt);
      Tensor ref_h = to_f64(h0);
      Ref::add_gated(ref_h, g, ref);
      CudaTensor h = dev(h0);
      CudaBackend::rms_norm_residual(h, dev(x), w, 1e-6f, &g);
      FLAS_CHECK_CLOSE(host(h), ref_h, kReduction);
      Tensor ref_plain = to_f64(h0);
      Ref::add(ref_plain, ref);
      CudaTensor h2 = dev(h0);
      CudaBackend::rms_norm_residual(h2, dev(x), w, 1e-6f, nullptr);
      FLAS_CHECK_CLOSE(host(h2), ref_plain, kReduction);
    }
}

TEST_CASE("cuda add, add_gated, axpy, scale, fill, copy") {
  for (const auto& s : kShapes) {
    CAPTURE(s[0]);
    CAPTURE(s[1]);
    const Shape shape{s[0], s[1]};
    const Tensor x = random_tensor(shape), y0 = random_tensor(shape);
    for (DType gdt : {DType::F32, DType::BF16}) {
      const Tensor g = random_tensor({s[1]}, gdt);
      Tensor ref = to_f64(y0);
      Ref::add_gated(ref, g, to_f64(x));
      CudaTensor y = dev(y0);
      CudaBackend::add_gated(y, g, dev(x));
      FLAS_CHECK_CLOSE(host(y), ref, kElementwise);
    }
    {
      Tensor ref = to_f64(y0);
      Ref::add(ref, to_f64(x));
      CudaTensor y = dev(y0);
      CudaBackend::add(y, dev(x));
      FLAS_CHECK_CLOSE(host(y), ref, kElementwise);
    }
    {
      Tensor ref = to_f64(y0);
      Ref::axpy(ref, -0.375f, to_f64(x));
      CudaTensor y = dev(y0);
      CudaBackend::axpy(y, -0.375f, dev(x));
      FLAS_CHECK_CLOSE(host(y), ref, kElementwise);
    }
    {
      Tensor ref = to_f64(y0);
      Ref::scale(ref, 1.7f);
      CudaTensor y = dev(y0);
      CudaBackend::scale(y, 1.7f);
      FLAS_CHECK_CLOSE(host(y), ref, kElementwise);
    }
    {
      CudaTensor y = poisoned_dev(shape);
      CudaBackend::fill(y, 0.25f);
      Tensor ref = Tensor::empty(shape, DType::F64);
      Ref::fill(ref, 0.25f);
      FLAS_CHECK_CLOSE(host(y), ref, 0.0);
      CudaTensor c = poisoned_dev(shape);
      CudaBackend::copy(c, dev(x));
      FLAS_CHECK_CLOSE(host(c), x, 0.0);
      Tensor back = poisoned(shape);
      CudaBackend::copy(back, c);  // device -> host
      FLAS_CHECK_CLOSE(back, x, 0.0);
      CudaTensor c2 = poisoned_dev(shape);
      CudaBackend::copy(c2, x);  // host -> device
      FLAS_CHECK_CLOSE(host(c2), x, 0.0);
    }
  }
}

TEST_CASE("cuda copy has memmove semantics on overlapping views") {
  const Tensor x = random_tensor({10, 4});
  CudaTensor d = dev(x);
  auto dst = d.slice(2, 10), src = d.slice(0, 8);
  CudaBackend::copy(dst, src);  // rows 0..7 -> 2..9
  const Tensor got = host(d);
  Tensor want = clone(x);
  std::memmove(want[2].raw(), x[0].raw(), 8 * x.row_bytes());
  FLAS_CHECK_CLOSE(got, want, 0.0);
}

TEST_CASE("cuda gelu_tanh_mul, softcap and silu") {
  for (const auto& s : kShapes)
    for (float range : {0.05f, 4.0f, 60.0f}) {
      CAPTURE(s[0]);
      CAPTURE(s[1]);
      CAPTURE(range);
      const Shape shape{s[0], s[1]};
      const Tensor gate = random_tensor(shape, DType::F32, -range, range);
      const Tensor up = random_tensor(shape);
      Tensor ref = Tensor::empty(shape, DType::F64);
      Ref::gelu_tanh_mul(to_f64(gate), to_f64(up), ref);
      CudaTensor out = poisoned_dev(shape);
      CudaBackend::gelu_tanh_mul(dev(gate), dev(up), out);
      FLAS_CHECK_CLOSE(host(out), ref, kElementwise);

      Tensor capped_ref = to_f64(gate);
      Ref::softcap(capped_ref, 30.0f);
      CudaTensor capped = dev(gate);
      CudaBackend::softcap(capped, 30.0f);
      FLAS_CHECK_CLOSE(host(capped), capped_ref, kElementwise);

      Tensor silu_ref = to_f64(gate);
      for (std::int64_t i = 0; i < silu_ref.numel(); ++i) {
        double& v = silu_ref.data<double>()[i];
        v = v / (1.0 + std::exp(-v));
      }
      CudaTensor silu = dev(gate);
      CudaBackend::silu(silu);
      FLAS_CHECK_CLOSE(host(silu), silu_ref, kElementwise);
    }
}

TEST_CASE("cuda rope rotates pairs (i, i + hd/2) with f32 angles") {
  for (std::int64_t hd : {2, 8, 24, 256}) {
    CAPTURE(hd);
    const std::int64_t B_ = 2, S = 5, nh = 3;
    const Tensor x = random_tensor({B_, S, nh, hd});
    Tensor pos = Tensor::empty({B_, S}, DType::I64);
    for (std::int64_t i = 0; i < B_ * S; ++i) pos.data<std::int64_t>()[i] = (i * 977) % 8191;  // large angles too
    Tensor inv_freq = Tensor::empty({hd / 2}, DType::F32);
    for (std::int64_t i = 0; i < hd / 2; ++i)
      inv_freq.data<float>()[i] = float(std::pow(10000.0, -2.0 * double(i) / double(hd)));
    Tensor ref = to_f64(x);
    Ref::rope(ref, pos, inv_freq);
    CudaTensor y = dev(x);
    CudaBackend::rope(y, pos, inv_freq);
    FLAS_CHECK_CLOSE(host(y), ref, kElementwise);
  }
}

}  // namespace
}  // namespace flas::cuda_test
