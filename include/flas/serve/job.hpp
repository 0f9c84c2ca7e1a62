#pragma once
// One generation request as the decode loop sees it, and the channel its tokens come back through:
// the loop appends tokens and finally a finish reason; the request's HTTP thread waits for them and
// may ask for cancellation (client gone, stop sequence seen), which the loop honours at the next token
// boundary.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flas/generate/sampler.hpp"
#include "flas/serve/steering_spec.hpp"

namespace flas::serve {

enum class FinishReason { running, stop, length, cancelled, timeout, error };

inline const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::timeout: return "timeout";
    case FinishReason::error: return "error";
    default: return "running";
  }
}

struct Job {
  using clock = std::chrono::steady_clock;

  // What to generate (fixed once submitted).
  std::vector<std::int64_t> prompt;
  std::int64_t max_tokens = 16;
  SamplingOptions sampling;
  std::optional<SteeringSpec> steering;  // absent or T = 0: unsteered
  clock::time_point arrived = clock::now(), deadline = clock::time_point::max();

  // What came back so far: a snapshot under the lock.
  struct Progress {
    std::vector<std::int64_t> tokens;
    FinishReason finish = FinishReason::running;
    std::string error;
  };

  void push_token(std::int64_t token) {
    {
      std::lock_guard lock(m_);
      if (tokens_.empty()) first_token_at_ = clock::now();
      tokens_.push_back(token);
    }
    cv_.notify_all();
  }
  void finish(FinishReason why, std::string error = {}) {
    {
      std::lock_guard lock(m_);
      if (finish_ != FinishReason::running) return;
      finish_ = why;
      error_ = std::move(error);
      finished_at_ = clock::now();
    }
    cv_.notify_all();
  }
  // Waits until more than `seen` tokens exist, the job finished, or `timeout` passed.
  Progress wait(std::size_t seen, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, timeout, [&] { return tokens_.size() > seen || finish_ != FinishReason::running; });
    return {tokens_, finish_, error_};
  }
  Progress progress() const {
    std::lock_guard lock(m_);
    return {tokens_, finish_, error_};
  }
  bool finished() const {
    std::lock_guard lock(m_);
    return finish_ != FinishReason::running;
  }
  std::optional<clock::time_point> first_token_at() const {
    std::lock_guard lock(m_);
    return tokens_.empty() ? std::nullopt : std::optional(first_token_at_);
  }

  void request_cancel() { cancel_requested_ = true; }
  bool cancel_requested() const { return cancel_requested_; }

 private:
  mutable std::mutex m_;
  mutable std::condition_variable cv_;
  std::vector<std::int64_t> tokens_;
  FinishReason finish_ = FinishReason::running;
  std::string error_;
  clock::time_point first_token_at_{}, finished_at_{};
  std::atomic<bool> cancel_requested_{false};
};

}  // namespace flas::serve
