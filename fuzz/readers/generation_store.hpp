#pragma once
// An evaluation's append-only generations file (JSON Lines), as `flas eval generate` reopens it to
// resume: a torn last line is cut off, a bad line elsewhere is an error naming it. After opening,
// the file must hold exactly the records kept, each on one whole line.
#include <string_view>
#include <cstdint>
#include <fstream>
#include <sstream>
#include "flas/eval/generation_store.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_generation_store(std::string_view input) {
  const std::size_t size = input.size();
  const auto file = fuzz::scratch_file("generations.jsonl", input);
  fuzz::refuses_cleanly([&] {
    const eval::GenerationStore store(file);
    std::ifstream in(file, std::ios::binary);
    std::stringstream rest;
    rest << in.rdbuf();
    const std::string text = rest.str();
    if (!text.empty() && text.back() != '\n') fuzz::finding("a torn last line was kept");
    // Re-reading what is left must succeed and give the same records (no torn line remains).
    const eval::GenerationStore again(file);
    if (again.records().size() != store.records().size()) fuzz::finding("reopening changed the records");
  });
}

}  // namespace flas::fuzz
