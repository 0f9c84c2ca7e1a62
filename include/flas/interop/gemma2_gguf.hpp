#pragma once
// A Hugging Face Gemma-2 checkpoint as a GGUF file llama.cpp loads (architecture "gemma2"), written the
// way llama.cpp's convert_hf_to_gguf.py writes it: its tensor names, RMSNorm weights stored as 1 + w
// (llama.cpp multiplies by the stored weight; HF by 1 + w), 1-D tensors in F32, matrices in the chosen
// dtype, and the SentencePiece vocabulary (pieces, scores, token types, special ids). llama.cpp fixes
// some Gemma-2 choices in code instead of reading them (query scale 1/sqrt(head_dim) below 27B shapes,
// sliding-window attention on even layers); a checkpoint that differs is refused, not silently changed.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "flas/io/checkpoint.hpp"
#include "flas/io/gguf_writer.hpp"
#include "flas/io/sentencepiece_vocab.hpp"
#include "flas/models/gemma2/config.hpp"

namespace flas::interop {

// (GGUF name, HF name) for every tensor of a Gemma-2 model, in llama.cpp's order.
inline std::vector<std::pair<std::string, std::string>> gemma2_gguf_names(std::int64_t layers) {
  std::vector<std::pair<std::string, std::string>> n{{"token_embd.weight", "model.embed_tokens.weight"}};
  for (std::int64_t l = 0; l < layers; ++l) {
    const std::string g = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    for (auto [gn, hn] : {std::pair{"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"},
                          {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
                          {"post_attention_norm", "post_attention_layernorm"}, {"ffn_norm", "pre_feedforward_layernorm"},
                          {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"},
                          {"post_ffw_norm", "post_feedforward_layernorm"}})
      n.emplace_back(g + gn + ".weight", h + hn + ".weight");
  }
  n.emplace_back("output_norm.weight", "model.norm.weight");
  return n;
}

struct Gemma2GgufOptions {
  DType dtype = DType::F32;  // of the matrices: F32 or BF16 (1-D tensors are always F32)
  std::string name;          // general.name (default: the folder's name)
};

// What llama.cpp cannot express, as a message (empty: exportable).
inline std::string gemma2_gguf_unsupported(const gemma2::Config& c) {
  // llama.cpp: 1/sqrt(n_embd / n_head) for its 27B type (46 layers), else 1/sqrt(head_dim).
  const double scale_from = c.num_hidden_layers == 46 ? double(c.hidden_size) / double(c.num_attention_heads) : double(c.head_dim);
  if (c.query_pre_attn_scalar != scale_from)
    return flas::detail::concat("query_pre_attn_scalar is ", c.query_pre_attn_scalar, "; llama.cpp scales queries by 1/sqrt(",
                                scale_from, ") for this shape");
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l)
    if (c.is_sliding(l) != (l % 2 == 0))
      return flas::detail::concat("layer ", l, " is ", c.is_sliding(l) ? "sliding" : "full",
                                  " attention; llama.cpp uses sliding attention on even layers only");
  return {};
}

// Writes a Gemma-2 model given as its config, its vocabulary and a source of HF-named tensors (`get(name)`
// returns the tensor; `has(name)` says whether there is one): a checkpoint folder (export_gemma2_gguf
// below) or weights made in memory (the benchmarks' random 2B-shaped model, for llama.cpp side by side).
// `what` names the source in errors.
template <class Has, class Get>
void write_gemma2_gguf(const gemma2::Config& c, const io::SentencePieceVocab& vocab, Has&& has, Get&& get,
                       const std::filesystem::path& out, const std::string& what, const Gemma2GgufOptions& opt) {
  FLAS_CHECK(opt.dtype == DType::F32 || opt.dtype == DType::BF16, "export-gguf: dtype ", dtype_name(opt.dtype),
             ", expected F32 or BF16");
  if (const auto why = gemma2_gguf_unsupported(c); !why.empty()) fail(what, ": cannot export to GGUF: ", why);
  FLAS_CHECK(std::int64_t(vocab.pieces.size()) == c.vocab_size, what, ": the vocabulary (tokenizer.model) has ", vocab.pieces.size(),
             " pieces, config.json's vocab_size is ", c.vocab_size);

  io::GgufWriter w;
  const auto u32 = [](std::int64_t x) { return std::uint32_t(x); };
  w.set("general.architecture", "gemma2");
  w.set("general.name", io::gguf::Scalar(opt.name));
  w.set("general.file_type", std::uint32_t(opt.dtype == DType::F32 ? 0 : 32));  // LLAMA_FTYPE_ALL_F32 / MOSTLY_BF16
  w.set("gemma2.context_length", u32(c.max_position_embeddings));
  w.set("gemma2.embedding_length", u32(c.hidden_size));
  w.set("gemma2.block_count", u32(c.num_hidden_layers));
  w.set("gemma2.feed_forward_length", u32(c.intermediate_size));
  w.set("gemma2.attention.head_count", u32(c.num_attention_heads));
  w.set("gemma2.attention.head_count_kv", u32(c.num_key_value_heads));
  w.set("gemma2.attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  w.set("gemma2.attention.key_length", u32(c.head_dim));
  w.set("gemma2.attention.value_length", u32(c.head_dim));
  w.set("gemma2.attention.sliding_window", u32(c.sliding_window));
  w.set("gemma2.rope.freq_base", float(c.rope_theta));
  if (c.attn_logit_softcapping > 0) w.set("gemma2.attn_logit_softcapping", float(c.attn_logit_softcapping));
  if (c.final_logit_softcapping > 0) w.set("gemma2.final_logit_softcapping", float(c.final_logit_softcapping));

  w.set("tokenizer.ggml.model", "llama");  // llama.cpp's name for a SentencePiece (SPM) vocabulary
  w.set("tokenizer.ggml.pre", "default");
  w.set_array("tokenizer.ggml.tokens", vocab.pieces);
  w.set_array("tokenizer.ggml.scores", vocab.scores);
  std::vector<std::int32_t> types;
  for (auto t : vocab.types) types.push_back(std::int32_t(t));
  w.set_array("tokenizer.ggml.token_type", types);
  if (c.bos_token_id >= 0) w.set("tokenizer.ggml.bos_token_id", u32(c.bos_token_id));
  if (!c.eos_token_ids.empty()) w.set("tokenizer.ggml.eos_token_id", u32(c.eos_token_ids.front()));
  for (std::int64_t i = 0; i < std::int64_t(vocab.types.size()); ++i)
    if (vocab.types[std::size_t(i)] == io::PieceType::unknown) w.set("tokenizer.ggml.unknown_token_id", u32(i));
  if (c.pad_token_id >= 0) w.set("tokenizer.ggml.padding_token_id", u32(c.pad_token_id));
  w.set("tokenizer.ggml.add_bos_token", c.bos_token_id >= 0);
  w.set("tokenizer.ggml.add_eos_token", false);
  // SentencePiece adds its dummy prefix (a space) once, at the start of the text; llama.cpp adds it
  // before every text fragment that follows a special token, which breaks chat prompts. So false, as
  // llama.cpp's own Gemma conversion writes it; for a model whose tokenizer has add_dummy_prefix, give
  // llama.cpp the prompt with one leading space to get SentencePiece's tokens (docs/interop.md).
  w.set("tokenizer.ggml.add_space_prefix", false);

  for (const auto& [gguf_name, hf_name] : gemma2_gguf_names(c.num_hidden_layers)) {
    FLAS_CHECK(has(hf_name), what, ": the checkpoint has no tensor '", hf_name, "'");
    Tensor t = get(hf_name);
    if (t.rank() == 1) {
      t = convert(t, DType::F32);
      if (gguf_name.find("norm") != std::string::npos)
        for (float& x : std::span(t.data<float>(), std::size_t(t.numel()))) x += 1.0f;
    } else if (t.dtype() != opt.dtype) {
      t = convert(t, opt.dtype);
    }
    w.add_tensor(gguf_name, std::move(t));
  }
  w.write(out);
}

// A Hugging Face checkpoint folder (config.json, safetensors, tokenizer.model) as a GGUF file.
inline void export_gemma2_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                               Gemma2GgufOptions opt = {}) {
  const auto c = gemma2::Config::load(model_dir / "config.json");
  const auto ckpt = io::Checkpoint::open(model_dir);
  const auto vocab = io::SentencePieceVocab::read(model_dir / "tokenizer.model");
  if (opt.name.empty()) opt.name = model_dir.filename().string();
  write_gemma2_gguf(
      c, vocab, [&](const std::string& n) { return ckpt.contains(n); }, [&](const std::string& n) { return ckpt.get(n); },
      out, model_dir.string(), opt);
}

}  // namespace flas::interop
