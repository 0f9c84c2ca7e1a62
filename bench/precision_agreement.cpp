// How far CpuBackend::Precision::bf16_activations moves a bf16 checkpoint's output from the exact
// mode: the evidence behind the CLI's default precision (docs/performance.md). On the bundled chat model:
//  1. HF's greedy continuations (greedy_samples.json): tokens matched before the first divergence;
//  2. greedy continuations of AlpacaEval instructions, one row at a time (bf16 acts in the prefill only)
//     and in batches of 32 rows (decode steps are then 32-row matmuls, bf16 too): identical replies and
//     the first divergence, against the exact mode;
//  3. teacher forcing: prompt + the exact mode's reply in one pass, both modes: top-1 agreement per
//     position and max|Δlogit| / max|logit|; and HF's prompt-0 logits against each mode.
//   build/bench/precision_agreement [--prompts N] [--tokens T]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "flas/backends/cpu.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"
#include "support/compare.hpp"

using namespace flas;
using Model = gemma2::Model<CpuBackend>;
using Ids = std::vector<std::int64_t>;
using Precision = CpuBackend::Precision;

namespace {
const std::filesystem::path chat_dir = std::filesystem::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat";

std::size_t common_prefix(const Ids& a, const Ids& b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

std::vector<Ids> greedy(const Model& m, const std::vector<Ids>& prompts, std::int64_t tokens, std::size_t batch,
                        Precision p) {
  CpuBackend::set_precision(p);
  GenerateOptions opt;
  opt.max_new_tokens = tokens;
  std::vector<Ids> out;
  for (std::size_t i = 0; i < prompts.size(); i += batch) {
    const std::vector<Ids> chunk(prompts.begin() + std::ptrdiff_t(i),
                                 prompts.begin() + std::ptrdiff_t(std::min(prompts.size(), i + batch)));
    auto r = generate(m, chunk, opt, gemma2::NoTap{});
    out.insert(out.end(), r.tokens.begin(), r.tokens.end());
  }
  return out;
}

Tensor all_logits(const Model& m, const Ids& ids, Precision p) {
  CpuBackend::set_precision(p);
  Tensor t = Tensor::empty({1, std::int64_t(ids.size())}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<std::int64_t>());
  auto cache = m.new_cache(1, t.dim(1));
  return host_logits_f32(m.logits(m.forward(t, Tensor{}, cache)));
}

void compare_replies(const char* what, const std::vector<Ids>& exact, const std::vector<Ids>& bf16) {
  std::size_t same = 0, prefix = 0, tokens = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    same += exact[i] == bf16[i];
    prefix += common_prefix(exact[i], bf16[i]);
    tokens += exact[i].size();
  }
  std::printf("%-34s identical replies %zu/%zu (%.0f%%), tokens before the first divergence %.1f%% of %zu\n", what,
              same, exact.size(), 100.0 * double(same) / double(exact.size()), 100.0 * double(prefix) / double(tokens),
              tokens);
}
}  // namespace

int main(int argc, char** argv) {
  std::size_t n_prompts = 64;
  std::int64_t n_tokens = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--prompts")) n_prompts = std::size_t(std::stoul(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--tokens")) n_tokens = std::stoll(argv[i + 1]);
  }
  const auto model = Model::load(chat_dir);
  const auto tok = io::Tokenizer::load(chat_dir);
  const auto bos = model.config().bos_token_id;
  std::printf("bundled chat model (bf16 weights), exact vs bf16_activations; bf16 kernel: %s\n",
              CpuBackend::bf16_matmul_available() ? "yes" : "NO (bf16 mode falls back to exact here)");

  // 1. HF's greedy continuations.
  std::ifstream hf_file(chat_dir / "greedy_samples.json");
  const auto hf = nlohmann::json::parse(hf_file);
  for (const Precision p : {Precision::exact, Precision::bf16_activations}) {
    std::size_t matched = 0, total = 0, whole = 0;
    for (const auto& s : hf) {
      const auto want = s["ids"].get<Ids>();
      const auto got = greedy(model, {io::encode_chat(tok, s["instruction"].get<std::string>(), bos)},
                              std::int64_t(want.size()), 1, p)[0];
      matched += common_prefix(got, want);
      total += want.size();
      whole += got == want;
    }
    std::printf("HF greedy samples, %-16s %zu/%zu replies identical, %zu/%zu tokens before the first divergence\n",
                p == Precision::exact ? "exact:" : "bf16_activations:", whole, hf.size(), matched, total);
  }

  // 2. AlpacaEval instructions.
  std::ifstream alpaca_file(std::filesystem::path(FLAS_PROJECT_DATA) / "alpaca_eval.json");
  const auto alpaca = nlohmann::json::parse(alpaca_file);
  std::vector<Ids> prompts;
  for (std::size_t i = 0; i < std::min(n_prompts, alpaca.size()); ++i)
    prompts.push_back(io::encode_chat(tok, alpaca[i]["instruction"].get<std::string>(), bos));
  const auto exact1 = greedy(model, prompts, n_tokens, 1, Precision::exact);
  compare_replies("AlpacaEval, one row at a time:", exact1, greedy(model, prompts, n_tokens, 1, Precision::bf16_activations));
  const auto exact32 = greedy(model, prompts, n_tokens, 32, Precision::exact);
  compare_replies("AlpacaEval, batches of 32 rows:", exact32,
                  greedy(model, prompts, n_tokens, 32, Precision::bf16_activations));

  // 3. Teacher forcing on prompt + the exact reply.
  std::size_t agree = 0, positions = 0;
  double worst = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    Ids ids = prompts[i];
    ids.insert(ids.end(), exact1[i].begin(), exact1[i].end());
    const Tensor a = all_logits(model, ids, Precision::exact), b = all_logits(model, ids, Precision::bf16_activations);
    const std::int64_t S = a.dim(1), V = a.dim(2);
    for (std::int64_t s = 0; s < S; ++s) {
      const float* x = a.data<float>() + s * V;
      const float* y = b.data<float>() + s * V;
      agree += std::max_element(x, x + V) - x == std::max_element(y, y + V) - y;
    }
    positions += std::size_t(S);
    worst = std::max(worst, flas::testing::max_rel_diff(b, a));
  }
  std::printf("teacher forcing, %zu positions: top-1 agreement %.2f%%, max|dlogit|/max|logit| %.2e (worst prompt)\n",
              positions, 100.0 * double(agree) / double(positions), worst);
  auto ref = io::SafeTensorsFile::open(chat_dir / "reference_logits.safetensors");
  const Tensor ref_ids = ref.get("prompt0.input_ids");
  const Ids ids0(ref_ids.data<std::int64_t>(), ref_ids.data<std::int64_t>() + ref_ids.numel());
  for (const Precision p : {Precision::exact, Precision::bf16_activations})
    std::printf("HF prompt-0 logits, %-16s max rel diff %.2e (the suite's gate: 1e-3)\n",
                p == Precision::exact ? "exact:" : "bf16_activations:",
                flas::testing::max_rel_diff(all_logits(model, ids0, p), ref.get("prompt0.logits")));
  return 0;
}
