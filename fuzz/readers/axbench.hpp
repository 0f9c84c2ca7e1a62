#pragma once
// AxBench training rows (JSON Lines), as `flas train --data` reads them, then split as training
// splits them. An accepted file has only positive rows, each with a concept index into the list.
#include <string_view>
#include <cstdint>
#include "flas/train/axbench_data.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_axbench(std::string_view input) {
  const std::size_t size = input.size();
  const auto file = fuzz::scratch_file("rows.jsonl", input);
  fuzz::refuses_cleanly([&] {
    const auto d = train::load_axbench({file});
    for (const auto& s : d.samples)
      if (s.concept_index < 0 || std::size_t(s.concept_index) >= d.concepts.size() ||
          d.concepts[std::size_t(s.concept_index)] != s.concept_text)
        fuzz::finding("sample's concept index does not name its concept");
    const auto split = train::split_dataset(d, size % 3, size % 7, size);
    if (split.train.size() + split.validation.size() + split.held_out.size() != d.samples.size())
      fuzz::finding("split lost or duplicated rows");
  });
}

}  // namespace flas::fuzz
