#pragma once
// The LLM judge of the AxBench steering protocol: for every generation it asks three questions
// (concept relevance, instruction relevance, fluency; 3 requests per record), reads each reply as a
// rating in [0, 2] and combines them by a harmonic mean (0 when any is 0). Every rating the judge did
// not give (unreadable reply, HTTP error, timeout, ...) is kept with its reason. Needs flas::http.
#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"
#include "flas/eval/generation_record.hpp"
#include "flas/eval/judge/chat_client.hpp"
#include "flas/eval/judge/rating.hpp"
#include "flas/eval/judge/templates.hpp"
#include "flas/eval/judge/workers.hpp"

namespace flas::eval::judge {

struct JudgeOptions {
  Convention convention = Convention::axbench;  // sets the judge temperature and the unreadable-reply rule
  std::size_t workers = 8;                      // concurrent requests
  int max_tokens = 0;                           // 0: not sent (AxBench sends none)
};

// The judge's verdict on one generation.
struct JudgedRecord {
  std::string cell_key;                // GenerationRecord::cell.key() of the record judged
  std::array<Rating, 3> ratings;       // indexed by Question: concept, instruction, fluency
  std::optional<double> aggregate;     // harmonic mean of the three scores; nullopt when any is dropped
  int http_attempts = 0;               // over the three questions; 0 when all came from the cache

  const Rating& rating(Question q) const { return ratings[std::size_t(q)]; }

  // Every question that has a failure, including axbench's unreadable replies that count as 0.
  std::vector<std::pair<Question, Failure>> failures() const {
    std::vector<std::pair<Question, Failure>> out;
    for (Question q : all_questions)
      if (rating(q).failure) out.emplace_back(q, *rating(q).failure);
    return out;
  }
};

inline void to_json(nlohmann::json& j, const JudgedRecord& r) {
  j = {{"key", r.cell_key},
       {"aggregate", r.aggregate ? nlohmann::json(*r.aggregate) : nlohmann::json(nullptr)},
       {"http_attempts", r.http_attempts}};
  for (Question q : all_questions) j[std::string(to_string(q))] = r.rating(q);
}

inline void from_json(const nlohmann::json& j, JudgedRecord& r) {
  r.cell_key = j.at("key").get<std::string>();
  const auto& aggregate = j.at("aggregate");
  r.aggregate = aggregate.is_null() ? std::nullopt : std::optional<double>(aggregate.get<double>());
  r.http_attempts = j.value("http_attempts", 0);
  for (Question q : all_questions) r.ratings[std::size_t(q)] = j.at(std::string(to_string(q))).get<Rating>();
}

// How many questions failed, by reason, over a batch (for a run's log line).
inline std::map<FailureKind, std::size_t> count_failures(const std::vector<JudgedRecord>& records) {
  std::map<FailureKind, std::size_t> counts;
  for (const JudgedRecord& r : records)
    for (const auto& [question, failure] : r.failures()) ++counts[failure.kind];
  return counts;
}

class Judge {
 public:
  Judge(ChatClientConfig client_config, JudgeTemplates templates, JudgeOptions options = {})
      : client_(std::move(client_config)), templates_(std::move(templates)), options_(options) {
    FLAS_CHECK(options_.workers >= 1, "judge: workers must be >= 1, got 0");
  }

  ChatClient& client() { return client_; }
  const JudgeOptions& options() const { return options_; }

  // AxBench's request (axbench/models/language_models.py, chat_completion): the filled template as the
  // single user message, at the convention's temperature. The sample index keys the cache.
  ChatRequest request_for(Question q, const GenerationRecord& record) const {
    ChatRequest request;
    request.messages = {{"user", templates_.prompt(q, record)}};
    request.temperature = rules_of(options_.convention).judge_temperature;
    request.max_tokens = options_.max_tokens;
    request.sample_index = record.cell.sample;
    return request;
  }

  // Judges every record (3 requests each, all concurrently on `workers` threads). progress(done, total)
  // counts requests: total = 3 * records.size(). It is never called from two threads at once.
  std::vector<JudgedRecord> judge(const std::vector<GenerationRecord>& records, const ProgressCallback& progress = {}) {
    std::vector<ChatRequest> requests;
    requests.reserve(records.size() * all_questions.size());
    for (const GenerationRecord& record : records)
      for (Question q : all_questions) requests.push_back(request_for(q, record));
    const std::vector<ChatResult> answers = client_.complete_all(requests, options_.workers, progress);

    std::vector<JudgedRecord> out(records.size());
    for (std::size_t r = 0; r < records.size(); ++r) {
      JudgedRecord& judged = out[r];
      judged.cell_key = records[r].cell.key();
      std::array<std::optional<double>, 3> scores;
      for (Question q : all_questions) {
        const ChatResult& answer = answers[r * all_questions.size() + std::size_t(q)];
        Rating rating = answer.content ? rate_reply(*answer.content, options_.convention)
                                       : rate_failed_request(*answer.failure);
        if (rating.failure)
          rating.failure->detail = std::string(to_string(q)) + " question for " + describe(records[r]) + ": " +
                                   rating.failure->detail;
        scores[std::size_t(q)] = rating.score;
        judged.ratings[std::size_t(q)] = std::move(rating);
        judged.http_attempts += answer.attempts;
      }
      judged.aggregate = aggregate_scores(scores);
    }
    return out;
  }

 private:
  // Names a record in failure messages without its (long) text.
  static std::string describe(const GenerationRecord& record) {
    return "method " + record.cell.method + ", concept \"" + excerpt(record.cell.concept_text, 60) +
           "\", instruction #" + std::to_string(record.cell.instruction_index) +
           ", factor " + nlohmann::json(record.cell.factor).dump() + ", sample " + std::to_string(record.cell.sample);
  }

  ChatClient client_;
  JudgeTemplates templates_;
  JudgeOptions options_;
};

}  // namespace flas::eval::judge
