// Every ode_<tag>_fixtures set (torchdiffeq 0.2.5, float64): for each method × mode the solution at the
// stored times, the loss and the gradients w.r.t. y0 and every parameter of the tanh-MLP field, within
// 1e-11 relative (fixed-step) and 1e-10 (dopri5). Sizes come from the tensor shapes, the step size and
// tolerances from the .json beside the set.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "flas/io/safetensors.hpp"
#include "ode_test_util.hpp"
#include "support/fixtures.hpp"

namespace {

using namespace flas;
using namespace flas::ode;
using flas::ode::testing::max_rel;
using flas::ode::testing::MlpField;

struct Case {
  Tensor sol;  // [outputs, ...y0.shape]
  double loss = 0;
  Tensor grad_y0;
  std::vector<std::pair<std::string, Tensor>> grads;
};

Tensor stack(const std::vector<Tensor>& ys) {
  Shape s = ys[0].shape();
  std::vector<std::int64_t> dims{std::int64_t(ys.size())};
  for (auto d : s) dims.push_back(d);
  Tensor out = Tensor::empty(Shape(std::span<const std::int64_t>(dims)), DType::F64);
  for (std::size_t i = 0; i < ys.size(); ++i)
    std::memcpy(static_cast<char*>(out.raw()) + i * ys[i].bytes(), ys[i].raw(), ys[i].bytes());
  return out;
}

// The fixture's loss: sum(sol[-1]·w) + 0.5·sum(sol[1]²); its cotangents: w at the last output, sol[1] at
// output 1, zero elsewhere.
double loss_and_cotangents(const std::vector<Tensor>& ys, const Tensor& w, std::vector<Tensor>& cot) {
  cot.clear();
  for (const auto& y : ys) cot.push_back(zeros(y.shape(), DType::F64));
  const Tensor& last = ys.back();
  const Tensor& one = ys[1];
  double loss = 0, quad = 0;
  for (std::int64_t i = 0; i < last.numel(); ++i) loss += last.data<double>()[i] * w.data<double>()[i];
  for (std::int64_t i = 0; i < one.numel(); ++i) quad += one.data<double>()[i] * one.data<double>()[i];
  loss += 0.5 * quad;
  std::memcpy(cot.back().raw(), w.raw(), w.bytes());
  for (std::int64_t i = 0; i < one.numel(); ++i) cot[1].data<double>()[i] += one.data<double>()[i];
  return loss;
}

template <class Method, class Strategy, class Schedule>
Case run_case(const io::SafeTensorsFile& f, const Schedule& schedule) {
  MlpField field(f.get("param.l1.weight"), f.get("param.l1.bias"), f.get("param.l2.weight"),
                 f.get("param.l2.bias"));
  const Tensor y0 = clone(f.get("y0"));
  const Tensor ts_t = f.get("ts");
  std::vector<double> ts(ts_t.data<double>(), ts_t.data<double>() + ts_t.numel());
  auto sol = solve<Method, Strategy>(field, y0, Times{ts}, schedule);
  REQUIRE(sol.ys.size() == ts.size());
  std::vector<Tensor> cot;
  Case c;
  c.loss = loss_and_cotangents(sol.ys, f.get("w"), cot);
  c.sol = stack(sol.ys);
  c.grad_y0 = sol.backward(cot);
  field.for_each_parameter([&](std::string_view name, Tensor&, Tensor& g) { c.grads.emplace_back(name, clone(g)); });
  return c;
}

template <class Method, class Schedule>
Case run_mode(const std::string& mode, const io::SafeTensorsFile& f, const Schedule& schedule) {
  if (mode == "direct") return run_case<Method, Direct>(f, schedule);
  if (mode == "adjoint") return run_case<Method, Backsolve>(f, schedule);
  FAIL("unknown mode " << mode);
  return {};
}

Case run_method(const std::string& method, const std::string& mode, const io::SafeTensorsFile& f,
                const nlohmann::json& note, bool differentiate_first_step = true) {
  const StepSize h{note.at("step_size").get<double>()};
  if (method == "euler") return run_mode<Euler>(mode, f, h);
  if (method == "midpoint") return run_mode<Midpoint>(mode, f, h);
  if (method == "rk4_38") return run_mode<Rk4ThreeEighths>(mode, f, h);
  if (method == "rk4") return run_mode<Rk4Classic>(mode, f, h);
  if (method == "dopri5") {
    const auto& d = note.at("dopri5");
    Tolerances tol;
    tol.rtol = d.at("rtol").get<double>();
    tol.atol = d.at("atol").get<double>();
    tol.adjoint_rtol = d.value("adjoint_rtol", tol.rtol);
    tol.adjoint_atol = d.value("adjoint_atol", tol.atol);
    tol.differentiate_first_step = differentiate_first_step;
    return run_mode<Dopri5>(mode, f, tol);
  }
  FAIL("unknown method " << method);
  return {};
}

}  // namespace

TEST_CASE("ode fixtures: every method and mode matches torchdiffeq") {
  const auto sets = flas::testing::discover("ode_", "_fixtures.safetensors");
  REQUIRE_MESSAGE(!sets.empty(), "no ode_<tag>_fixtures.safetensors found");
  for (const auto& set : sets) {
    flas::testing::SetReport report("ode", set.tag);
    const auto f = io::SafeTensorsFile::open(set.file);
    std::ifstream js(set.folder / ("ode_" + set.tag + "_fixtures.json"));
    REQUIRE_MESSAGE(js.good(), "missing .json beside " << set.file);
    const auto note = nlohmann::json::parse(js);
    for (const auto& method : note.at("methods")) {
      for (const auto& mode : note.at("modes")) {
        const std::string m = method.get<std::string>(), md = mode.get<std::string>();
        const std::string key = m + "." + md + ".";
        if (!f.contains(key + "sol")) continue;
        const double tol = m == "dopri5" ? 1e-10 : 1e-11;
        const Case c = run_method(m, md, f, note);
        const double e_sol = max_rel(c.sol, f.get(key + "sol"));
        const double ref_loss = f.get(key + "loss").data<double>()[0];
        const double e_loss = std::abs(c.loss - ref_loss) / std::abs(ref_loss);
        const double e_gy = max_rel(c.grad_y0, f.get(key + "grad_y0"));
        double e_gp = 0;
        for (const auto& [name, g] : c.grads) {
          const double e = max_rel(g, f.get(key + "grad." + name));
          e_gp = std::max(e_gp, e);
          CHECK_MESSAGE(report.check(e, tol), set.tag << " " << key << "grad." << name << ": " << e);
        }
        std::printf("  ode %-4s %-8s %-7s sol %.1e  loss %.1e  grad_y0 %.1e  grad_params %.1e  (tolerance %.0e)\n",
                    set.tag.c_str(), m.c_str(), md.c_str(), e_sol, e_loss, e_gy, e_gp, tol);
        if (m == "dopri5" && md == "direct") {  // what torchdiffeq's gradient through the first step is worth
          const Case c0 = run_method(m, md, f, note, false);
          std::printf("  ode %-4s dopri5 direct with a constant first step instead: grad_y0 %.1e\n", set.tag.c_str(),
                      max_rel(c0.grad_y0, f.get(key + "grad_y0")));
        }
        CHECK_MESSAGE(report.check(e_sol, tol), set.tag << " " << key << "sol: " << e_sol);
        CHECK_MESSAGE(report.check(e_loss, tol), set.tag << " " << key << "loss: " << e_loss);
        CHECK_MESSAGE(report.check(e_gy, tol), set.tag << " " << key << "grad_y0: " << e_gy);
      }
    }
    CHECK(report.passed() > 0);
  }
}
