// The real `flas` program killed with SIGKILL at random moments and restarted, again and again:
// - `flas train --resume`: at least 20 kills, some at random times, some the moment a checkpoint is
//   being written (a state-N.tmp folder, `latest.tmp` or a flow's temp file appears). After every kill
//   the state folder `latest` names must load completely (or there is none yet); at the end the
//   parameters, optimiser moments, data position and flows equal an uninterrupted run's, bit for bit.
// - `flas eval generate`: kills at random times and right after appends. The generations file never
//   holds a duplicated record or a torn line other than the last, and ends equal to an uninterrupted
//   run's (timing fields aside).
#include <doctest/doctest.h>
#include <sys/inotify.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "flas/io/safetensors.hpp"
#include "flas/train/train_state.hpp"
#include "support/child_process.hpp"

using namespace flas;
namespace fs = std::filesystem;

namespace {

const fs::path data_dir = FLAS_PROJECT_DATA, models_dir = FLAS_PROJECT_MODELS;

fs::path scratch(const std::string& name) {
  const auto p = fs::temp_directory_path() / ("flas_reliability_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Names of files and folders created (or renamed into place) in one folder, as they happen: lets a
// test kill a program the moment it starts writing a given file.
class FolderEvents {
 public:
  explicit FolderEvents(const fs::path& dir) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    REQUIRE(::inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_MODIFY) >= 0);
  }
  ~FolderEvents() { ::close(fd_); }
  // How many events so far named a file for which `match` holds.
  int count(const std::function<bool(const std::string&, std::uint32_t mask)>& match) {
    alignas(inotify_event) char buf[8192];
    for (ssize_t n; (n = ::read(fd_, buf, sizeof buf)) > 0;)
      for (char* p = buf; p < buf + n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(p);
        events_.emplace_back(e->len ? std::string(e->name) : std::string(), e->mask);
        p += sizeof(inotify_event) + e->len;
      }
    int c = 0;
    for (const auto& [name, mask] : events_) c += match(name, mask) ? 1 : 0;
    return c;
  }

 private:
  int fd_;
  std::vector<std::pair<std::string, std::uint32_t>> events_;
};

// --- flas train -----------------------------------------------------------------------------------

// 24 positive rows of three concepts from the bundled AxBench file: enough for a few tiny steps.
fs::path write_training_rows(const fs::path& dir) {
  std::ifstream in(data_dir / "axbench/concept10_prod_2b_l20_v1_train.jsonl");
  std::ofstream out(dir / "rows.jsonl");
  std::map<std::string, int> per_concept;
  for (std::string line; std::getline(in, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row["category"] != "positive") continue;
    const std::string concept_text = row["output_concept"];
    if (!per_concept.count(concept_text) && per_concept.size() == 3) continue;
    if (++per_concept[concept_text] <= 8) out << line << "\n";
  }
  return dir / "rows.jsonl";
}

std::vector<std::string> train_args(const fs::path& rows, const fs::path& out) {
  return {FLAS_CLI_PATH, "train", "--model", (models_dir / "tiny-gemma2-chat").string(), "--data", rows.string(),
          "--layer", "1", "--steps", "5", "--batch-size", "1", "--euler-steps", "1", "--val-every", "1",
          "--max-len", "32", "--val-samples", "1", "--held-out-concepts", "0", "--warmup", "1", "--seed", "3",
          "--out", out.string(), "--resume"};
}

struct TensorLayout {
  std::map<std::string, Shape> shapes;
};

// The step of the state `latest` names, after checking that the folder is complete: state.json
// parses and agrees with the folder's name, and the flow and both AdamW moments hold every parameter
// as F32 at its shape. 0 when there is no state yet. Fails the test on a half-written state.
std::int64_t complete_state_step(const fs::path& out, const TensorLayout& layout) {
  fs::path folder;
  REQUIRE_NOTHROW(folder = train::latest_state_folder(out));
  if (folder.empty()) return 0;
  const auto where = (folder / "state.json").string();
  train::TrainProgress p;
  REQUIRE_NOTHROW(p = train::progress_from_json(nlohmann::json::parse(train::read_text(folder / "state.json")), where));
  CHECK(folder.filename().string() == "state-" + std::to_string(p.step));
  for (const char* file : {"flow.safetensors", "adam_m.safetensors", "adam_v.safetensors"}) {
    CAPTURE(file);
    std::optional<io::SafeTensorsFile> f;
    REQUIRE_NOTHROW(f.emplace(io::SafeTensorsFile::open(folder / file)));
    CHECK(f->size() == layout.shapes.size());
    for (const auto& [name, shape] : layout.shapes) {
      REQUIRE(f->contains(name));
      CHECK(f->dtype(name) == DType::F32);
      CHECK(f->shape(name) == shape);
    }
  }
  return p.step;
}

bool has_state_temp_folder(const fs::path& out) {
  for (const auto& e : fs::directory_iterator(out))
    if (e.is_directory() && e.path().extension() == ".tmp") return true;
  return false;
}

// Every file of a finished training run that must not depend on how often it was interrupted.
void check_same_result(const fs::path& ref, const fs::path& run) {
  for (const char* file : {"flow.safetensors", "flow.json", "best_flow.safetensors", "latest"}) {
    CHECK_MESSAGE(bytes(ref / file) == bytes(run / file), file, " differs from the uninterrupted run's");
  }
  const auto state = train::latest_state_folder(ref).filename();
  for (const char* file : {"flow.safetensors", "adam_m.safetensors", "adam_v.safetensors", "state.json"}) {
    CHECK_MESSAGE(bytes(ref / state / file) == bytes(run / state / file), (state / file).string(),
                  " differs from the uninterrupted run's");
  }
  CHECK_FALSE(has_state_temp_folder(run));
}

}  // namespace

