// Writes the benchmarks' random model with Gemma-2-2B shapes (bench/random_model.hpp: the very weights
// bench_gemma2 runs) as a GGUF file, so that llama.cpp's llama-bench runs the same model side by side
// (bench/peers/llamacpp_bench.sh). The vocabulary is synthetic (256,000 pieces: Gemma's special ids,
// the 256 byte pieces llama.cpp's SentencePiece tokenizer looks up, then filler pieces): llama-bench
// feeds token ids, never text.
//   random_gemma2_gguf OUT.gguf bf16|f32
#include <cstdio>
#include <string>

#include "flas/interop/gemma2_gguf.hpp"
#include "gemma2_2b_config.hpp"
#include "random_model.hpp"

using namespace flas;

namespace {

io::SentencePieceVocab synthetic_vocab(std::int64_t size) {
  io::SentencePieceVocab v;
  auto add = [&](std::string piece, io::PieceType type, float score) {
    v.pieces.push_back(std::move(piece));
    v.types.push_back(type);
    v.scores.push_back(score);
  };
  add("<pad>", io::PieceType::control, 0);
  add("<eos>", io::PieceType::control, 0);
  add("<bos>", io::PieceType::control, 0);
  add("<unk>", io::PieceType::unknown, 0);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, io::PieceType::byte, 0);
  }
  for (std::int64_t i = std::int64_t(v.pieces.size()); i < size; ++i)
    add("\xe2\x96\x81t" + std::to_string(i), io::PieceType::normal, -float(i));  // "▁t<i>"
  return v;
}

// The random weights under their Hugging Face names.
const Tensor* by_hf_name(const gemma2::Weights& w, const std::string& name) {
  if (name == "model.embed_tokens.weight") return &w.embed;
  if (name == "model.norm.weight") return &w.final_norm;
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) != 0) return nullptr;
  const auto dot = name.find('.', prefix.size());
  const auto& L = w.layers.at(std::stoul(name.substr(prefix.size(), dot - prefix.size())));
  const std::string rest = name.substr(dot + 1);
  for (const auto& [n, t] : {std::pair{"input_layernorm.weight", &L.input_norm}, {"post_attention_layernorm.weight", &L.post_attn_norm},
                             {"pre_feedforward_layernorm.weight", &L.pre_ff_norm}, {"post_feedforward_layernorm.weight", &L.post_ff_norm},
                             {"self_attn.q_proj.weight", &L.attn.q_proj}, {"self_attn.k_proj.weight", &L.attn.k_proj},
                             {"self_attn.v_proj.weight", &L.attn.v_proj}, {"self_attn.o_proj.weight", &L.attn.o_proj},
                             {"mlp.gate_proj.weight", &L.mlp.gate_proj}, {"mlp.up_proj.weight", &L.mlp.up_proj},
                             {"mlp.down_proj.weight", &L.mlp.down_proj}})
    if (rest == n) return t;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[2]) != "bf16" && std::string(argv[2]) != "f32")) {
    std::fprintf(stderr, "usage: %s OUT.gguf bf16|f32\n", argv[0]);
    return 2;
  }
  try {
    const DType dt = std::string(argv[2]) == "bf16" ? DType::BF16 : DType::F32;
    const auto c = bench::gemma2_2b_config();
    const auto w = bench::random_weights(c, dt);
    interop::write_gemma2_gguf(
        c, synthetic_vocab(c.vocab_size), [&](const std::string& n) { return by_hf_name(w, n) != nullptr; },
        [&](const std::string& n) { return *by_hf_name(w, n); }, argv[1], "random Gemma-2-2B shapes",
        {dt, "random-gemma2-2b-shapes"});
    std::printf("%s\n", argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "random_gemma2_gguf: %s\n", e.what());
    return 1;
  }
}
