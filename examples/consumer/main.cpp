// Loads a model through the installed package and greedily continues a chat prompt for a few tokens.
#include <cstdio>

#include "flas/backends/cpu.hpp"
#include "flas/generate/generate.hpp"
#include "flas/io/chat_template.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/models/gemma2/model.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: flas_consumer MODEL_DIR\n");
    return 2;
  }
  try {
    auto model = flas::gemma2::Model<flas::CpuBackend>::load(argv[1]);
    auto tok = flas::io::Tokenizer::load(argv[1]);
    flas::GenerateOptions opt;
    opt.max_new_tokens = 8;
    auto r = flas::generate(model, {flas::io::encode_chat(tok, "Hello!", model.config().bos_token_id)}, opt,
                            flas::gemma2::NoTap{});
    std::printf("consumer: %s\n", tok.decode(r.tokens[0]).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
