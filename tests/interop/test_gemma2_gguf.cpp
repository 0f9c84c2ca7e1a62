// flas export-gguf's library part: the bundled model written as llama.cpp's Gemma-2 GGUF and read back,
// every tensor against the safetensors checkpoint (norms as 1 + w), the vocabulary against the
// SentencePiece library's own answers, and the shapes llama.cpp cannot express refused by name.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "flas/interop/gemma2_gguf.hpp"
#include "flas/io/gguf_reader.hpp"
#include "flas/io/tokenizer.hpp"
#include "io/io_test_helpers.hpp"

using namespace flas;
using namespace flas::test_io;

namespace {
const fs::path chat_dir = fs::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat";
}

TEST_CASE("export-gguf: the bundled model's tensors, hyperparameters and vocabulary") {
  TempDir dir;
  const auto cfg = gemma2::Config::load(chat_dir / "config.json");
  const auto ckpt = io::Checkpoint::open(chat_dir);
  for (DType dtype : {DType::F32, DType::BF16}) {
    CAPTURE(dtype_name(dtype));
    const fs::path out = dir.path() / "m.gguf";
    interop::export_gemma2_gguf(chat_dir, out, {dtype, "tiny"});
    const auto g = io::GgufFile::open(out);
    CHECK(g.get<std::string>("general.architecture") == "gemma2");
    CHECK(g.get<std::string>("general.name") == "tiny");
    CHECK(g.get<std::uint32_t>("general.file_type") == (dtype == DType::F32 ? 0u : 32u));
    CHECK(g.get<std::uint32_t>("gemma2.block_count") == 6);
    CHECK(g.get<std::uint32_t>("gemma2.embedding_length") == 256);
    CHECK(g.get<std::uint32_t>("gemma2.attention.head_count_kv") == 2);
    CHECK(g.get<std::uint32_t>("gemma2.attention.sliding_window") == 128);
    CHECK(g.get<float>("gemma2.attn_logit_softcapping") == 50.0f);
    CHECK(g.get<float>("gemma2.final_logit_softcapping") == 30.0f);
    CHECK(g.get<float>("gemma2.attention.layer_norm_rms_epsilon") == 1e-6f);

    const auto names = interop::gemma2_gguf_names(cfg.num_hidden_layers);
    CHECK(g.tensors().size() == names.size());
    CHECK(names.size() == ckpt.size());  // every checkpoint tensor is exported (tied output: none)
    for (const auto& [gguf_name, hf_name] : names) {
      CAPTURE(gguf_name);
      const Tensor hf = ckpt.get(hf_name), got = g.get(gguf_name);
      REQUIRE(got.shape() == hf.shape());
      const bool norm = gguf_name.find("norm") != std::string::npos;
      CHECK(got.dtype() == (hf.rank() == 1 ? DType::F32 : dtype));
      std::int64_t mismatches = 0;
      for (std::int64_t i = 0; i < hf.numel(); ++i) {
        const float want = float(element_as_double(hf, i)) + (norm ? 1.0f : 0.0f);
        const float want_stored = got.dtype() == DType::BF16 ? round_to_bf16(want) : want;
        mismatches += float(element_as_double(got, i)) != want_stored;
      }
      CHECK(mismatches == 0);
    }

    const auto tok = io::Tokenizer::load(chat_dir);
    const auto pieces = g.get_array<std::string>("tokenizer.ggml.tokens");
    const auto types = g.get_array<std::int32_t>("tokenizer.ggml.token_type");
    REQUIRE(std::int64_t(pieces.size()) == tok.vocab_size());
    REQUIRE(types.size() == pieces.size());
    CHECK(g.get_array<float>("tokenizer.ggml.scores").size() == pieces.size());
    int bytes = 0;
    for (std::int64_t i = 0; i < tok.vocab_size(); ++i) {
      CHECK(pieces[std::size_t(i)] == tok.id_to_piece(i));
      bytes += types[std::size_t(i)] == 6;
    }
    CHECK(bytes == 256);
    CHECK(types[std::size_t(tok.unk_id())] == 2);
    CHECK(types[std::size_t(tok.bos_id())] == 3);
    CHECK(types[std::size_t(tok.piece_to_id("<start_of_turn>"))] == 4);  // matched whole by llama.cpp
    CHECK(g.get<std::uint32_t>("tokenizer.ggml.bos_token_id") == std::uint32_t(tok.bos_id()));
    CHECK(g.get<std::uint32_t>("tokenizer.ggml.unknown_token_id") == std::uint32_t(tok.unk_id()));
    CHECK(g.get<std::string>("tokenizer.ggml.model") == "llama");
    CHECK(!g.get<bool>("tokenizer.ggml.add_space_prefix"));
  }
}

TEST_CASE("export-gguf: what llama.cpp hard-codes differently is refused, naming it") {
  TempDir dir;
  for (const char* f : {"model.safetensors", "tokenizer.model"}) fs::create_symlink(fs::absolute(chat_dir / f), dir.path() / f);
  auto with_config = [&](auto edit) {
    std::ifstream in(chat_dir / "config.json");
    auto j = nlohmann::json::parse(in);
    edit(j);
    write_bytes(dir.path() / "config.json", j.dump());
    return error_message([&] { interop::export_gemma2_gguf(dir.path(), dir.path() / "x.gguf"); });
  };
  CHECK(has(with_config([](auto& j) { j["query_pre_attn_scalar"] = 32; }), "query_pre_attn_scalar is 32"));
  CHECK(has(with_config([](auto& j) { j["layer_types"][0] = "full_attention"; }), "layer 0 is full attention"));
  CHECK(has(with_config([](auto& j) { j["vocab_size"] = 4000; }), "(tokenizer.model) has 4096 pieces, config.json's vocab_size is 4000"));
  CHECK(!fs::exists(dir.path() / "x.gguf"));
}

TEST_CASE("sentencepiece vocabulary: truncated or malformed protobuf is a named error") {
  CHECK(has(error_message([] { io::SentencePieceVocab::parse("\x0a\x05\x0a", "t.model"); }), "t.model"));
  CHECK(has(error_message([] { io::SentencePieceVocab::parse("\x0a\x02\x18\x09", "t.model"); }), "has type 9, expected 1..6"));
  CHECK(has(error_message([] { io::SentencePieceVocab::parse("\x17", "t.model"); }), "wire type 7"));
  CHECK(has(error_message([] { io::SentencePieceVocab::parse("", "t.model"); }), "no pieces"));
}
