// Evaluation generation across ranks writes the very records one process writes (timings aside): each
// rank takes whole batches, so every batch is generated with the same rows and seed. Part files a
// killed multi-rank run leaves behind are merged by the next run, not generated again.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>

#include "eval/small_eval_grid.hpp"
#include "flas/backends/cpu.hpp"
#include "flas/distributed/mpi_communicator.hpp"
#include "flas/eval/generate_run.hpp"

using namespace flas;
namespace fs = std::filesystem;

TEST_CASE("K ranks generate the evaluation grid one process generates") {
  const distributed::MpiCommunicator comm;
  REQUIRE(comm.size() >= 2);
  const auto id = comm.sum(std::int64_t(comm.is_root() ? ::getpid() : 0));
  const auto dir = fs::temp_directory_path() / ("flas_dp_eval_" + std::to_string(id));
  const auto cfg = eval::parse_eval_config(testing::small_eval_config(dir / "ranks"), dir / "ranks.json");
  const auto st = eval::generate_run<CpuBackend>(cfg, false, comm);
  CHECK(st.generated == st.cells);
  if (comm.is_root()) {
    CHECK(eval::generation_part_files(cfg.generations_file()).empty());  // merged and removed
    const auto one_cfg = eval::parse_eval_config(testing::small_eval_config(dir / "one"), dir / "one.json");
    const auto one = eval::generate_run<CpuBackend>(one_cfg, false);
    CHECK(one.generated == st.cells);
    const auto ranks_text = testing::generations_without_timings(cfg.generations_file());
    CHECK(std::count(ranks_text.begin(), ranks_text.end(), '\n') == std::ptrdiff_t(st.cells));
    CHECK(ranks_text == testing::generations_without_timings(one_cfg.generations_file()));

    // A killed multi-rank run: its part files hold finished batches; the next run merges them first.
    const auto left_cfg = eval::parse_eval_config(testing::small_eval_config(dir / "left"), dir / "left.json");
    fs::create_directories(left_cfg.out_dir);
    fs::copy_file(dir / "ranks/diffmean.safetensors", dir / "left/diffmean.safetensors");
    std::ifstream in(cfg.generations_file());
    std::ofstream part(eval::generation_part_file(left_cfg.generations_file(), 1));
    std::string line;
    for (int i = 0; i < 5 && std::getline(in, line); ++i) part << line << "\n";  // the first batch
    part.close();
    const auto resumed = eval::generate_run<CpuBackend>(left_cfg, false);
    CHECK(resumed.already_done == 5);
    CHECK(resumed.generated == st.cells - 5);
    CHECK(eval::generation_part_files(left_cfg.generations_file()).empty());
    CHECK(testing::generations_without_timings(left_cfg.generations_file()) == ranks_text);
  }
  comm.barrier();
  if (comm.is_root()) fs::remove_all(dir);
}
