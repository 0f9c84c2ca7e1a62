// flas vector: steering vectors as llama.cpp control vectors (export), and what a control vector holds.
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "flas/eval/diffmean.hpp"
#include "flas/interop/control_vector.hpp"

namespace flas::cli {

namespace {
struct VectorArgs {
  std::string diffmean, concept_text, vector_file, tensor = "directions", out, model_hint = "gemma2", show;
  std::int64_t row = 0;
  int layer = -1;
  float scale = 1.0f;
};

void run_export(const VectorArgs& a) {
  FLAS_CHECK(a.diffmean.empty() != a.vector_file.empty(), "vector export: give --diffmean or --vector (one of them)");
  Tensor d;
  int layer = a.layer;
  if (!a.diffmean.empty()) {
    FLAS_CHECK(!a.concept_text.empty(), "vector export: --diffmean needs --concept");
    const auto dm = eval::load_diffmean(a.diffmean);
    if (layer < 0) layer = dm.layer;
    FLAS_CHECK(layer == dm.layer, a.diffmean, ": DiffMean vectors of layer ", dm.layer, ", --layer says ", layer);
    d = dm.directions[dm.index_of(a.concept_text)];
  } else {
    FLAS_CHECK(layer >= 0, "vector export: --vector needs --layer (the flas steering layer the vector belongs to)");
    const auto f = io::SafeTensorsFile::open(a.vector_file);
    const Tensor t = convert(f.get(a.tensor), DType::F32);
    FLAS_CHECK(t.rank() == 1 || t.rank() == 2, a.vector_file, ": tensor '", a.tensor, "' is ", t.shape(), ", expected [H] or [rows, H]");
    FLAS_CHECK(t.rank() == 1 || (0 <= a.row && a.row < t.dim(0)), a.vector_file, ": --row ", a.row, " is outside 0..", t.dim(0) - 1);
    d = t.rank() == 1 ? t : t[a.row];
  }
  const auto cv = interop::control_vector_at(layer, std::span(d.data<float>(), std::size_t(d.numel())), a.scale, a.model_hint);
  interop::write_control_vector(a.out, cv);
  std::printf("[flas vector] wrote %s: direction.%d, %lld values, scale %g (llama.cpp: --control-vector %s)\n", a.out.c_str(), layer,
              static_cast<long long>(cv.n_embd), double(a.scale), a.out.c_str());
}

void run_show(const std::string& file) {
  const auto cv = interop::read_control_vector(file);
  std::printf("%s: model hint '%s', %lld values per direction, %zu layer(s)\n", file.c_str(), cv.model_hint.c_str(),
              static_cast<long long>(cv.n_embd), cv.directions.size());
  for (const auto& [layer, d] : cv.directions) {
    double norm = 0;
    for (float x : d) norm += double(x) * x;
    std::printf("  direction.%d  |d| = %.4g\n", layer, std::sqrt(norm));
  }
}
}  // namespace

void add_vector(CLI::App& app) {
  auto a = std::make_shared<VectorArgs>();
  auto* cmd = app.add_subcommand("vector", "Steering vectors as llama.cpp control vectors (GGUF)");
  cmd->require_subcommand(1);
  auto* ex = cmd->add_subcommand("export", "Write a DiffMean vector or any [H] vector at its layer as a llama.cpp control vector");
  ex->add_option("--diffmean", a->diffmean, "DiffMean vectors (.safetensors, as flas eval writes them)");
  ex->add_option("--concept", a->concept_text, "With --diffmean: the concept whose vector to export");
  ex->add_option("--vector", a->vector_file, "Or: a .safetensors file holding a constant field's direction(s)");
  ex->add_option("--tensor", a->tensor, "With --vector: the tensor, [H] or [rows, H]")->capture_default_str();
  ex->add_option("--row", a->row, "With --vector and a [rows, H] tensor: the row")->capture_default_str();
  ex->add_option("--layer", a->layer, "flas steering layer L (the output of block L; llama.cpp's direction.L)");
  ex->add_option("--scale", a->scale, "Multiply the vector by this (flas flow time T)")->capture_default_str();
  ex->add_option("--model-hint", a->model_hint, "controlvector.model_hint")->capture_default_str();
  ex->add_option("--out", a->out, "The control vector file to write (.gguf)")->required();
  ex->callback([a] { run_export(*a); });
  auto* show = cmd->add_subcommand("show", "List a control vector's layers and norms");
  show->add_option("file", a->show, "Control vector (.gguf)")->required();
  show->callback([a] { run_show(a->show); });
}

}  // namespace flas::cli
