// flas export-gguf: a Hugging Face Gemma-2 checkpoint as a GGUF file llama.cpp loads.
#include <cstdio>

#include "commands.hpp"
#include "flas/interop/gemma2_gguf.hpp"

namespace flas::cli {

void add_export_gguf(CLI::App& app) {
  struct Args {
    std::string model_dir, out, dtype = "f32", name;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("export-gguf", "Convert a Hugging Face Gemma-2 checkpoint to GGUF for llama.cpp");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder (config.json, safetensors, tokenizer.model)")->required();
  cmd->add_option("--out", a->out, "The GGUF file to write")->required();
  cmd->add_option("--dtype", a->dtype, "Dtype of the matrices (1-D tensors are always f32)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--name", a->name, "general.name (default: the folder's name)");
  cmd->callback([a] {
    interop::export_gemma2_gguf(a->model_dir, a->out, {a->dtype == "f32" ? DType::F32 : DType::BF16, a->name});
    std::printf("[flas export-gguf] wrote %s (%s matrices)\n", a->out.c_str(), a->dtype.c_str());
  });
}

}  // namespace flas::cli
