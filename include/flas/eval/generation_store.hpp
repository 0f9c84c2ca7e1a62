#pragma once
// The append-only JSON Lines file of a run's generations. Each finished batch is appended with one
// write and an fsync, so a crash loses at most the batch in flight; on opening, a torn last line (the
// crash) is cut off with a warning, while a bad line anywhere else is an error naming its line.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/eval/generation_record.hpp"

namespace flas::eval {

class GenerationStore {
 public:
  explicit GenerationStore(std::filesystem::path file) : file_(std::move(file)) {
    if (!file_.parent_path().empty()) std::filesystem::create_directories(file_.parent_path());
    if (std::filesystem::exists(file_)) load();
  }

  const std::vector<GenerationRecord>& records() const { return records_; }
  bool has(const CellKey& k) const { return keys_.count(k.key()) > 0; }

  void append(const std::vector<GenerationRecord>& batch) {
    std::string text;
    for (const auto& r : batch) {
      if (has(r.cell)) continue;
      text += nlohmann::json(r).dump() + "\n";
    }
    if (text.empty()) return;
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    FLAS_CHECK(fd >= 0, file_.string(), ": cannot open for appending: ", std::strerror(errno));
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        fail(file_.string(), ": write failed: ", std::strerror(errno));
      }
      done += std::size_t(n);
    }
    ::fsync(fd);
    ::close(fd);
    for (const auto& r : batch)
      if (keys_.insert(r.cell.key()).second) records_.push_back(r);
  }

 private:
  void load() {
    std::ifstream in(file_, std::ios::binary);
    FLAS_CHECK(in, file_.string(), ": cannot open the generations");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t pos = 0, good_end = 0;
    std::int64_t line_no = 0;
    while (pos < all.size()) {
      const std::size_t nl = all.find('\n', pos);
      ++line_no;
      const bool last = nl == std::string::npos;
      const std::string line = all.substr(pos, last ? std::string::npos : nl - pos);
      try {
        if (last) throw std::runtime_error("no newline at the end");
        GenerationRecord r = nlohmann::json::parse(line).get<GenerationRecord>();
        if (keys_.insert(r.cell.key()).second) records_.push_back(std::move(r));
        good_end = nl + 1;
      } catch (const std::exception& e) {
        FLAS_CHECK(last || (all.find('\n', nl + 1) == std::string::npos && all.size() == nl + 1), file_.string(), ":",
                   line_no, ": not a generation record (", e.what(), ")");
        std::fprintf(stderr, "[flas eval] %s:%lld: dropping a torn last line (an interrupted write); it is redone\n",
                     file_.c_str(), static_cast<long long>(line_no));
        break;
      }
      pos = nl + 1;
    }
    if (good_end < all.size()) std::filesystem::resize_file(file_, good_end);
  }

  std::filesystem::path file_;
  std::vector<GenerationRecord> records_;
  std::set<std::string> keys_;
};

}  // namespace flas::eval