TEST_CASE("flas train killed with SIGKILL 20+ times resumes to the uninterrupted run, bit for bit") {
  const auto dir = scratch("train");
  const auto rows = write_training_rows(dir);
  const auto ref = dir / "ref", run = dir / "killed";

  const auto t0 = std::chrono::steady_clock::now();
  test::ChildProcess reference(train_args(rows, ref));
  REQUIRE(reference.exited_ok());
  const double ref_seconds = seconds_since(t0);
  TensorLayout layout;
  {
    const auto f = io::SafeTensorsFile::open(train::latest_state_folder(ref) / "flow.safetensors");
    for (const auto& name : f.names()) layout.shapes.emplace(name, f.shape(name));
  }
  REQUIRE_FALSE(layout.shapes.empty());

  // Checkpoint moments: a state folder being filled, `latest` being replaced, the best flow being written.
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> moments{
      {"state-N.tmp created", [](const std::string& n) { return n.rfind("state-", 0) == 0 && n.ends_with(".tmp"); }},
      {"latest.tmp created", [](const std::string& n) { return n == "latest.tmp"; }},
      {"best_flow.safetensors.tmp created", [](const std::string& n) { return n == "best_flow.safetensors.tmp"; }},
      {"state-N renamed into place", [](const std::string& n) { return std::regex_match(n, std::regex("state-[0-9]+")); }}};

  std::mt19937_64 rng(20261205);
  int kills = 0, mid_write_kills = 0, completions = 0, attempts = 0;
  std::int64_t last_step = 0;
  fs::create_directories(run);
  while (kills < 24 && attempts < 100) {
    ++attempts;
    FolderEvents events(run);
    test::ChildProcess child(train_args(rows, run));
    std::string when;
    bool at_write = false;
    if (attempts % 2 == 0) {
      const auto& [what, match] = moments[rng() % moments.size()];
      const int nth = 1 + int(rng() % 3);
      when = what + " #" + std::to_string(nth);
      at_write = test::wait_until(child, [&] { return events.count([&](const std::string& n, std::uint32_t) { return match(n); }) >= nth; });
    } else {
      // A resumed run is shorter than the whole one: most random kills land in its first 60 %.
      const double delay = std::uniform_real_distribution<double>(0.0, 0.6 * ref_seconds)(rng);
      when = "after " + std::to_string(delay) + " s";
      test::wait_until(child, [] { return false; }, std::chrono::milliseconds(std::int64_t(delay * 1000)));
    }
    CAPTURE(when);
    if (child.kill()) {
      ++kills;
      if (at_write && has_state_temp_folder(run)) ++mid_write_kills;
      const std::int64_t step = complete_state_step(run, layout);
      CHECK(step >= last_step);  // a kill never loses a committed state
      last_step = step;
    } else {
      // It finished first: it must have finished well, with the uninterrupted result. Start over.
      REQUIRE(child.exited_ok());
      ++completions;
      check_same_result(ref, run);
      fs::remove_all(run);
      fs::create_directories(run);
      last_step = 0;
    }
  }
  MESSAGE(kills, " kills (", mid_write_kills, " while a state folder was being written), ", completions,
          " runs that finished first, in ", attempts, " attempts; uninterrupted run ", ref_seconds, " s");
  CHECK(kills >= 20);
  CHECK(mid_write_kills >= 1);

  test::ChildProcess last(train_args(rows, run));
  REQUIRE(last.exited_ok());
  check_same_result(ref, run);
  fs::remove_all(dir);
}

// --- flas eval generate ---------------------------------------------------------------------------

