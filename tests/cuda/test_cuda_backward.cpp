// BackwardOps<CudaBackend> against BackwardOps<ScalarBackend<double>> on the same f32 inputs: every
// "write" output NaN-poisoned, every "accumulate" output starting from random values (so that a
// kernel that overwrites instead of adding fails), in-place forms where the op set allows them.
// Tolerances (max|Δ| / max|ref|):
//   kReduction (1e-5)  element-wise and row-wise VJPs, GEMMs, cross-entropy;
//   kGradient  (1e-4)  attention_backward: ds = p·(dP − D) subtracts O(1) f32 sums (the scalar f32
//                      backend accumulates them in double); 1e-4 is the project's gradient bound.
//   kBf16Inputs        linear_backward's dx with bf16 weights under Precision::bf16_inputs.
#include <vector>

#include "cuda_test_support.hpp"
#include "flas/backends/cuda_backward.hpp"
#include "flas/backends/scalar_backward.hpp"

namespace flas::cuda_test {
namespace {

using Ops64 = BackwardOps<ScalarBackend<double>>;
using OpsCuda = BackwardOps<CudaBackend>;
constexpr double kGradient = 1e-4;

TEST_CASE("cuda linear_backward: dx, dw, db") {
  struct Case {
    std::int64_t M, N, K;
  };
  for (const Case c : {Case{1, 7, 5}, Case{3, 64, 48}, Case{9, 33, 70}, Case{64, 96, 128}, Case{5, 1, 1}})
    for (DType wdt : {DType::F32, DType::BF16})
      for (auto precision : {CudaBackend::Precision::exact, CudaBackend::Precision::bf16_inputs}) {
        CAPTURE(c.M);
        CAPTURE(c.N);
        CAPTURE(c.K);
        CAPTURE(dtype_name(wdt));
        CAPTURE(int(precision));
        PrecisionScope scope(precision);
        const Tensor x = random_tensor({c.M, c.K}), w = random_tensor({c.N, c.K}, wdt), dy = random_tensor({c.M, c.N});
        const Tensor dw0 = random_tensor({c.N, c.K}), db0 = random_tensor({c.N});
        Tensor dx_ref = Tensor::empty({c.M, c.K}, DType::F64), dw_ref = to_f64(dw0), db_ref = to_f64(db0);
        Ops64::linear_backward(to_f64(x), w, to_f64(dy), &dx_ref, &dw_ref, &db_ref);
        CudaTensor dx = poisoned_dev({c.M, c.K}), dw = dev(dw0), db = dev(db0);
        OpsCuda::linear_backward(dev(x), w, dev(dy), &dx, &dw, &db);
        const bool rounded = wdt == DType::BF16 && precision == CudaBackend::Precision::bf16_inputs &&
                             c.M > CudaBackend::small_m_max;
        FLAS_CHECK_CLOSE(host(dx), dx_ref, rounded ? kBf16Inputs : kReduction);
        FLAS_CHECK_CLOSE(host(dw), dw_ref, kReduction);
        FLAS_CHECK_CLOSE(host(db), db_ref, kReduction);
        CudaTensor dx_only = poisoned_dev({c.M, c.K});  // frozen weight: dx alone
        OpsCuda::linear_backward(dev(x), dev(w), dev(dy), &dx_only, nullptr, nullptr);
        FLAS_CHECK_CLOSE(host(dx_only), dx_ref, rounded ? kBf16Inputs : kReduction);
      }
}

TEST_CASE("cuda rms_norm_backward, also with dx = dy") {
  for (std::int64_t D : {1, 33, 256, 2304})
    for (DType wdt : {DType::F32, DType::BF16}) {
      CAPTURE(D);
      const Tensor x = random_tensor({5, D}, DType::F32, -3.0f, 3.0f), w = random_tensor({D}, wdt);
      const Tensor dy = random_tensor({5, D}), dw0 = random_tensor({D});
      Tensor dx_ref = Tensor::empty({5, D}, DType::F64), dw_ref = to_f64(dw0);
      Ops64::rms_norm_backward(to_f64(x), w, 1e-6f, to_f64(dy), dx_ref, &dw_ref);
      CudaTensor dx = poisoned_dev({5, D}), dw = dev(dw0);
      OpsCuda::rms_norm_backward(dev(x), w, 1e-6f, dev(dy), dx, &dw);
      FLAS_CHECK_CLOSE(host(dx), dx_ref, kReduction);
      FLAS_CHECK_CLOSE(host(dw), dw_ref, kReduction);
      CudaTensor inplace = dev(dy), dw2 = dev(dw0);
      OpsCuda::rms_norm_backward(dev(x), w, 1e-6f, inplace, inplace, &dw2);
      FLAS_CHECK_CLOSE(host(inplace), dx_ref, kReduction);
      FLAS_CHECK_CLOSE(host(dw2), dw_ref, kReduction);
    }
}

TEST_CASE("cuda add_gated_backward, rope_backward, gelu_tanh_mul_backward, softcap_backward, silu_backward") {
  const Shape shape{6, 40};
  const Tensor x = random_tensor(shape, DType::F32, -4.0f, 4.0f), dy = random_tensor(shape);
  {
    const Tensor g = random_tensor({40}, DType::BF16), dg0 = random_tensor({40});
    Tensor dx_ref = Tensor::empty(shape, DType::F64), dg_ref = to_f64(dg0);
    Ops64::add_gated_backward(g, to_f64(x), to_f64(dy), dx_ref, &dg_ref);
    CudaTensor dx = poisoned_dev(shape), dg = dev(dg0);
    OpsCuda::add_gated_backward(g, dev(x), dev(dy), dx, &dg);
    FLAS_CHECK_CLOSE(host(dx), dx_ref, kReduction);
    FLAS_CHECK_CLOSE(host(dg), dg_ref, kReduction);
  }
  {
    const Tensor d = random_tensor({2, 3, 2, 8});
    Tensor pos = Tensor::empty({2, 3}, DType::I64);
    for (std::int64_t i = 0; i < 6; ++i) pos.data<std::int64_t>()[i] = i * 1301;
    Tensor inv_freq = Tensor::empty({4}, DType::F32);
    for (int i = 0; i < 4; ++i) inv_freq.data<float>()[i] = float(std::pow(10000.0, -i / 4.0));
    Tensor ref = to_f64(d);
    Ops64::rope_backward(ref, pos, inv_freq);
    CudaTensor got = dev(d);
    OpsCuda::rope_backward(got, pos, inv_freq);
    FLAS_CHECK_CLOSE(host(got), ref, kElementwise);
  }
  {
    const Tensor up = random_tensor(shape);
    Tensor dg_ref = Tensor::empty(shape, DType::F64), du_ref = Tensor::empty(shape, DType::F64);
    Ops64::gelu_tanh_mul_backward(to_f64(x), to_f64(up), to_f64(dy), dg_ref, du_ref);
    CudaTensor dg = poisoned_dev(shape), du = poisoned_dev(shape);
    OpsCuda::gelu_tanh_mul_backward(dev(x), dev(up), dev(dy), dg, du);
    FLAS_CHECK_CLOSE(host(dg), dg_ref, kReduction);
    FLAS_CHECK_CLOSE(host(du), du_ref, kReduction);
  }
  {
    Tensor y = to_f64(random_tensor(shape, DType::F32, -80.0f, 80.0f));
    ScalarBackend<double>::softcap(y, 30.0f);
    const Tensor y32 = convert(y, DType::F32), y_in = to_f64(y32);
    Tensor ref = Tensor::empty(shape, DType::F64);
    Ops64::softcap_backward(y_in, 30.0f, to_f64(dy), ref);
    CudaTensor inplace = dev(dy);
    OpsCuda::softcap_backward(dev(y32), 30.0f, inplace, inplace);
    FLAS_CHECK_CLOSE(host(inplace), ref, kReduction);
  }
  {
    Tensor ref = Tensor::empty(shape, DType::F64);
    Ops64::silu_backward(to_f64(x), to_f64(dy), ref);
    CudaTensor dx = poisoned_dev(shape);
    OpsCuda::silu_backward(dev(x), dev(dy), dx);
    FLAS_CHECK_CLOSE(host(dx), ref, kReduction);
  }
}

TEST_CASE("cuda attention_backward matches the f64 reference") {
  struct Shape4 {
    std::int64_t B, Sq, Sk, cap, nH, nKV, hd;
  };
  for (const Shape4 s : {Shape4{2, 12, 12, 12, 4, 2, 16}, Shape4{1, 3, 40, 45, 4, 1, 32}, Shape4{2, 30, 9, 9, 2, 2, 24},
                         Shape4{1, 16, 16, 16, 2, 1, 256}})
    for (auto rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4})
      for (bool causal : {true, false})
        for (float softcap : {0.0f, 50.0f})
          for (bool padded : {false, true}) {
            if (causal && s.Sq > s.Sk) continue;
            CAPTURE(s.Sq);
            CAPTURE(s.Sk);
            CAPTURE(s.hd);
            CAPTURE(int(rule));
            CAPTURE(causal);
            CAPTURE(softcap);
            CAPTURE(padded);
            std::vector<std::uint8_t> valid(std::size_t(s.B * s.cap), 1);
            std::bernoulli_distribution keep(0.7);
            for (std::int64_t b = 0; b < s.B; ++b)
              for (std::int64_t j = 1; j < s.cap; ++j)  // key 0 stays: every row keeps a visible key
                valid[std::size_t(b * s.cap + j)] = padded && !keep(rng()) ? 0 : 1;
            nn::AttentionParams p;
            p.scale = 1.0f / std::sqrt(float(s.hd));
            p.softcap = softcap;
            p.rule = rule;
            p.causal = causal;
            p.window = causal ? 5 : 0;
            p.kv_len = s.Sk;
            p.key_valid = padded ? valid.data() : nullptr;
            const Tensor q = random_tensor({s.B, s.Sq, s.nH, s.hd}, DType::F32, -2.0f, 2.0f);
            const Tensor k = random_tensor({s.B, s.cap, s.nKV, s.hd}, DType::F32, -2.0f, 2.0f);
            const Tensor v = random_tensor({s.B, s.cap, s.nKV, s.hd}), dout = random_tensor(q.shape());
            const Tensor dk0 = random_tensor(k.shape()), dv0 = random_tensor(v.shape());
            Tensor out_ref = Tensor::empty(q.shape(), DType::F64);
            ScalarBackend<double>::attention(to_f64(q), to_f64(k), to_f64(v), out_ref, p);
            Tensor dq_ref = Tensor::empty(q.shape(), DType::F64), dk_ref = to_f64(dk0), dv_ref = to_f64(dv0);
            Ops64::attention_backward(to_f64(q), to_f64(k), to_f64(v), out_ref, to_f64(dout), p, dq_ref, dk_ref, dv_ref);
            const CudaTensor qd = dev(q), kd = dev(k), vd = dev(v);
            CudaTensor out = poisoned_dev(q.shape());
            CudaBackend::attention(qd, kd, vd, out, p);
            CudaTensor dq = poisoned_dev(q.shape()), dk = dev(dk0), dv = dev(dv0);
            OpsCuda::attention_backward(qd, kd, vd, out, dev(dout), p, dq, dk, dv);
            FLAS_CHECK_CLOSE(host(dq), dq_ref, kGradient);
            FLAS_CHECK_CLOSE(host(dk), dk_ref, kGradient);
            FLAS_CHECK_CLOSE(host(dv), dv_ref, kGradient);
          }
}

TEST_CASE("cuda cross_entropy and the fused soft-capped form") {
  const std::int64_t M = 7, V = 1000;
  const Tensor raw = random_tensor({M, V}, DType::F32, -60.0f, 60.0f);
  Tensor labels = Tensor::empty({M}, DType::I64);
  const std::int64_t pick[] = {3, ignore_label, 999, 0, ignore_label, 512, 77};
  for (std::int64_t m = 0; m < M; ++m) labels.data<std::int64_t>()[m] = pick[m];

  Tensor dl_ref = Tensor::empty({M, V}, DType::F64);
  const double loss_ref = Ops64::cross_entropy(to_f64(raw), labels, &dl_ref);
  CudaTensor dl = poisoned_dev({M, V});
  const double loss = OpsCuda::cross_entropy(dev(raw), labels, &dl);
  CHECK(std::abs(loss - loss_ref) <= kReduction * std::abs(loss_ref));
  FLAS_CHECK_CLOSE(host(dl), dl_ref, kReduction);
  CudaTensor inplace = dev(raw);
  CHECK(std::abs(OpsCuda::cross_entropy(inplace, dev(labels), &inplace) - loss_ref) <= kReduction * std::abs(loss_ref));
  FLAS_CHECK_CLOSE(host(inplace), dl_ref, kReduction);

  // Fused cap == softcap, cross_entropy, softcap_backward.
  Tensor capped = to_f64(raw);
  ScalarBackend<double>::softcap(capped, 30.0f);
  Tensor dcap = Tensor::empty({M, V}, DType::F64);
  const double capped_loss = Ops64::cross_entropy(capped, labels, &dcap);
  Ops64::softcap_backward(capped, 30.0f, dcap, dcap);
  CudaTensor draw = poisoned_dev({M, V});
  const double fused = OpsCuda::softcapped_cross_entropy(dev(raw), 30.0f, labels, &draw);
  CHECK(std::abs(fused - capped_loss) <= kReduction * std::abs(capped_loss));
  FLAS_CHECK_CLOSE(host(draw), dcap, kReduction);

  Tensor all_ignored = Tensor::empty({M}, DType::I64);
  for (std::int64_t m = 0; m < M; ++m) all_ignored.data<std::int64_t>()[m] = ignore_label;
  CudaTensor zero = poisoned_dev({M, V});
  CHECK(OpsCuda::cross_entropy(dev(raw), all_ignored, &zero) == 0.0);
  FLAS_CHECK_CLOSE(host(zero), zeros({M, V}), 0.0);
  Tensor bad = clone(labels);
  bad.data<std::int64_t>()[0] = V;
  CHECK_THROWS_AS(OpsCuda::cross_entropy(dev(raw), bad, nullptr), Error);
}

}  // namespace
}  // namespace flas::cuda_test
