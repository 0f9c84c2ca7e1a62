#pragma once
// The three judge prompts (concept relevance, instruction relevance, fluency), loaded from a folder
// of text files (data/eval/judge/: concept.txt, instruction.txt, fluency.txt) and filled the way
// AxBench fills them with Python's str.format: "{name}" is replaced in one pass (a generated text that
// itself contains "{concept}" is left as is), "{{" and "}}" stand for literal braces.
#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/eval/generation_record.hpp"

namespace flas::eval::judge {

// The three questions asked about every generation, in the order AxBench asks them.
enum class Question { concept_relevance = 0, instruction_relevance = 1, fluency = 2 };
inline constexpr std::array<Question, 3> all_questions = {Question::concept_relevance, Question::instruction_relevance,
                                                          Question::fluency};

inline std::string_view to_string(Question q) {
  switch (q) {
    case Question::concept_relevance: return "concept";
    case Question::instruction_relevance: return "instruction";
    case Question::fluency: return "fluency";
  }
  return "unknown";
}

// A template file's name in the folder and the placeholders it must contain (no others are allowed).
inline std::string template_file_name(Question q) { return std::string(to_string(q)) + ".txt"; }

inline std::vector<std::string> required_placeholders(Question q) {
  switch (q) {
    case Question::concept_relevance: return {"concept", "sentence"};
    case Question::instruction_relevance: return {"instruction", "sentence"};
    case Question::fluency: return {"sentence"};
  }
  return {};
}

// One piece of a parsed template: literal text, or the name of a placeholder to substitute.
struct TemplatePiece {
  bool is_placeholder = false;
  std::string text;  // the literal text, or the placeholder's name
};

class PromptTemplate {
 public:
  // Parses `text` (without the source line); `origin` names the file in error messages.
  PromptTemplate(std::string origin, std::string source, std::string_view text)
      : origin_(std::move(origin)), source_(std::move(source)) {
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {  // "{{" or "}}"
        literal += c;
        ++i;
      } else if (c == '{') {
        const std::size_t close = text.find('}', i + 1);
        FLAS_CHECK(close != std::string_view::npos, origin_, ": '{' at offset ", i,
                   " is not closed by '}' (write \"{{\" for a literal brace)");
        const std::string name(text.substr(i + 1, close - i - 1));
        FLAS_CHECK(is_identifier(name), origin_, ": \"{", name, "}\" at offset ", i,
                   " is not a placeholder name (letters, digits, '_'); write \"{{\" for a literal brace");
        if (!literal.empty()) pieces_.push_back({false, std::move(literal)});
        literal.clear();
        pieces_.push_back({true, name});
        placeholders_.insert(name);
        i = close;
      } else {
        FLAS_CHECK(c != '}', origin_, ": lone '}' at offset ", i, " (write \"}}\" for a literal brace)");
        literal += c;
      }
    }
    if (!literal.empty()) pieces_.push_back({false, std::move(literal)});
  }

  const std::string& origin() const { return origin_; }
  const std::string& source() const { return source_; }
  const std::set<std::string>& placeholders() const { return placeholders_; }

  // Replaces every placeholder; each must have a value (values without a placeholder are an error
  // too, since they mean the template and the caller disagree about what the prompt says).
  std::string fill(const std::map<std::string, std::string>& values) const {
    for (const std::string& name : placeholders_)
      FLAS_CHECK(values.count(name), origin_, ": no value given for placeholder {", name, "}");
    for (const auto& [name, value] : values)
      FLAS_CHECK(placeholders_.count(name), origin_, ": has no placeholder {", name, "} to receive the value given");
    std::string out;
    for (const TemplatePiece& piece : pieces_) out += piece.is_placeholder ? values.at(piece.text) : piece.text;
    return out;
  }

 private:
  static bool is_identifier(const std::string& name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
    for (char c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
  }

  std::string origin_, source_;
  std::vector<TemplatePiece> pieces_;
  std::set<std::string> placeholders_;
};

// Every template file starts with one line "# source: <where it comes from>"; it is stripped here.
inline constexpr std::string_view template_source_prefix = "# source:";

inline PromptTemplate load_prompt_template(const std::filesystem::path& file, Question q) {
  std::ifstream in(file, std::ios::binary);
  FLAS_CHECK(in, "judge template ", file.string(), " (", to_string(q), " question): cannot open file");
  std::ostringstream contents;
  contents << in.rdbuf();
  const std::string text = contents.str();
  const std::size_t first_newline = text.find('\n');
  const std::string_view first_line = std::string_view(text).substr(0, first_newline);
  FLAS_CHECK(first_line.starts_with(template_source_prefix), "judge template ", file.string(),
             ": first line must name the template's source as \"", template_source_prefix,
             " <repo> <path> ...\", found \"", first_line.substr(0, 80), "\"");
  FLAS_CHECK(first_newline != std::string::npos, "judge template ", file.string(), ": has only its source line");
  std::string source(first_line.substr(template_source_prefix.size()));
  while (!source.empty() && source.front() == ' ') source.erase(source.begin());

  PromptTemplate parsed("judge template " + file.string(), source, std::string_view(text).substr(first_newline + 1));
  for (const std::string& name : required_placeholders(q))
    FLAS_CHECK(parsed.placeholders().count(name), "judge template ", file.string(), " (", to_string(q),
               " question): missing placeholder {", name, "}");
  const std::vector<std::string> required = required_placeholders(q);
  for (const std::string& name : parsed.placeholders())
    FLAS_CHECK(std::find(required.begin(), required.end(), name) != required.end(), "judge template ",
               file.string(), " (", to_string(q), " question): unknown placeholder {", name,
               "}; this question fills only the placeholders it needs");
  return parsed;
}

// The three templates of one judge, and the prompts they make for a generation.
class JudgeTemplates {
 public:
  static JudgeTemplates load(const std::filesystem::path& folder) {
    FLAS_CHECK(std::filesystem::is_directory(folder), "judge templates folder ", folder.string(),
               " does not exist (expected concept.txt, instruction.txt, fluency.txt there, e.g. data/eval/judge)");
    JudgeTemplates out;
    for (Question q : all_questions)
      out.templates_.push_back(load_prompt_template(folder / template_file_name(q), q));
    return out;
  }

  const PromptTemplate& of(Question q) const { return templates_.at(std::size_t(q)); }

  // AxBench's filling (lm_judge.py, _get_all_ratings_from_data): the concept description, the original
  // instruction, and the steered generation alone as the "sentence".
  std::string prompt(Question q, const GenerationRecord& record) const {
    switch (q) {
      case Question::concept_relevance:
        return of(q).fill({{"concept", record.cell.concept_text}, {"sentence", record.text}});
      case Question::instruction_relevance:
        return of(q).fill({{"instruction", record.instruction}, {"sentence", record.text}});
      case Question::fluency: return of(q).fill({{"sentence", record.text}});
    }
    fail("unknown judge question ", int(q));
  }

 private:
  std::vector<PromptTemplate> templates_;
};

}  // namespace flas::eval::judge