namespace {

fs::path write_eval_config(const fs::path& dir) {
  nlohmann::json c = {
      {"model", (models_dir / "tiny-gemma2-chat").string()},
      {"concept_data", {(data_dir / "axbench/concept10_prod_2b_l20_v1_train.jsonl").string()}},
      {"concepts",
       {{"held_in", {"references to rental services and associated equipment",
                     "scientific terms related to research findings and their implications"}},
        {"held_out", {"layout attributes in a UI design context"}}}},
      {"instructions", {{"file", (data_dir / "alpaca_eval.json").string()}, {"first", 0}, {"count", 4}}},
      {"methods", {{"none", {0}}, {"prompt", {0}}}},
      {"max_new_tokens", 8},
      {"temperature", 0},
      {"batch_size", 1},  // one append per generation: many moments to kill at
      {"out", (dir / "out").string()}};
  std::ofstream(dir / "eval.json") << c.dump(1);
  return dir / "eval.json";
}

std::vector<std::string> eval_args(const fs::path& config) {
  return {FLAS_CLI_PATH, "eval", "generate", "--config", config.string(), "--quiet"};
}

struct GenerationLines {
  std::vector<nlohmann::json> records;  // whole lines, timing fields removed
  bool torn_tail = false;               // a last line without its newline
};

GenerationLines read_generations(const fs::path& file) {
  GenerationLines g;
  const std::string text = bytes(file);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      g.torn_tail = true;
      break;
    }
    auto j = nlohmann::json::parse(text.substr(pos, nl - pos));  // throws on a torn line inside
    j.erase("prefill_seconds");
    j.erase("decode_seconds");
    g.records.push_back(std::move(j));
    pos = nl + 1;
  }
  return g;
}

std::string cell_of(const nlohmann::json& r) {
  return r["method"].dump() + r["concept"].dump() + r["instruction_index"].dump() + r["factor"].dump() + r["sample"].dump();
}

}  // namespace

TEST_CASE("flas eval generate killed with SIGKILL resumes without duplicated or torn lines") {
  const auto dir = scratch("eval");
  fs::create_directories(dir / "ref");
  fs::create_directories(dir / "killed");
  const auto ref_config = write_eval_config(dir / "ref"), config = write_eval_config(dir / "killed");
  const auto t0 = std::chrono::steady_clock::now();
  test::ChildProcess reference(eval_args(ref_config));
  REQUIRE(reference.exited_ok());
  const double ref_seconds = seconds_since(t0);
  const auto ref = read_generations(dir / "ref/out/generations.jsonl");
  REQUIRE(ref.records.size() >= 12);
  CHECK_FALSE(ref.torn_tail);
  std::set<std::string> ref_lines;
  for (const auto& r : ref.records) ref_lines.insert(r.dump());

  const auto out = dir / "killed/out";
  fs::create_directories(out);
  std::mt19937_64 rng(7);
  int kills = 0, after_append_kills = 0, attempts = 0, completions = 0;
  std::size_t last_count = 0;
  while (kills < 20 && attempts < 80) {
    ++attempts;
    FolderEvents events(out);
    test::ChildProcess child(eval_args(config));
    std::string when;
    bool after_append = false;
    if (attempts % 2 == 0) {
      const int nth = 1 + int(rng() % 4);
      when = "append #" + std::to_string(nth);
      after_append = test::wait_until(child, [&] {
        return events.count([](const std::string& n, std::uint32_t mask) { return n == "generations.jsonl" && (mask & IN_MODIFY); }) >= nth;
      });
    } else {
      const double delay = std::uniform_real_distribution<double>(0.0, 0.8 * ref_seconds)(rng);
      when = "after " + std::to_string(delay) + " s";
      test::wait_until(child, [] { return false; }, std::chrono::milliseconds(std::int64_t(delay * 1000)));
    }
    CAPTURE(when);
    if (!child.kill()) {
      // It finished first: it must equal the uninterrupted run. Start over.
      REQUIRE(child.exited_ok());
      const auto done = read_generations(out / "generations.jsonl");
      CHECK_FALSE(done.torn_tail);
      CHECK(done.records == ref.records);
      ++completions;
      fs::remove(out / "generations.jsonl");
      last_count = 0;
      continue;
    }
    ++kills;
    after_append_kills += after_append ? 1 : 0;
    if (!fs::exists(out / "generations.jsonl")) continue;
    GenerationLines g;
    REQUIRE_NOTHROW(g = read_generations(out / "generations.jsonl"));  // no torn line but the last
    std::set<std::string> cells;
    for (const auto& r : g.records) {
      CHECK(cells.insert(cell_of(r)).second);  // no duplicated record
      CHECK(ref_lines.count(r.dump()) == 1);   // each one as the uninterrupted run wrote it
    }
    CHECK(g.records.size() >= last_count);     // nothing written is lost
    last_count = g.records.size();
  }
  MESSAGE(kills, " kills (", after_append_kills, " right after an append), ", completions,
          " runs that finished first, in ", attempts, " attempts; uninterrupted run ", ref_seconds, " s");
  CHECK(kills >= 20);

  test::ChildProcess last(eval_args(config));
  REQUIRE(last.exited_ok());
  const auto final_lines = read_generations(out / "generations.jsonl");
  CHECK_FALSE(final_lines.torn_tail);
  REQUIRE(final_lines.records.size() == ref.records.size());
  for (std::size_t i = 0; i < ref.records.size(); ++i) CHECK(final_lines.records[i] == ref.records[i]);
  fs::remove_all(dir);
}
