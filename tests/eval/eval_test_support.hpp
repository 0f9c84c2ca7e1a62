#pragma once
// What the evaluation tests share: the bundled chat model on the CPU backend, loaded once, and a
// scratch folder per test.
#include <filesystem>
#include <string>

#include "flas/backends/cpu.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::testing {

inline const std::filesystem::path chat_model_dir = std::filesystem::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat";
inline const std::filesystem::path project_data = std::filesystem::path(FLAS_PROJECT_DATA);

inline const gemma2::Model<CpuBackend>& chat_model() {
  static const auto m = gemma2::Model<CpuBackend>::load(chat_model_dir);
  return m;
}
inline const io::Tokenizer& chat_tokenizer() {
  static const auto t = io::Tokenizer::load(chat_model_dir);
  return t;
}

// A fresh, empty folder under the system temp folder.
inline std::filesystem::path scratch_folder(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("flas_eval_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace flas::testing
