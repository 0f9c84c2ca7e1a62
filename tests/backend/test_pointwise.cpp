// The row-wise and element-wise ops against the f64 oracle: embedding (f32 and bf16 tables), rms_norm
// (in place too), add, add_gated, rope, gelu_tanh_mul, softcap, axpy, scale, copy, fill — on sizes
// below and above the threading threshold and with widths that are not multiples of the SIMD width.
#include "conformance.hpp"

namespace flas::conformance {
namespace {

// Row counts × widths: one tiny decode row, odd widths, and a size large enough to run threaded.
constexpr std::int64_t kShapes[][2] = {{1, 1}, {1, 7}, {3, 33}, {5, 256}, {64, 2304}};

TEST_CASE_TEMPLATE("embedding gathers and scales rows of f32 and bf16 tables", B, FLAS_CONFORMANCE_BACKENDS) {
  for (DType dt : {DType::F32, DType::BF16})
    for (std::int64_t H : {1, 19, 64}) {
      CAPTURE(H);
      const Tensor table = random_tensor({50, H}, dt);
      Tensor ids = Tensor::empty({2, 3}, DType::I64);
      const std::int64_t pick[] = {0, 49, 7, 7, 13, 2};
      for (int i = 0; i < 6; ++i) ids.data<std::int64_t>()[i] = pick[i];
      Tensor ref = Tensor::empty({2, 3, H}, DType::F64);
      Ref::embedding(ids, table, 8.0f, ref);
      Tensor out = poisoned({2, 3, H});
      B::embedding(ids, table, 8.0f, out);
      FLAS_CHECK_CLOSE(out, ref, kElementwise);
    }
  Tensor bad = Tensor::empty({1}, DType::I64);
  bad.data<std::int64_t>()[0] = 50;
  Tensor out = poisoned({1, 4});
  CHECK_THROWS_AS(B::embedding(bad, random_tensor({50, 4}), 1.0f, out), Error);
}

TEST_CASE_TEMPLATE("rms_norm uses (1 + w), in place or not", B, FLAS_CONFORMANCE_BACKENDS) {
  for (const auto& s : kShapes)
    for (DType wdt : {DType::F32, DType::BF16}) {
      CAPTURE(s[0]);
      CAPTURE(s[1]);
      const Tensor x = random_tensor({s[0], s[1]}, DType::F32, -3.0f, 3.0f);
      const Tensor w = random_tensor({s[1]}, wdt);
      Tensor ref = Tensor::empty({s[0], s[1]}, DType::F64);
      Ref::rms_norm(to_f64(x), w, 1e-6f, ref);
      Tensor y = poisoned({s[0], s[1]});
      B::rms_norm(x, w, 1e-6f, y);
      FLAS_CHECK_CLOSE(y, ref, kReduction);
      Tensor inplace = clone(x);
      B::rms_norm(inplace, w, 1e-6f, inplace);
      FLAS_CHECK_CLOSE(inplace, ref, kReduction);
    }
}

TEST_CASE_TEMPLATE("add, add_gated, axpy, scale, fill, copy", B, FLAS_CONFORMANCE_BACKENDS) {
  for (const auto& s : kShapes) {
    CAPTURE(s[0]);
    CAPTURE(s[1]);
    const Shape shape{s[0], s[1]};
    const Tensor x = random_tensor(shape), y0 = random_tensor(shape);
    for (DType gdt : {DType::F32, DType::BF16}) {
      const Tensor g = random_tensor({s[1]}, gdt);
      Tensor ref = to_f64(y0);
      Ref::add_gated(ref, g, to_f64(x));
      Tensor y = clone(y0);
      B::add_gated(y, g, x);
      FLAS_CHECK_CLOSE(y, ref, kElementwise);
    }
    {
      Tensor ref = to_f64(y0);
      Ref::add(ref, to_f64(x));
      Tensor y = clone(y0);
      B::add(y, x);
      FLAS_CHECK_CLOSE(y, ref, kElementwise);
    }
    {
      Tensor ref = to_f64(y0);
      Ref::axpy(ref, -0.375f, to_f64(x));
      Tensor y = clone(y0);
      B::axpy(y, -0.375f, x);
      FLAS_CHECK_CLOSE(y, ref, kElementwise);
    }
    {
      Tensor ref = to_f64(y0);
      Ref::scale(ref, 1.7f);
      Tensor y = clone(y0);
      B::scale(y, 1.7f);
      FLAS_CHECK_CLOSE(y, ref, kElementwise);
    }
    {
      Tensor y = poisoned(shape);
      B::fill(y, 0.25f);
      Tensor ref = Tensor::empty(shape, DType::F64);
      Ref::fill(ref, 0.25f);
      FLAS_CHECK_CLOSE(y, ref, 0.0);
      Tensor c = poisoned(shape);
      B::copy(c, x);
      FLAS_CHECK_CLOSE(c, x, 0.0);
    }
  }
}

TEST_CASE_TEMPLATE("gelu_tanh_mul and softcap", B, FLAS_CONFORMANCE_BACKENDS) {
  for (const auto& s : kShapes)
    for (float range : {0.05f, 4.0f, 60.0f}) {  // tanh's small-argument branch, the middle, saturation
      CAPTURE(s[0]);
      CAPTURE(s[1]);
      CAPTURE(range);
      const Shape shape{s[0], s[1]};
      Tensor gate = random_tensor(shape, DType::F32, -range, range);
      Tensor up = random_tensor(shape);
      // Element 0 is (range, 1) so that max|ref| reflects the range even in a one-element tensor: the
      // reference's own formula, 0.5·x·(1 + tanh u), cancels in f32 for negative x (~1e-4 relative),
      // which would otherwise be all a tiny tensor's metric sees.
      gate.data<float>()[0] = range;
      up.data<float>()[0] = 1.0f;
      Tensor ref = Tensor::empty(shape, DType::F64);
      Ref::gelu_tanh_mul(to_f64(gate), to_f64(up), ref);
      Tensor out = poisoned(shape);
      B::gelu_tanh_mul(gate, up, out);
      FLAS_CHECK_CLOSE(out, ref, kElementwise);

      Tensor capped_ref = to_f64(gate);
      Ref::softcap(capped_ref, 30.0f);
      Tensor capped = clone(gate);
      B::softcap(capped, 30.0f);
      FLAS_CHECK_CLOSE(capped, capped_ref, kElementwise);
    }
}

TEST_CASE_TEMPLATE("rope rotates pairs (i, i + hd/2) with f32 angles", B, FLAS_CONFORMANCE_BACKENDS) {
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
    Tensor y = clone(x);
    B::rope(y, pos, inv_freq);
    FLAS_CHECK_CLOSE(y, ref, kElementwise);
  }
}

}  // namespace
}  // namespace flas::conformance
