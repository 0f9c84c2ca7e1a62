#pragma once
// A terminal progress bar with a rate and an ETA, redrawn in place on stderr (a plain line per update
// when stderr is not a terminal, at most every few seconds, so logs stay short).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace flas::eval {

class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t total, std::size_t already_done = 0)
      : label_(std::move(label)), total_(total), start_done_(already_done), done_(already_done),
        tty_(::isatty(STDERR_FILENO) != 0), t0_(clock::now()), last_(t0_) {
    draw(true);
  }
  ~ProgressBar() { finish(); }

  void advance(std::size_t n = 1) {
    done_ += n;
    draw(done_ >= total_);
  }
  void update(std::size_t done) {
    done_ = done;
    draw(done_ >= total_);
  }
  void finish() {
    if (finished_) return;
    finished_ = true;
    draw(true);
    if (tty_) std::fputc('\n', stderr);
  }

  static std::string format_seconds(double s) {
    if (!(s >= 0) || s > 1e7) return "--:--";
    const long t = long(s + 0.5);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    return buf;
  }

 private:
  using clock = std::chrono::steady_clock;

  void draw(bool force) {
    const auto now = clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (!force && since_last < (tty_ ? 0.2 : 5.0)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const double rate = elapsed > 0 ? double(done_ - start_done_) / elapsed : 0;
    const double eta = rate > 0 ? double(total_ - done_) / rate : -1;
    const int width = 30;
    const int filled = total_ ? int(double(width) * double(done_) / double(total_)) : width;
    std::string bar(std::size_t(filled), '#');
    bar.resize(std::size_t(width), '.');
    std::fprintf(stderr, "%s%s [%s] %zu/%zu  %.2f/s  elapsed %s  ETA %s%s", tty_ ? "\r" : "", label_.c_str(),
                 bar.c_str(), done_, total_, rate, format_seconds(elapsed).c_str(),
                 done_ >= total_ ? "0m00s" : format_seconds(eta).c_str(), tty_ ? "  " : "\n");
    std::fflush(stderr);
  }

  std::string label_;
  std::size_t total_, start_done_, done_;
  bool tty_, finished_ = false;
  clock::time_point t0_, last_;
};

}  // namespace flas::eval
