// flas generate: chat-format the prompt, generate, print the continuation as it streams.
#include <cstdio>
#include <string>

#include "backend_choice.hpp"
#include "commands.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::cli {

namespace {
struct GenerateArgs {
  std::string model_dir, prompt;
  std::int64_t max_new_tokens = 128;
  float temperature = 0.0f, top_p = 1.0f;
  int top_k = 0;
  std::uint64_t seed = 0;
  bool raw = false;
  std::string backend;
};

template <class B>
void run_generate(const GenerateArgs& a) {
  auto model = gemma2::Model<B>::load(a.model_dir);
  auto tok = io::Tokenizer::load(a.model_dir);
  const auto ids = a.raw ? [&] {
    auto v = tok.encode(a.prompt);
    v.insert(v.begin(), model.config().bos_token_id);
    return v;
  }() : io::encode_chat(tok, a.prompt, model.config().bos_token_id);
  GenerateOptions opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.sampling = {a.temperature, a.top_k, a.top_p, a.seed};
  const auto& eos = model.config().eos_token_ids;
  opt.on_token = [&](std::int64_t, std::int64_t t) {
    if (std::find(eos.begin(), eos.end(), t) != eos.end()) return;
    std::fputs(tok.decode_piece(t).c_str(), stdout);
    std::fflush(stdout);
  };
  auto r = generate(model, {ids}, opt, gemma2::NoTap{});
  std::fputs("\n", stdout);
  std::fprintf(stderr, "[flas] %s%s: prompt %lld tokens in %.1f ms (%.0f tok/s); %lld new tokens, %.1f tok/s decode\n",
               B::name, precision_note<B>().c_str(), static_cast<long long>(r.prompt_tokens), r.prefill_seconds * 1e3,
               double(r.prompt_tokens) / std::max(r.prefill_seconds, 1e-9), static_cast<long long>(r.tokens[0].size()),
               double(r.decode_steps) / std::max(r.decode_seconds, 1e-9));
}
}  // namespace

void add_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Generate a continuation of a prompt (Gemma chat format)");
  cmd->add_option("--model", args->model_dir, "Hugging Face model folder (config.json, model.safetensors, tokenizer.model)")
      ->required();
  cmd->add_option("--prompt", args->prompt, "The user's message")->required();
  cmd->add_option("--max-new-tokens", args->max_new_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", args->temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "Keep the k most likely tokens; 0 = all")->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed for sampling")->capture_default_str();
  cmd->add_flag("--raw", args->raw, "Use the prompt as-is (bos + text), without the chat template");
  add_backend_option(cmd, args->backend);
  cmd->callback([args] { with_backend(args->backend, [&]<class B>(std::type_identity<B>) { run_generate<B>(*args); }); });
}

}  // namespace flas::cli
