#pragma once
// Tests that drive a real program: spawn it (stdout and stderr to /dev/null), wait for it, and kill it
// with SIGKILL at a chosen moment. Used by the kill-and-resume tests (tests/reliability).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace flas::test {

class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const int err = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) throw std::runtime_error("cannot start " + args[0]);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }

  // True once it has ended (reaps it).
  bool finished() {
    if (reaped_) return true;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return reaped_;
  }
  int wait() {
    if (!reaped_) {
      while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    return status_;
  }
  // SIGKILL now; true when the signal (not a normal exit a moment earlier) ended it.
  bool kill() {
    if (finished()) return false;
    ::kill(pid_, SIGKILL);
    wait();
    return WIFSIGNALED(status_) && WTERMSIG(status_) == SIGKILL;
  }
  bool exited_ok() { return WIFEXITED(wait()) && WEXITSTATUS(status_) == 0; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
  int status_ = 0;
  bool reaped_ = false;
};

// Polls `ready` until it holds, the child ends or `limit` passes; true when `ready` held.
inline bool wait_until(ChildProcess& child, const std::function<bool()>& ready,
                       std::chrono::milliseconds limit = std::chrono::minutes(3)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    if (child.finished()) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

}  // namespace flas::test
