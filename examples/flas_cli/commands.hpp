#pragma once
// Each subcommand registers its flags on the app and runs when chosen.
#include <CLI/CLI.hpp>

#include "flas/backends/scalar.hpp"
#include "flas/backends/scalar_backward.hpp"
#if __has_include("flas/backends/cpu.hpp")
#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
namespace flas::cli { using HostBackend = flas::CpuBackend; }
#define FLAS_CLI_HAS_CPU_BACKEND 1
#else
namespace flas::cli { using HostBackend = flas::ScalarBackend<float>; }
#endif

namespace flas::cli {

void add_generate(CLI::App& app);
void add_steer(CLI::App& app);
void add_chat(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_distill(CLI::App& app);
void add_trace(CLI::App& app);
void add_ablate(CLI::App& app);
void add_serve(CLI::App& app);
void add_vector(CLI::App& app);
void add_export_gguf(CLI::App& app);

}  // namespace flas::cli
