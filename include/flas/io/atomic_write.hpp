#pragma once
// Atomic file replacement: write "<file>.tmp" in the same folder, fsync it, rename it over <file>, fsync
// the folder. A reader (or a crash) sees either the old file or the complete new one, never a torn
// write; a process that has the old file mapped keeps reading the old contents.
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <span>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flas/core/error.hpp"

namespace flas::io {

namespace detail {

// Removes the temporary file unless the rename went through.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::filesystem::path tmp) : tmp_(std::move(tmp)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  int& fd() { return fd_; }
  void commit() { committed_ = true; }

 private:
  std::filesystem::path tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

inline void write_all(int fd, const std::byte* data, std::size_t n, const std::filesystem::path& file) {
  while (n > 0) {
    const ::ssize_t done = ::write(fd, data, n);
    if (done < 0) {
      if (errno == EINTR) continue;
      fail(file.string(), ": write failed: ", std::strerror(errno));
    }
    data += done;
    n -= std::size_t(done);
  }
}

// Makes the rename durable. Some file systems refuse fsync on a folder; the data is safe either way.
inline void sync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace detail

// Writes the concatenation of `parts` to `file`, atomically (see the note at the top).
inline void write_file_atomically(const std::filesystem::path& file,
                                  const std::vector<std::span<const std::byte>>& parts) {
  const std::filesystem::path tmp = file.string() + ".tmp";
  detail::TempFileGuard guard(tmp);
  guard.fd() = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (guard.fd() < 0) fail(tmp.string(), ": cannot create (writing ", file.string(), "): ", std::strerror(errno));
  for (const auto& part : parts) detail::write_all(guard.fd(), part.data(), part.size(), tmp);
  if (::fsync(guard.fd()) != 0) fail(tmp.string(), ": fsync failed: ", std::strerror(errno));
  const int fd = guard.fd();
  guard.fd() = -1;
  if (::close(fd) != 0) fail(tmp.string(), ": close failed: ", std::strerror(errno));
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    fail(tmp.string(), ": cannot rename over ", file.string(), ": ", std::strerror(errno));
  guard.commit();
  detail::sync_folder(file.parent_path());
}

// Text (a report, a JSON Lines file, a script) written atomically.
inline void write_text_atomically(const std::filesystem::path& file, std::string_view text) {
  write_file_atomically(file, {std::as_bytes(std::span(text.data(), text.size()))});
}

}  // namespace flas::io
