#pragma once
// Server metrics in the Prometheus text format (version 0.0.4): counters, gauges and cumulative
// histograms, updated from the HTTP threads and the decode loop, rendered for GET /metrics.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace flas::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)), counts_(bounds_.size(), 0) {}
  void observe(double x) {
    std::lock_guard lock(m_);
    for (std::size_t i = 0; i < bounds_.size(); ++i)
      if (x <= bounds_[i]) ++counts_[i];
    ++count_;
    sum_ += x;
  }
  void render(std::ostringstream& out, const std::string& name, const std::string& help) const {
    std::lock_guard lock(m_);
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
    for (std::size_t i = 0; i < bounds_.size(); ++i) out << name << "_bucket{le=\"" << bounds_[i] << "\"} " << counts_[i] << '\n';
    out << name << "_bucket{le=\"+Inf\"} " << count_ << '\n' << name << "_sum " << sum_ << '\n' << name << "_count " << count_ << '\n';
  }
  std::uint64_t count() const {
    std::lock_guard lock(m_);
    return count_;
  }

 private:
  mutable std::mutex m_;
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

struct Metrics {
  // Requests answered, by endpoint and HTTP status.
  void count_request(const std::string& endpoint, int status) {
    std::lock_guard lock(m_);
    ++requests_[{endpoint, status}];
  }

  std::atomic<std::uint64_t> prompt_tokens{0}, completion_tokens{0}, cancelled{0}, timed_out{0}, rejected_queue_full{0};
  std::atomic<std::int64_t> queue_depth{0}, active_rows{0}, max_batch{0};
  std::atomic<std::uint64_t> decode_steps{0}, recompositions{0}, concept_cache_hits{0}, concept_cache_misses{0};
  Histogram time_to_first_token{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  Histogram request_latency{{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}};
  Histogram decode_step_seconds{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}};
  Histogram batch_occupancy{{1, 2, 4, 8, 16, 32, 64, 128, 256}};

  std::string render() const {
    std::ostringstream out;
    out << "# HELP flas_requests_total HTTP requests answered, by endpoint and status.\n# TYPE flas_requests_total counter\n";
    {
      std::lock_guard lock(m_);
      for (const auto& [key, n] : requests_)
        out << "flas_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
    }
    auto counter = [&](const char* name, const char* help, std::uint64_t v) {
      out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n" << name << ' ' << v << '\n';
    };
    auto gauge = [&](const char* name, const char* help, std::int64_t v) {
      out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n" << name << ' ' << v << '\n';
    };
    counter("flas_prompt_tokens_total", "Prompt tokens prefilled.", prompt_tokens);
    counter("flas_completion_tokens_total", "Tokens generated.", completion_tokens);
    counter("flas_requests_cancelled_total", "Requests cancelled (client gone or stop sequence reached).", cancelled);
    counter("flas_requests_timed_out_total", "Requests stopped by the request timeout.", timed_out);
    counter("flas_requests_rejected_total", "Requests refused because the queue was full (503).", rejected_queue_full);
    counter("flas_decode_steps_total", "Decode steps of the continuous batch.", decode_steps);
    counter("flas_batch_recompositions_total", "Times the batch changed rows (admission, retirement, compaction).", recompositions);
    counter("flas_concept_cache_hits_total", "Concept encodings served from the cache.", concept_cache_hits);
    counter("flas_concept_cache_misses_total", "Concept encodings computed.", concept_cache_misses);
    gauge("flas_queue_depth", "Requests waiting for a batch row.", queue_depth);
    gauge("flas_batch_active_rows", "Rows in the decode batch now.", active_rows);
    gauge("flas_batch_max_rows", "Rows the decode batch may hold (--max-batch).", max_batch);
    time_to_first_token.render(out, "flas_time_to_first_token_seconds", "Time from arrival to the first generated token.");
    request_latency.render(out, "flas_request_duration_seconds", "Time from arrival to the last token.");
    decode_step_seconds.render(out, "flas_decode_step_seconds", "Duration of one decode step of the batch.");
    batch_occupancy.render(out, "flas_batch_occupancy_rows", "Rows in the batch at each decode step.");
    return out.str();
  }

 private:
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
};

}  // namespace flas::serve
