// Every input the fuzzers found (fuzz/regressions/<target>/), fed to the same reader the same way
// (fuzz/readers/*.hpp, shared with the libFuzzer targets): each must be refused with a flas::Error
// or accepted with the target's properties holding — never another exception or a crash. Built with
// g++ like the rest of the suite, and under ASan/UBSan by scripts/sanitize.sh.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "readers/axbench.hpp"
#include "readers/chat_template.hpp"
#include "readers/checkpoint_index.hpp"
#include "readers/flow_checkpoint.hpp"
#include "readers/gemma2_config.hpp"
#include "readers/generation_store.hpp"
#include "readers/gguf.hpp"
#include "readers/safetensors.hpp"
#include "readers/serve_request.hpp"
#include "readers/tokenizer.hpp"
#include "readers/train_state.hpp"

namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::function<void(std::string_view)>>& readers() {
  using namespace flas::fuzz;
  static const std::map<std::string, std::function<void(std::string_view)>> all{
      {"fuzz_safetensors", feed_safetensors},       {"fuzz_checkpoint_index", feed_checkpoint_index},
      {"fuzz_gemma2_config", feed_gemma2_config},   {"fuzz_flow_checkpoint", feed_flow_checkpoint},
      {"fuzz_tokenizer", feed_tokenizer},           {"fuzz_chat_template", feed_chat_template},
      {"fuzz_axbench", feed_axbench},               {"fuzz_train_state", feed_train_state},
      {"fuzz_generation_store", feed_generation_store}, {"fuzz_serve_request", feed_serve_request},
      {"fuzz_gguf", feed_gguf}};
  return all;
}

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs every file under `root`/<target>/ through its reader (printing each refusal when asked);
// returns how many were run.
int run_all(const fs::path& root, bool print_refusals) {
  int inputs = 0;
  if (!fs::is_directory(root)) return 0;
  for (const auto& target : fs::directory_iterator(root)) {
    if (!target.is_directory()) continue;
    const auto name = target.path().filename().string();
    const auto it = readers().find(name);
    CHECK_MESSAGE(it != readers().end(), "no reader for ", target.path());
    if (it == readers().end()) continue;
    for (const auto& input : fs::directory_iterator(target.path())) {
      CAPTURE(input.path());
      const std::string bytes = read_bytes(input.path());
      flas::fuzz::last_refusal().clear();
      CHECK_NOTHROW(it->second(bytes));  // flas::Error is caught inside: anything else is a finding
      if (print_refusals) MESSAGE(input.path().filename().string(), ": ", flas::fuzz::last_refusal());
      ++inputs;
    }
  }
  return inputs;
}

}  // namespace

TEST_CASE("every kept fuzzer finding is refused cleanly or read correctly") {
  const int n = run_all(FLAS_FUZZ_REGRESSIONS, true);
  MESSAGE(n, " kept inputs");
  CHECK(n > 0);
}

TEST_CASE("every seed input reads as its target expects") {
  // The committed seeds are valid inputs (mostly): they must not trip the targets' checks either.
  CHECK(run_all(fs::path(FLAS_FUZZ_REGRESSIONS).parent_path() / "corpus", false) > 0);
}
