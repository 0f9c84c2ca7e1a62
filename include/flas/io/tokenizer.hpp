#pragma once
// The model's SentencePiece tokenizer (tokenizer.model), wrapped so that ids are int64 like the
// model's, failures are flas::Error naming the file, and ids outside the vocabulary are refused
// (SentencePiece itself would return an opaque status or crash on some of them).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sentencepiece_processor.h>

#include "flas/core/error.hpp"

namespace flas::io {

class Tokenizer {
 public:
  // A tokenizer.model file, or a model folder holding one.
  static Tokenizer load(const std::filesystem::path& model_file_or_dir) {
    namespace fs = std::filesystem;
    const bool is_dir = fs::is_directory(model_file_or_dir);
    const fs::path file = is_dir ? model_file_or_dir / "tokenizer.model" : model_file_or_dir;
    if (!fs::is_regular_file(file))
      fail(file.string(), ": tokenizer model not found",
           is_dir ? " (a model folder must hold tokenizer.model, the SentencePiece model)" : "");
    auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
    const auto status = sp->Load(file.string());
    if (!status.ok()) fail(file.string(), ": not a SentencePiece model: ", status.ToString());
    Tokenizer t;
    t.path_ = file;
    t.sp_ = std::move(sp);
    return t;
  }

  const std::filesystem::path& path() const { return path_; }
  std::int64_t vocab_size() const { return sp_->GetPieceSize(); }
  // -1 where the model defines none.
  std::int64_t bos_id() const { return sp_->bos_id(); }
  std::int64_t eos_id() const { return sp_->eos_id(); }
  std::int64_t pad_id() const { return sp_->pad_id(); }
  std::int64_t unk_id() const { return sp_->unk_id(); }

  // Token ids of `text`, without <bos> (callers add it: see encode_chat).
  std::vector<std::int64_t> encode(std::string_view text) const {
    std::vector<int> ids;
    const auto status = sp_->Encode(text, &ids);
    if (!status.ok()) fail(path_.string(), ": cannot encode text: ", status.ToString());
    return std::vector<std::int64_t>(ids.begin(), ids.end());
  }

  // Text of `ids`; control tokens (<bos>, <eos>, <pad>) produce nothing.
  std::string decode(std::span<const std::int64_t> ids) const {
    std::vector<int> narrow;
    narrow.reserve(ids.size());
    for (std::int64_t id : ids) narrow.push_back(checked(id));
    std::string text;
    const auto status = sp_->Decode(narrow, &text);
    if (!status.ok()) fail(path_.string(), ": cannot decode ids: ", status.ToString());
    return text;
  }

  // The text one token contributes in the middle of a sequence, for streaming output: unlike
  // decode({id}), a word-initial piece keeps its leading space, and a byte-fallback piece gives its raw
  // byte (a multi-byte character arrives over several calls; concatenated, the bytes are valid UTF-8).
  std::string decode_piece(std::int64_t id) const {
    const int i = checked(id);
    if (sp_->IsControl(i)) return "";
    if (sp_->IsUnknown(i)) return " \xE2\x81\x87 ";  // SentencePiece's default text for <unk>
    const std::string& piece = sp_->IdToPiece(i);
    if (sp_->IsByte(i)) return std::string(1, char(std::stoi(piece.substr(3, 2), nullptr, 16)));  // "<0xAB>"
    std::string out;
    static constexpr std::string_view space_marker = "\xE2\x96\x81";  // U+2581, SentencePiece's space
    for (std::size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, space_marker.size(), space_marker) == 0) {
        out += ' ';
        pos += space_marker.size();
      } else {
        out += piece[pos++];
      }
    }
    return out;
  }

  // The piece string of `id` as stored in the model ("▁the", "<start_of_turn>", "<0x0A>").
  std::string id_to_piece(std::int64_t id) const { return sp_->IdToPiece(checked(id)); }

  // Id of a vocabulary piece; throws when the vocabulary lacks it (SentencePiece would answer <unk>).
  std::int64_t piece_to_id(std::string_view piece) const {
    if (auto id = find_piece(piece)) return *id;
    fail(path_.string(), ": the vocabulary has no piece '", piece, "'");
  }
  std::optional<std::int64_t> find_piece(std::string_view piece) const {
    const int id = sp_->PieceToId(piece);
    if (id < 0 || (id == sp_->unk_id() && piece != sp_->IdToPiece(id))) return std::nullopt;
    return id;
  }

 private:
  Tokenizer() = default;

  int checked(std::int64_t id) const {
    if (id < 0 || id >= vocab_size())
      fail(path_.string(), ": token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
    return int(id);
  }

  std::filesystem::path path_;
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace flas::io
