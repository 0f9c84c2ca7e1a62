// flas distill: FLAS training rows for concepts without labelled data, by prompt distillation
// (include/flas/eval/prompt_distillation.hpp): replies written with the concept in the prompt, kept
// when the concept request explains them, written as AxBench rows for `flas train --data`.
#include <cstdio>
#include <fstream>
#include <set>

#include "commands.hpp"
#include "flas/eval/labelled_rows.hpp"
#include "flas/eval/prompt_distillation.hpp"
#include "flas/io/atomic_write.hpp"

namespace flas::cli {

namespace {
struct DistillArgs {
  std::string model_dir, concepts_file, instructions_file = "data/alpaca_eval.json", out;
  std::vector<std::string> exclude;
  std::int64_t first_instruction = 200, instruction_count = 200, max_concepts = 0;
  eval::DistillOptions opt;
  bool quiet = false;
};

void run_distill(DistillArgs a) {
  const auto model = gemma2::Model<HostBackend>::load(a.model_dir);
  const auto tok = io::Tokenizer::load(a.model_dir);
  std::set<std::string> excluded;  // concepts of the given labelled files (training and evaluation concepts)
  for (const auto& f : a.exclude)
    for (const auto& r : eval::load_labelled_rows(std::filesystem::path(f)))
      if (!r.concept_text.empty()) excluded.insert(r.concept_text);
  std::ifstream in(a.concepts_file);
  FLAS_CHECK(in, a.concepts_file, ": cannot open the concept list");
  std::string line;
  for (std::int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail(a.concepts_file, ":", n, ": not valid JSON (", e.what(), ")");
    }
    FLAS_CHECK(j.contains("concept") && j["concept"].is_string(), a.concepts_file, ":", n, ": no string field 'concept'");
    const auto c = j["concept"].get<std::string>();
    if (!excluded.count(c) && (a.max_concepts == 0 || std::int64_t(a.opt.concepts.size()) < a.max_concepts))
      a.opt.concepts.push_back(c);
  }
  eval::EvalConfig icfg;
  icfg.instructions_file = a.instructions_file;
  icfg.first_instruction = a.first_instruction;
  icfg.instruction_count = a.instruction_count;
  a.opt.instructions = eval::load_instructions(icfg);
  std::fprintf(stderr, "[flas distill] %zu concepts (%zu excluded), %zu instructions, %lld replies each\n",
               a.opt.concepts.size(), excluded.size(), a.opt.instructions.size(), static_cast<long long>(a.opt.per_concept));
  const auto rows = eval::distil_concepts(model, tok, a.opt, !a.quiet);
  const std::string text = eval::distilled_jsonl(rows);
  io::write_text_atomically(a.out, text);
  std::size_t kept = 0;
  for (const auto& r : rows) kept += r.kept;
  std::printf("[flas distill] kept %zu of %zu replies (concept gain >= %.2f nats/token, repetition <= %.2f) -> %s\n", kept,
              rows.size(), a.opt.min_gain, a.opt.max_repetition, a.out.c_str());
}
}  // namespace

void add_distill(CLI::App& app) {
  auto a = std::make_shared<DistillArgs>();
  auto* cmd = app.add_subcommand("distill", "Training rows for concepts without data, by prompt distillation");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--concepts", a->concepts_file, "Concept list (JSON Lines with a 'concept' field, e.g. AxBench metadata)")->required();
  cmd->add_option("--exclude", a->exclude, "AxBench rows whose concepts are left out (training and evaluation concepts)");
  cmd->add_option("--instructions", a->instructions_file, "AlpacaEval JSON")->capture_default_str();
  cmd->add_option("--first-instruction", a->first_instruction, "First instruction of the pool")->capture_default_str();
  cmd->add_option("--instruction-count", a->instruction_count, "Size of the pool")->capture_default_str();
  cmd->add_option("--per-concept", a->opt.per_concept, "Replies per concept")->capture_default_str();
  cmd->add_option("--max-concepts", a->max_concepts, "At most this many concepts (0: all)")->capture_default_str();
  cmd->add_option("--max-new-tokens", a->opt.max_new_tokens, "Reply length")->capture_default_str();
  cmd->add_option("--min-gain", a->opt.min_gain, "Keep replies whose concept gain (nats/token) reaches this")->capture_default_str();
  cmd->add_option("--max-repetition", a->opt.max_repetition, "Drop replies with more repeated 4-grams")->capture_default_str();
  cmd->add_option("--out", a->out, "Output JSON Lines (AxBench format)")->required();
  cmd->add_flag("--quiet", a->quiet, "No progress bar");
  cmd->callback([a] { run_distill(*a); });
}

}  // namespace flas::cli
