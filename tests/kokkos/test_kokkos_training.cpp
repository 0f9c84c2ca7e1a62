// A short training run on the bundled model with the Kokkos backend gives the flow the CPU backend
// gives: the same recipe and seed (same data order, flow-time draws and initial flow), 20 AdamW steps,
// then every parameter compared, against how far training moved it.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
#include "flas/backends/kokkos.hpp"
#include "flas/backends/kokkos_backward.hpp"
#include "flas/train/train_run.hpp"
#include "support/tiny_training.hpp"

using namespace flas;
namespace fs = std::filesystem;

namespace {

using testing::compare_flows;
using testing::tiny_training_recipe;

TEST_CASE("20 training steps on Kokkos give the CPU backend's flow") {
  const auto dir = fs::temp_directory_path() / ("flas_kokkos_train_" + std::to_string(::getpid()));
  const auto kokkos = train::train_flow<KokkosBackend<>>(tiny_training_recipe(dir / "kokkos"));
  const auto cpu = train::train_flow<CpuBackend>(tiny_training_recipe(dir / "cpu"));
  auto zero = tiny_training_recipe(dir / "zero");  // the step-0 flow (same seed), for the scale of what training changed
  zero.steps = 1;
  zero.lr = 1e-30;
  train::train_flow<CpuBackend>(zero);
  const auto [max_abs, max_moved] = compare_flows(kokkos.flow_file, cpu.flow_file, zero.out_dir / "flow.safetensors");
  MESSAGE("max |θ_kokkos − θ_cpu| = ", max_abs, " after 20 steps that moved parameters by up to ", max_moved);
  MESSAGE("validation LM loss ", kokkos.last_validation.loss_on, " vs ", cpu.last_validation.loss_on);
  CHECK(kokkos.steps == 20);
  // Both are f32 implementations of the same maths that differ in summation order only (~1e-7
  // relative per gradient); AdamW keeps that relative size per step, far below what training moved.
  CHECK(max_abs <= 1e-3 * max_moved);
  CHECK(std::fabs(kokkos.last_validation.loss_on - cpu.last_validation.loss_on) <= 1e-5);
  CHECK(std::fabs(kokkos.held_out_on - cpu.held_out_on) <= 1e-5);
  CHECK(max_moved > 1e-3);  // it trained
  fs::remove_all(dir);
}

}  // namespace
