#pragma once
// AxBench labelled rows as the evaluation reads them: every row (positive, negative, hard negative)
// with its concept text. In the _train files negatives carry output_concept "EEEEE" and belong to every
// concept of that file; in the _latent_eval files each concept has its own negatives. A concept is
// identified by its text (concept_id restarts in every file).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::eval {

enum class RowLabel : std::uint8_t { positive, negative, hard_negative };

struct LabelledRow {
  std::string input, output;
  std::string concept_text;  // "" for a shared negative ("EEEEE")
  RowLabel label = RowLabel::negative;
  std::string file;          // where it came from, for messages and per-file negatives
};

inline RowLabel row_label_from_name(const std::string& name, const std::string& where) {
  if (name == "positive") return RowLabel::positive;
  if (name == "negative") return RowLabel::negative;
  if (name == "hard negative") return RowLabel::hard_negative;
  fail(where, ": category '", name, "' is not one of positive, negative, hard negative");
}

inline std::vector<LabelledRow> load_labelled_rows(const std::filesystem::path& file) {
  std::ifstream in(file);
  FLAS_CHECK(in, file.string(), ": cannot open the labelled rows");
  std::vector<LabelledRow> rows;
  std::string line;
  std::int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    for (const char* key : {"input", "output", "output_concept", "category"})
      FLAS_CHECK(j.contains(key) && j[key].is_string(), where, ": field '", key, "' missing or not a string");
    LabelledRow r{j["input"].get<std::string>(), j["output"].get<std::string>(), j["output_concept"].get<std::string>(),
                  row_label_from_name(j["category"].get<std::string>(), where), file.string()};
    if (r.concept_text == "EEEEE") r.concept_text.clear();
    FLAS_CHECK(r.label != RowLabel::positive || !r.concept_text.empty(), where, ": a positive row without a concept");
    rows.push_back(std::move(r));
  }
  FLAS_CHECK(!rows.empty(), file.string(), ": no rows");
  return rows;
}

inline std::vector<LabelledRow> load_labelled_rows(const std::vector<std::filesystem::path>& files) {
  std::vector<LabelledRow> all;
  for (const auto& f : files) {
    auto rows = load_labelled_rows(f);
    all.insert(all.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
  }
  return all;
}

}  // namespace flas::eval
