// The SentencePiece tokenizer of the bundled chat model against the encodings made by the reference
// tokenizer, the Gemma chat template, and the errors for missing files and ids outside the vocabulary.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/io/chat_template.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/io/tokenizer.hpp"
#include "io_test_helpers.hpp"

using flas::io::Tokenizer;
using namespace flas::test_io;

namespace {

const fs::path chat_model = fs::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat";

const Tokenizer& chat_tokenizer() {
  static const Tokenizer tok = Tokenizer::load(chat_model);
  return tok;
}

}  // namespace

TEST_CASE("tokenizer: special ids and vocabulary") {
  const Tokenizer& tok = chat_tokenizer();
  CHECK(tok.path() == chat_model / "tokenizer.model");
  CHECK(tok.vocab_size() == 4096);
  CHECK(tok.pad_id() == 0);
  CHECK(tok.eos_id() == 1);
  CHECK(tok.bos_id() == 2);
  CHECK(tok.piece_to_id("<start_of_turn>") == 4);
  CHECK(tok.piece_to_id("<end_of_turn>") == 5);
  CHECK(tok.id_to_piece(4) == "<start_of_turn>");
  CHECK_FALSE(tok.find_piece("<no_such_piece>").has_value());
  CHECK_FLAS_ERROR(tok.piece_to_id("<no_such_piece>"), "tokenizer.model", "'<no_such_piece>'");
  CHECK(tok.find_piece(tok.id_to_piece(tok.unk_id())) == tok.unk_id());
}

TEST_CASE("tokenizer: every reference case encodes and decodes exactly") {
  const Tokenizer& tok = chat_tokenizer();
  const auto cases = nlohmann::json::parse(read_bytes(chat_model / "tokenizer_cases.json"));
  REQUIRE(cases.size() >= 6);
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    const auto ids = c["ids"].get<std::vector<std::int64_t>>();
    CAPTURE(text);
    CHECK(tok.encode(text) == ids);
    CHECK(tok.decode(ids) == c["decoded"].get<std::string>());
    // Streaming: pieces concatenated give the text, up to the leading space decode() drops.
    std::string streamed;
    for (auto id : ids) streamed += tok.decode_piece(id);
    CHECK((streamed == text || streamed == " " + text));
  }
}

TEST_CASE("tokenizer: the chat template's markers are single tokens") {
  const Tokenizer& tok = chat_tokenizer();
  const auto prompt = flas::io::gemma_chat_prompt("Hi");
  CHECK(prompt == "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
  const auto ids = tok.encode(prompt);
  CHECK(std::count(ids.begin(), ids.end(), 4) == 2);
  CHECK(std::count(ids.begin(), ids.end(), 5) == 1);
  CHECK(tok.encode("<start_of_turn>").back() == 4);
  CHECK(tok.encode("<end_of_turn>").back() == 5);
}

TEST_CASE("tokenizer: encode_chat reproduces the reference prompt ids") {
  const Tokenizer& tok = chat_tokenizer();
  const auto samples = nlohmann::json::parse(read_bytes(chat_model / "greedy_samples.json"));
  const auto instruction = samples.at(0).at("instruction").get<std::string>();
  const auto ids = flas::io::encode_chat(tok, instruction, 2);
  REQUIRE(ids.size() > 8);
  CHECK(ids[0] == 2);
  CHECK(std::count(ids.begin(), ids.end(), 2) == 1);
  CHECK(std::count(ids.begin(), ids.end(), 4) == 2);
  CHECK(std::count(ids.begin(), ids.end(), 5) == 1);
  CHECK(tok.decode(ids) == flas::io::gemma_chat_prompt(instruction));
  CHECK(flas::io::encode_chat(tok, instruction) == ids);
  // The ids HF fed the model for reference_logits.safetensors (prompt 0 of greedy_samples.json).
  const auto ref = flas::io::SafeTensorsFile::open(chat_model / "reference_logits.safetensors").get("prompt0.input_ids");
  const auto* p = ref.data<std::int64_t>();
  CHECK(ids == std::vector<std::int64_t>(p, p + ref.numel()));
}

TEST_CASE("tokenizer: decode_piece for streaming") {
  const Tokenizer& tok = chat_tokenizer();
  CHECK(tok.decode_piece(tok.bos_id()).empty());
  CHECK(tok.decode_piece(tok.eos_id()).empty());
  CHECK(tok.decode_piece(4) == "<start_of_turn>");
  const auto ids = tok.encode("Hello world");
  CHECK(tok.decode_piece(ids.back())[0] == ' ');  // "▁world" keeps its space mid-stream
  std::string bytes;
  for (auto id : tok.encode("中")) bytes += tok.decode_piece(id);
  CHECK(bytes == " 中");
}

TEST_CASE("tokenizer: errors") {
  TempDir dir;
  CHECK_FLAS_ERROR(Tokenizer::load(dir.path()), (dir / "tokenizer.model").string(), "not found");
  CHECK_FLAS_ERROR(Tokenizer::load(dir / "absent.model"), "absent.model", "not found");
  write_bytes(dir / "tokenizer.model", "this is not a protobuf");
  CHECK_FLAS_ERROR(Tokenizer::load(dir.path()), "tokenizer.model", "not a SentencePiece model");
  const Tokenizer& tok = chat_tokenizer();
  const std::vector<std::int64_t> bad{5, 4096};
  CHECK_FLAS_ERROR(tok.decode(bad), "tokenizer.model", "token id 4096", "[0, 4096)");
  CHECK_FLAS_ERROR(tok.decode_piece(-1), "tokenizer.model", "token id -1");
  CHECK_FLAS_ERROR(tok.id_to_piece(1 << 20), "token id 1048576");
}
