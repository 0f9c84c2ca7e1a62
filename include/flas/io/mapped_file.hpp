#pragma once
// A whole file mapped into memory. Checkpoints are read through this: the kernel pages weights in on
// first touch and shares them between processes, so opening a multi-GB model costs nothing up front.
//
// The file is opened read-only and mapped private copy-on-write: flas::Tensor hands out mutable
// pointers, and a write through a view must change this process's copy, never the file, and never
// fault. (Truncating the file on disk while it is mapped still raises SIGBUS on access; writers in
// flas replace files by rename, which leaves existing mappings on the old contents.)
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flas/core/error.hpp"

namespace flas::io {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(file.string(), ": cannot open for reading: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      fail(file.string(), ": cannot stat: ", std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(file.string(), ": not a regular file");
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    void* addr = nullptr;
    if (size > 0) {  // mmap refuses a zero-length mapping; an empty file simply has no bytes
      addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (addr == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        fail(file.string(), ": cannot map ", size, " bytes: ", std::strerror(err));
      }
    }
    ::close(fd);  // the mapping keeps the file alive
    return std::shared_ptr<MappedFile>(new MappedFile(file, static_cast<std::byte*>(addr), size));
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
  }

  const std::filesystem::path& path() const { return path_; }
  // Writable (copy-on-write) so that tensors can wrap it; see the note at the top.
  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  MappedFile(std::filesystem::path path, std::byte* data, std::size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::filesystem::path path_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace flas::io
