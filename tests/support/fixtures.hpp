#pragma once
// Fixture discovery: every fixture folder (the project's tests/fixtures, then each folder named in the
// colon-separated FLAS_FIXTURES) is scanned for sets by file name, so a new set is a dropped-in file,
// not a code change. A set is named by its tag: `gemma2_<tag>_fixtures.safetensors` -> tag.
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace flas::testing {

namespace fs = std::filesystem;

inline std::vector<fs::path> fixture_folders() {
  std::vector<fs::path> out{fs::path(FLAS_PROJECT_FIXTURES)};
  if (const char* env = std::getenv("FLAS_FIXTURES")) {
    std::string s = env;
    std::size_t start = 0;
    while (start <= s.size()) {
      const std::size_t end = s.find(':', start);
      const std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!part.empty() && fs::is_directory(part)) out.emplace_back(part);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return out;
}

struct FixtureSet {
  std::string tag;
  fs::path folder;
  fs::path file;  // the matched file
};

// All files named `<prefix><tag><suffix>` in every fixture folder, e.g. ("gemma2_", "_fixtures.safetensors").
inline std::vector<FixtureSet> discover(const std::string& prefix, const std::string& suffix) {
  std::vector<FixtureSet> sets;
  std::set<fs::path> seen;
  const std::regex re("^" + prefix + "([A-Za-z0-9-]+)" + std::regex_replace(suffix, std::regex(R"(\.)"), R"(\.)") + "$");
  for (const auto& folder : fixture_folders()) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(folder)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& p : files) {
      std::smatch m;
      const std::string name = p.filename().string();
      if (std::regex_match(name, m, re) && seen.insert(fs::weakly_canonical(p)).second)
        sets.push_back({m[1].str(), folder, p});
    }
  }
  return sets;
}

// Counts the checks of one set and prints its line when done: "[gemma2 tiny] 12 checks passed".
class SetReport {
 public:
  SetReport(std::string group, std::string tag) : group_(std::move(group)), tag_(std::move(tag)) {}
  void pass(int n = 1) { passed_ += n; }
  // A compared quantity: counts as passed when within `bound`; the worst ratio seen is printed.
  bool check(double diff, double bound) {
    worst_ = std::max(worst_, diff);
    diff <= bound ? pass() : fail();
    return diff <= bound;
  }
  void fail(int n = 1) { failed_ += n; }
  int passed() const { return passed_; }
  ~SetReport() {
    std::printf("[%s %s] %d checks passed, %d failed (worst max|d|/max|ref| %.2e)\n", group_.c_str(), tag_.c_str(),
                passed_, failed_, worst_);
    std::fflush(stdout);
  }

 private:
  std::string group_, tag_;
  int passed_ = 0, failed_ = 0;
  double worst_ = 0;
};

}  // namespace flas::testing
