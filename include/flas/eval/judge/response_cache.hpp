#pragma once
// An on-disk cache of judge answers so that a re-run never pays for the same request twice: an
// append-only JSON-lines file, {"key": <hash of the full request>, "content": <the judge's answer>},
// read whole at start and appended one flushed line per new answer. Only answers are stored; failed
// requests are not, so a re-run retries them. Safe for concurrent workers of one process (one mutex);
// two processes must not share a file.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::eval::judge {

// 128-bit FNV-1a of `text`, as 32 hex digits. Not cryptographic; the inputs are our own requests, and
// 128 bits make an accidental collision between two of them practically impossible.
inline std::string fnv1a_128_hex(std::string_view text) {
  __extension__ typedef unsigned __int128 u128;  // GCC/Clang; __extension__ keeps -Wpedantic quiet
  const u128 offset_basis = (u128(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
  const u128 prime = (u128(1) << 88) | 0x13bULL;
  u128 hash = offset_basis;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= prime;
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 31; i >= 0; --i) {
    out[std::size_t(i)] = hex[unsigned(hash & 0xf)];
    hash >>= 4;
  }
  return out;
}

class ResponseCache {
 public:
  // An empty path keeps the cache in memory only (nothing is read or written).
  explicit ResponseCache(std::filesystem::path path = {}) : path_(std::move(path)) {
    if (path_.empty()) return;
    bool ends_with_newline = true;
    if (std::filesystem::exists(path_)) ends_with_newline = load();
    if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
    out_.open(path_, std::ios::binary | std::ios::app);
    FLAS_CHECK(out_, "judge cache ", path_.string(), ": cannot open for appending");
    if (!ends_with_newline) out_ << '\n' << std::flush;  // the next entry starts on its own line
  }

  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  const std::filesystem::path& path() const { return path_; }

  std::optional<std::string> find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  // Records an answer and, for a file-backed cache, appends it as one flushed line.
  void store(const std::string& key, const std::string& content) {
    std::lock_guard lock(mutex_);
    if (!entries_.emplace(key, content).second) return;
    if (path_.empty()) return;
    out_ << nlohmann::json{{"key", key}, {"content", content}}.dump() << '\n' << std::flush;
    FLAS_CHECK(out_, "judge cache ", path_.string(), ": writing an entry failed (disk full?)");
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  // Reads every line. A last line cut short by a crash is cut off the file with a warning (so later
  // appends stay clean); a broken line before it means the file is not ours or was edited, and is an
  // error. Returns whether the file (as kept) ends in '\n'.
  bool load() {
    std::ifstream in(path_, std::ios::binary);
    FLAS_CHECK(in, "judge cache ", path_.string(), ": cannot open for reading");
    std::ostringstream contents;
    contents << in.rdbuf();
    const std::string text = contents.str();
    std::size_t line_number = 0;
    for (std::size_t start = 0; start < text.size();) {
      ++line_number;
      const std::size_t newline = text.find('\n', start);
      const bool is_last_unterminated = newline == std::string::npos;
      const std::size_t line_start = start;
      const std::string_view line =
          std::string_view(text).substr(start, is_last_unterminated ? std::string::npos : newline - start);
      start = is_last_unterminated ? text.size() : newline + 1;
      if (line.empty()) continue;
      nlohmann::json entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      const bool well_formed = entry.is_object() && entry.contains("key") && entry["key"].is_string() &&
                               entry.contains("content") && entry["content"].is_string();
      if (!well_formed) {
        FLAS_CHECK(is_last_unterminated, "judge cache ", path_.string(), ":", line_number,
                   ": expected a JSON object {\"key\": string, \"content\": string}, found \"",
                   line.substr(0, 120), "\"");
        std::cerr << "warning: judge cache " << path_.string() << ":" << line_number
                  << ": dropping an incomplete last line (a run stopped while writing it)\n";
        in.close();
        std::filesystem::resize_file(path_, line_start);
        return true;
      }
      entries_.emplace(entry["key"].get<std::string>(), entry["content"].get<std::string>());
    }
    return text.empty() || text.back() == '\n';
  }

  std::filesystem::path path_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::string> entries_;
  std::ofstream out_;
};

}  // namespace flas::eval::judge
