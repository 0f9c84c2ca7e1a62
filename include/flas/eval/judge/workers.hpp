#pragma once
// Running N independent tasks (judge requests) on K worker threads, with a progress callback that is
// never called concurrently, so a CLI can draw a bar without locking.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::eval::judge {

using ProgressCallback = std::function<void(std::size_t done, std::size_t total)>;

// Calls task(i) once for every i in [0, n). Tasks report their own failures in their results; if one
// throws anyway (a bug, a full disk), no new task starts, the running ones finish, and the first
// exception is rethrown here.
inline void run_with_workers(std::size_t n, std::size_t workers, const std::function<void(std::size_t)>& task,
                             const ProgressCallback& progress = {}) {
  FLAS_CHECK(workers >= 1, "run_with_workers: expected at least 1 worker thread, got 0");
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex progress_mutex;  // also guards `done` and `first_error`
  std::size_t done = 0;
  std::exception_ptr first_error;

  auto work = [&] {
    while (!stop.load()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        task(i);
        std::lock_guard lock(progress_mutex);
        ++done;
        if (progress) progress(done, n);
      } catch (...) {  // the guard above is released before this runs
        std::lock_guard lock(progress_mutex);
        if (!first_error) first_error = std::current_exception();
        stop = true;
        return;
      }
    }
  };

  const std::size_t thread_count = std::min(workers, std::max<std::size_t>(n, 1));
  if (thread_count == 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    threads.reserve(thread_count);
    for (std::size_t t = 0; t < thread_count; ++t) threads.emplace_back(work);
    for (std::thread& t : threads) t.join();
  }
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace flas::eval::judge
