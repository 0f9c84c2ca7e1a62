// The LLM judge: AxBench's rating parsing and aggregation on hand-written replies, the templates, and
// the chat client + judge against a real, scripted chat-completions server on 127.0.0.1.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "flas/eval/judge/judge.hpp"

namespace fs = std::filesystem;
using namespace flas::eval;
using namespace flas::eval::judge;
using Clock = std::chrono::steady_clock;

namespace {

const fs::path templates_dir = fs::path(FLAS_PROJECT_DATA) / "eval" / "judge";

fs::path fresh_temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("flas_test_judge_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string completion_body(const std::string& content) {
  return nlohmann::json{{"id", "chatcmpl-test"},
                        {"object", "chat.completion"},
                        {"choices", {{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", content}}},
                                      {"finish_reason", "stop"}}}},
                        {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 5}, {"total_tokens", 15}}}}
      .dump();
}

// A chat-completions endpoint at http://127.0.0.1:<port>/v1 whose answers a test scripts per call.
class FakeJudgeServer {
 public:
  using Script = std::function<void(const httplib::Request&, httplib::Response&, int call_index)>;

  explicit FakeJudgeServer(Script script) : script_(std::move(script)) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      int index;
      {
        std::lock_guard lock(mutex_);
        index = int(bodies_.size());
        bodies_.push_back(nlohmann::json::parse(req.body, nullptr, false));
        authorizations_.push_back(req.get_header_value("Authorization"));
        call_times_.push_back(Clock::now());
      }
      const int now_in_flight = ++in_flight_;
      for (int seen = max_in_flight_.load(); now_in_flight > seen && !max_in_flight_.compare_exchange_weak(seen, now_in_flight);) {
      }
      script_(req, res, index);
      --in_flight_;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeJudgeServer() {
    server_.stop();
    thread_.join();
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int calls() const {
    std::lock_guard lock(mutex_);
    return int(bodies_.size());
  }
  nlohmann::json body(int i) const {
    std::lock_guard lock(mutex_);
    return bodies_.at(std::size_t(i));
  }
  std::string authorization(int i) const {
    std::lock_guard lock(mutex_);
    return authorizations_.at(std::size_t(i));
  }
  double seconds_between_calls(int a, int b) const {
    std::lock_guard lock(mutex_);
    return std::chrono::duration<double>(call_times_.at(std::size_t(b)) - call_times_.at(std::size_t(a))).count();
  }
  int max_in_flight() const { return max_in_flight_.load(); }

 private:
  Script script_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<nlohmann::json> bodies_;
  std::vector<std::string> authorizations_;
  std::vector<Clock::time_point> call_times_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0};
};

// Answers like a judge in AxBench's format: concept 1, instruction 2, fluency 2 (aggregate 1.5).
void answer_by_question(const httplib::Request& req, httplib::Response& res, int) {
  const std::string prompt = nlohmann::json::parse(req.body)["messages"][0]["content"].get<std::string>();
  std::string reply;
  if (prompt.find("[Concept Start]") != std::string::npos)
    reply = "The concept appears, though awkwardly.\n\nRating: [[1]]";
  else if (prompt.find("[Instruction Start]") != std::string::npos)
    reply = "The fragment answers the instruction directly. Rating: [[2]]";
  else
    reply = "Fluent and natural.\nRating: [[2]]";
  res.set_content(completion_body(reply), "application/json");
}

ChatClientConfig test_config(const std::string& base_url) {
  ChatClientConfig config;
  config.base_url = base_url;
  config.model = "judge-test-model";
  config.api_key = "test-key";
  config.timeout_seconds = 2.0;
  config.retry.max_retries = 2;
  config.retry.initial_backoff_seconds = 0.01;
  config.retry.max_backoff_seconds = 0.05;
  return config;
}

GenerationRecord make_record(const std::string& concept_text, const std::string& text, std::int64_t sample = 0) {
  GenerationRecord r;
  r.cell = {"flas", concept_text, 3, 0.5, sample};
  r.split = "held_in";
  r.instruction = "Write a short note about the weather.";
  r.text = text;
  return r;
}

// The value of a score or aggregate that must be present (doctest cannot compare an optional to Approx).
double present(const std::optional<double>& value) {
  REQUIRE(value.has_value());
  return *value;
}

ChatRequest user_request(const std::string& content) {
  ChatRequest request;
  request.messages = {{"user", content}};
  return request;
}

}  // namespace

// ---- rating parsing: AxBench's lm_judge.py _get_rating_from_completion, case by case --------------

TEST_CASE("read_rating: well-formed replies and the cleanup AxBench applies") {
  CHECK(read_rating("The concept is clearly present.\n\nRating: [[2]]").value == 2.0);
  CHECK(read_rating("Rating: [[0]]").value == 0.0);
  CHECK(read_rating("  Rating: [[1]]  \n").value == 1.0);  // surrounding whitespace is stripped
  CHECK(read_rating("Rating: 2").value == 2.0);            // brackets are optional
  CHECK(read_rating("Rating: [[1]].").value == 1.0);       // trailing '.' removed
  CHECK(read_rating("**Rating: [[1]]**").value == 1.0);    // '*' stripped after the brackets go
  CHECK(read_rating("Rating: \"[[1]]\".").value == 1.0);   // '.' then '"' stripped
  CHECK(read_rating("Rating:\n[[2]]").value == 2.0);       // stripped before taking the first line
  CHECK(read_rating("Rating: [[ 2 ]]").value == 2.0);      // whitespace inside the brackets
  CHECK(read_rating("Rating: [[1.5]]").value == 1.5);      // a float in range is kept as is
  CHECK(read_rating("Rating: **[[1]].**").value == 1.0);   // leaves "1.", which Python's float reads
  CHECK(read_rating("Rating: [[2]]\nThe fragment reads well.").value == 2.0);  // later lines ignored
  CHECK(!read_rating("Rating: [[2]]").failure);
}

TEST_CASE("read_rating: replies AxBench cannot read become failures, never silent numbers") {
  // No "Rating:" at all (the marker is case-sensitive): AxBench logs "Cannot find rating value".
  for (const char* reply : {"I would rate this a 2.", "rating: [[2]]", "RATING: 2", ""}) {
    const ReplyReading r = read_rating(reply);
    CHECK_MESSAGE(!r.value, reply);
    REQUIRE(r.failure);
    CHECK(r.failure->kind == FailureKind::unparsable_reply);
  }
  // Text after the rating on the same line, the template's own placeholder, two numbers: float() raises.
  for (const char* reply : {"Rating: [[2]] because it is fluent.", "Rating: [[score]]", "Rating: [[1]] [[2]]",
                            "Rating: two", "Rating: [[0x1]]", "Rating:"}) {
    const ReplyReading r = read_rating(reply);
    CHECK_MESSAGE(!r.value, reply);
    REQUIRE(r.failure);
    CHECK(r.failure->kind == FailureKind::unparsable_reply);
  }
}

TEST_CASE("read_rating: numbers outside [0, 2] are rejected as AxBench does") {
  // AxBench: `min_rating <= rating <= max_rating` else DEFAULT_RATING; NaN fails the comparison.
  // "1_0" is 10 for Python's float() (PEP 515 underscores), hence out of range, not unreadable.
  for (const char* reply : {"Rating: [[3]]", "Rating: [[-1]]", "Rating: [[2.5]]", "Rating: [[10]]",
                            "Rating: [[nan]]", "Rating: [[inf]]", "Rating: [[1_0]]", "Rating: [[1e9]]"}) {
    const ReplyReading r = read_rating(reply);
    CHECK_MESSAGE(!r.value, reply);
    REQUIRE(r.failure);
    CHECK_MESSAGE(r.failure->kind == FailureKind::rating_out_of_range, reply);
  }
}

TEST_CASE("read_rating: with several ratings the LAST \"Rating:\" wins") {
  // AxBench: completion.split("Rating:")[-1].
  CHECK(read_rating("Rating: [[0]]. On reflection the concept is there.\nRating: [[2]]").value == 2.0);
  CHECK(read_rating("Rating: [[2]]\nRating: [[1]]").value == 1.0);
  // The last one is unreadable: the earlier, readable one is not used.
  CHECK(read_rating("Rating: [[2]]\nRating: [[high]]").failure->kind == FailureKind::unparsable_reply);
}

TEST_CASE("python_float accepts exactly what Python's float() accepts on ASCII") {
  using flas::eval::judge::detail::python_float;
  CHECK(python_float("1.") == 1.0);
  CHECK(python_float(".5") == 0.5);
  CHECK(python_float("+2") == 2.0);
  CHECK(python_float(" 2 ") == 2.0);
  CHECK(python_float("1e0") == 1.0);
  CHECK(python_float("1_0") == 10.0);
  CHECK(std::isinf(*python_float("-Infinity")));
  CHECK(std::isnan(*python_float("NaN")));
  for (const char* bad : {"", ".", "1__0", "_1", "1_", "0x1", "1e", "e5", "1 2", "--1", "1.2.3"})
    CHECK_MESSAGE(!python_float(bad), bad);
}

TEST_CASE("conventions: axbench counts an unreadable reply as 0, flas_paper drops it; both record it") {
  CHECK(rules_of(Convention::axbench).judge_temperature == 1.0);
  CHECK(rules_of(Convention::flas_paper).judge_temperature == 0.0);
  CHECK(convention_from_string("flas_paper") == Convention::flas_paper);
  CHECK_THROWS_WITH_AS(convention_from_string("paper"), doctest::Contains("axbench, flas_paper"), flas::Error);

  const Rating axb = rate_reply("no rating here", Convention::axbench);
  CHECK(axb.score == 0.0);
  REQUIRE(axb.failure);
  CHECK(axb.failure->kind == FailureKind::unparsable_reply);
  CHECK(axb.reply == "no rating here");

  const Rating paper = rate_reply("no rating here", Convention::flas_paper);
  CHECK(!paper.score);
  REQUIRE(paper.failure);
  CHECK(paper.failure->kind == FailureKind::unparsable_reply);

  for (Convention c : {Convention::axbench, Convention::flas_paper}) {
    const Rating good = rate_reply("Rating: [[2]]", c);
    CHECK(good.score == 2.0);
    CHECK(!good.failure);
    // A request without an answer has no score in either convention.
    const Rating lost = rate_failed_request({FailureKind::timeout, "slow"});
    CHECK(!lost.score);
    CHECK(lost.failure->kind == FailureKind::timeout);
  }
  // Out of range is treated like unreadable: 0 under axbench, dropped under flas_paper.
  CHECK(rate_reply("Rating: [[7]]", Convention::axbench).score == 0.0);
  CHECK(!rate_reply("Rating: [[7]]", Convention::flas_paper).score);
}

TEST_CASE("harmonic mean: hand-computed values, 0 when any rating is 0, dropped when any is missing") {
  const std::vector<double> all_two{2, 2, 2}, mixed{1, 2, 2}, ones{1, 1, 2}, halves{1.5, 2, 1}, with_zero{0, 2, 2};
  CHECK(harmonic_mean(all_two) == doctest::Approx(2.0));
  CHECK(harmonic_mean(mixed) == doctest::Approx(1.5));          // 3 / (1 + 1/2 + 1/2)
  CHECK(harmonic_mean(ones) == doctest::Approx(1.2));           // 3 / (1 + 1 + 1/2)
  CHECK(harmonic_mean(halves) == doctest::Approx(18.0 / 13.0)); // 3 / (2/3 + 1/2 + 1)
  CHECK(harmonic_mean(with_zero) == 0.0);
  CHECK_THROWS_AS(harmonic_mean(std::vector<double>{}), flas::Error);

  CHECK(present(aggregate_scores({1.0, 2.0, 2.0})) == doctest::Approx(1.5));
  CHECK(!aggregate_scores({1.0, std::nullopt, 2.0}));

  // The same judge replies under both conventions: concept unreadable, instruction 2, fluency 1.
  for (Convention c : {Convention::axbench, Convention::flas_paper}) {
    const std::array<std::optional<double>, 3> scores{rate_reply("hmm", c).score, rate_reply("Rating: [[2]]", c).score,
                                                      rate_reply("Rating: [[1]]", c).score};
    if (c == Convention::axbench) CHECK(aggregate_scores(scores) == 0.0);  // counted, as 0
    else CHECK(!aggregate_scores(scores));                                 // left out of means
  }
  // All readable: identical under both. 3 / (1/2 + 1/2 + 1) = 1.5.
  for (Convention c : {Convention::axbench, Convention::flas_paper})
    CHECK(present(aggregate_scores({rate_reply("Rating: [[2]]", c).score, rate_reply("Rating: [[2]]", c).score,
                                    rate_reply("Rating: [[1]]", c).score})) == doctest::Approx(1.5));
}

// ---- templates -----------------------------------------------------------------------------------

TEST_CASE("templates: the AxBench files load, name their source and fill in one pass") {
  const JudgeTemplates templates = JudgeTemplates::load(templates_dir);
  for (Question q : all_questions) CHECK(templates.of(q).source().find("stanfordnlp/axbench") != std::string::npos);
  CHECK(templates.of(Question::fluency).placeholders() == std::set<std::string>{"sentence"});

  const GenerationRecord record = make_record("rainy weather", "It pours {concept} all day.");
  const std::string concept_prompt = templates.prompt(Question::concept_relevance, record);
  CHECK(concept_prompt.starts_with("[System]\nPlease act as an impartial judge"));
  CHECK(concept_prompt.find("# source") == std::string::npos);
  CHECK(concept_prompt.find("[Concept Start]\nrainy weather\n[Concept End]") != std::string::npos);
  // The text's own "{concept}" is not substituted again (Python's format does one pass too).
  CHECK(concept_prompt.find("[Sentence Fragment Start]\nIt pours {concept} all day.\n[Sentence Fragment End]\n") !=
        std::string::npos);
  const std::string instruction_prompt = templates.prompt(Question::instruction_relevance, record);
  CHECK(instruction_prompt.find("[Instruction Start]\nWrite a short note about the weather.\n[Instruction End]") !=
        std::string::npos);

  const PromptTemplate braces("inline", "test", "{{literal}} {name} }}");
  CHECK(braces.fill({{"name", "x"}}) == "{literal} x }");
  CHECK_THROWS_WITH_AS(braces.fill({}), doctest::Contains("no value given for placeholder {name}"), flas::Error);
  CHECK_THROWS_WITH_AS(braces.fill({{"name", "x"}, {"other", "y"}}), doctest::Contains("{other}"), flas::Error);
  CHECK_THROWS_WITH_AS(PromptTemplate("inline", "test", "a { b"), doctest::Contains("not closed"), flas::Error);
  CHECK_THROWS_WITH_AS(PromptTemplate("inline", "test", "a {b c} d"), doctest::Contains("not a placeholder"),
                       flas::Error);
}

TEST_CASE("templates: errors name the file and what is missing") {
  const fs::path dir = fresh_temp_dir("templates");
  for (Question q : all_questions) fs::copy_file(templates_dir / template_file_name(q), dir / template_file_name(q));
  {
    std::ofstream(dir / "fluency.txt") << "# source: test\nRate this: {text}\n";
  }
  CHECK_THROWS_WITH_AS(JudgeTemplates::load(dir), doctest::Contains("fluency.txt (fluency question): missing placeholder {sentence}"),
                       flas::Error);
  {
    std::ofstream(dir / "fluency.txt") << "Rate this: {sentence}\n";
  }
  CHECK_THROWS_WITH_AS(JudgeTemplates::load(dir), doctest::Contains("first line must name the template's source"),
                       flas::Error);
  {
    std::ofstream(dir / "fluency.txt") << "# source: test\n{sentence} in {instruction}\n";
  }
  CHECK_THROWS_WITH_AS(JudgeTemplates::load(dir), doctest::Contains("unknown placeholder {instruction}"), flas::Error);
  fs::remove(dir / "concept.txt");
  CHECK_THROWS_WITH_AS(JudgeTemplates::load(dir), doctest::Contains("concept.txt (concept question): cannot open"),
                       flas::Error);
  CHECK_THROWS_WITH_AS(JudgeTemplates::load(dir / "nope"), doctest::Contains("does not exist"), flas::Error);
  fs::remove_all(dir);
}

// ---- the judge against a real server -------------------------------------------------------------

TEST_CASE("judge: request body, Authorization, temperature per convention, ratings and progress") {
  FakeJudgeServer server(answer_by_question);
  const JudgeTemplates templates = JudgeTemplates::load(templates_dir);
  const std::vector<GenerationRecord> records = {make_record("rainy weather", "Rain falls softly."),
                                                 make_record("rainy weather", "Clouds gather.", 1)};
  for (Convention convention : {Convention::axbench, Convention::flas_paper}) {
    const int calls_before = server.calls();
    Judge judge(test_config(server.base_url()), templates, {convention, 2, 256});
    std::vector<std::pair<std::size_t, std::size_t>> progress;
    const std::vector<JudgedRecord> judged =
        judge.judge(records, [&](std::size_t done, std::size_t total) { progress.emplace_back(done, total); });

    REQUIRE(server.calls() - calls_before == 6);
    for (int i = calls_before; i < server.calls(); ++i) {
      const nlohmann::json body = server.body(i);
      CHECK(body["model"] == "judge-test-model");
      CHECK(body["temperature"].get<double>() == rules_of(convention).judge_temperature);
      CHECK(body["max_tokens"] == 256);
      REQUIRE(body["messages"].size() == 1);
      CHECK(body["messages"][0]["role"] == "user");
      CHECK(server.authorization(i) == "Bearer test-key");
    }
    // The messages are exactly the filled templates (in some order: the workers run concurrently).
    std::set<std::string> sent;
    for (int i = calls_before; i < server.calls(); ++i) sent.insert(server.body(i)["messages"][0]["content"]);
    for (const GenerationRecord& r : records)
      for (Question q : all_questions) CHECK(sent.count(templates.prompt(q, r)) == 1);

    REQUIRE(judged.size() == 2);
    for (std::size_t i = 0; i < judged.size(); ++i) {
      CHECK(judged[i].cell_key == records[i].cell.key());
      CHECK(judged[i].rating(Question::concept_relevance).score == 1.0);
      CHECK(judged[i].rating(Question::instruction_relevance).score == 2.0);
      CHECK(judged[i].rating(Question::fluency).score == 2.0);
      CHECK(present(judged[i].aggregate) == doctest::Approx(1.5));
      CHECK(judged[i].failures().empty());
    }
    REQUIRE(progress.size() == 6);
    for (std::size_t i = 0; i < progress.size(); ++i) CHECK(progress[i] == std::pair<std::size_t, std::size_t>{i + 1, 6});

    const nlohmann::json j = judged[0];  // JSON round trip for the CLI's output file
    CHECK(j.get<JudgedRecord>().aggregate == judged[0].aggregate);
  }
}

TEST_CASE("client: 429 is retried, honouring Retry-After, then succeeds") {
  FakeJudgeServer server([](const httplib::Request&, httplib::Response& res, int call) {
    if (call == 0) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content("{\"error\": \"rate limited\"}", "application/json");
    } else {
      res.set_content(completion_body("Rating: [[2]]"), "application/json");
    }
  });
  ChatClient client(test_config(server.base_url()));
  const ChatResult result = client.complete(user_request("hello"));
  CHECK(result.content == "Rating: [[2]]");
  CHECK(!result.failure);
  CHECK(result.attempts == 2);
  REQUIRE(server.calls() == 2);
  CHECK(server.seconds_between_calls(0, 1) >= 0.95);  // waited the server's 1 s, not the 10 ms back-off
}

TEST_CASE("client: without Retry-After the waits grow exponentially") {
  FakeJudgeServer server([](const httplib::Request&, httplib::Response& res, int call) {
    if (call < 2) {
      res.status = call == 0 ? 429 : 503;
      res.set_content("busy", "text/plain");
    } else {
      res.set_content(completion_body("Rating: [[1]]"), "application/json");
    }
  });
  ChatClientConfig config = test_config(server.base_url());
  config.retry.initial_backoff_seconds = 0.1;
  config.retry.max_backoff_seconds = 1.0;
  config.retry.jitter_fraction = 0.0;
  ChatClient client(config);
  const ChatResult result = client.complete(user_request("hello"));
  CHECK(result.content == "Rating: [[1]]");
  CHECK(result.attempts == 3);
  CHECK(server.seconds_between_calls(0, 1) >= 0.095);  // 0.1 s
  CHECK(server.seconds_between_calls(1, 2) >= 0.195);  // 0.2 s
  CHECK(server.seconds_between_calls(1, 2) < 1.0);
}

TEST_CASE("client: 500 forever is a recorded failure after the retries, in the judge too") {
  FakeJudgeServer server([](const httplib::Request&, httplib::Response& res, int) {
    res.status = 500;
    res.set_content("internal trouble", "text/plain");
  });
  ChatClient client(test_config(server.base_url()));
  const ChatResult result = client.complete(user_request("hello"));
  CHECK(!result.content);
  REQUIRE(result.failure);
  CHECK(result.failure->kind == FailureKind::http_error);
  CHECK(result.failure->detail.find("HTTP 500") != std::string::npos);
  CHECK(result.failure->detail.find("internal trouble") != std::string::npos);
  CHECK(result.failure->detail.find("after 3 attempts") != std::string::npos);
  CHECK(server.calls() == 3);  // 1 + max_retries

  for (Convention c : {Convention::axbench, Convention::flas_paper}) {
    Judge judge(test_config(server.base_url()), JudgeTemplates::load(templates_dir), {c, 3, 0});
    const std::vector<JudgedRecord> judged = judge.judge({make_record("rain", "Rain.")});
    CHECK(!judged[0].aggregate);  // no answer is never a 0, in either convention
    CHECK(judged[0].failures().size() == 3);
    CHECK(count_failures(judged).at(FailureKind::http_error) == 3);
    CHECK(judged[0].failures()[0].second.detail.find("concept question for method flas") != std::string::npos);
  }
}

TEST_CASE("client: other 4xx are not retried and name the status and body") {
  FakeJudgeServer server([](const httplib::Request&, httplib::Response& res, int) {
    res.status = 401;
    res.set_content("{\"error\": {\"message\": \"Incorrect API key provided\"}}", "application/json");
  });
  ChatClient client(test_config(server.base_url()));
  const ChatResult result = client.complete(user_request("hello"));
  REQUIRE(result.failure);
  CHECK(result.failure->kind == FailureKind::http_error);
  CHECK(result.failure->detail.find("HTTP 401") != std::string::npos);
  CHECK(result.failure->detail.find("Incorrect API key") != std::string::npos);
  CHECK(server.calls() == 1);
}

TEST_CASE("client: garbage answers are recorded failures, not crashes") {
  const std::vector<std::string> garbage = {"<html>Bad gateway</html>", "{\"id\": \"x\"}", "{\"choices\": []}",
                                            "{\"choices\": [{\"message\": {\"content\": null}}]}", "[1, 2]", ""};
  FakeJudgeServer server([&](const httplib::Request&, httplib::Response& res, int call) {
    res.set_content(garbage.at(std::size_t(call)), "application/json");
  });
  ChatClient client(test_config(server.base_url()));
  for (const std::string& body : garbage) {
    const ChatResult result = client.complete(user_request("garbage " + body));
    CHECK_MESSAGE(!result.content, body);
    REQUIRE(result.failure);
    CHECK(result.failure->kind == FailureKind::malformed_response);
  }
  CHECK(server.calls() == int(garbage.size()));  // not retried, and not cached: a re-run asks again
  CHECK(client.cached_answers() == 0);
}

TEST_CASE("client: a server slower than the timeout is a recorded timeout") {
  FakeJudgeServer server([](const httplib::Request&, httplib::Response& res, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    res.set_content(completion_body("Rating: [[2]]"), "application/json");
  });
  ChatClientConfig config = test_config(server.base_url());
  config.timeout_seconds = 0.2;
  config.retry.max_retries = 1;
  ChatClient client(config);
  const auto start = Clock::now();
  const ChatResult result = client.complete(user_request("hello"));
  // Two attempts that waited for the server would take 1.4 s: giving up well before that shows the
  // timeout fired (the bound leaves room for a loaded machine).
  CHECK(std::chrono::duration<double>(Clock::now() - start).count() < 1.3);
  REQUIRE(result.failure);
  CHECK(result.failure->kind == FailureKind::timeout);
  CHECK(result.attempts == 2);
}

TEST_CASE("client: nobody listening is a recorded connection error") {
  std::string dead_url;
  {
    FakeJudgeServer gone(answer_by_question);
    dead_url = gone.base_url();
  }
  ChatClient client(test_config(dead_url));
  const ChatResult result = client.complete(user_request("hello"));
  REQUIRE(result.failure);
  CHECK(result.failure->kind == FailureKind::connection_error);
  CHECK(result.attempts == 3);
  CHECK_THROWS_WITH_AS(ChatClient(test_config("ftp://example.org")), doctest::Contains("not http or https"),
                       flas::Error);
}

TEST_CASE("cache: a second run makes no HTTP call; a changed request makes a new one") {
  const fs::path dir = fresh_temp_dir("cache");
  const fs::path cache_file = dir / "judge_cache.jsonl";
  // Each answer takes 20 ms, so concurrent workers overlap at the server even on a loaded machine.
  FakeJudgeServer server([](const httplib::Request& req, httplib::Response& res, int call) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    answer_by_question(req, res, call);
  });
  ChatClientConfig config = test_config(server.base_url());
  config.cache_path = cache_file;
  const JudgeTemplates templates = JudgeTemplates::load(templates_dir);
  std::vector<GenerationRecord> records;
  for (int i = 0; i < 20; ++i) records.push_back(make_record("rain", "Rain number " + std::to_string(i) + "."));

  std::vector<JudgedRecord> first;
  {
    Judge judge(config, templates, {Convention::axbench, 4, 0});
    first = judge.judge(records);
  }
  CHECK(server.calls() == 60);
  CHECK(server.max_in_flight() >= 2);  // the workers really ran concurrently
  CHECK(server.max_in_flight() <= 4);

  {
    Judge again(config, templates, {Convention::axbench, 4, 0});  // a new process: the cache is re-read
    CHECK(again.client().cached_answers() == 60);
    const std::vector<JudgedRecord> second = again.judge(records);
    CHECK(server.calls() == 60);  // zero new calls
    for (std::size_t i = 0; i < records.size(); ++i) {
      CHECK(second[i].aggregate == first[i].aggregate);
      CHECK(second[i].http_attempts == 0);
    }
    // A changed text, sample index or convention is a different request.
    std::vector<GenerationRecord> changed = {records[0], records[1]};
    changed[0].text += " And more.";
    changed[1].cell.sample = 7;
    again.judge(changed);
    CHECK(server.calls() == 66);
  }
  {
    Judge greedy(config, templates, {Convention::flas_paper, 4, 0});
    greedy.judge({records[0]});
    CHECK(server.calls() == 69);  // temperature 0 is not the temperature-1 answer
  }

  // A crash mid-write leaves a partial last line: it is cut off with a warning, and later entries and
  // loads are clean.
  { std::ofstream(cache_file, std::ios::app) << "{\"key\": \"abc\", \"cont"; }
  {
    ResponseCache cache(cache_file);
    CHECK(cache.size() == 69);
    cache.store("new-key", "Rating: [[1]]");
  }
  {
    ResponseCache cache(cache_file);
    CHECK(cache.size() == 70);
    CHECK(cache.find("new-key") == "Rating: [[1]]");
  }
  // A complete last entry that only lacks its newline is kept, and the next entry gets its own line.
  { std::ofstream(cache_file, std::ios::app) << "{\"key\": \"k2\", \"content\": \"c2\"}"; }
  {
    ResponseCache cache(cache_file);
    CHECK(cache.find("k2") == "c2");
    cache.store("k3", "c3");
  }
  CHECK(ResponseCache(cache_file).size() == 72);
  // A broken line that is not the last one is an error naming the file and line.
  { std::ofstream(cache_file, std::ios::app) << "not json\n{\"key\": \"k\", \"content\": \"c\"}\n"; }
  CHECK_THROWS_WITH_AS(ResponseCache{cache_file}, doctest::Contains("judge_cache.jsonl:73"), flas::Error);
  fs::remove_all(dir);
}

TEST_CASE("run_with_workers: every index once, serialized progress, first exception rethrown") {
  std::vector<std::atomic<int>> seen(50);
  std::size_t last_done = 0;
  bool ordered = true;
  run_with_workers(
      50, 4, [&](std::size_t i) { ++seen[i]; },
      [&](std::size_t done, std::size_t total) {
        ordered = ordered && done == last_done + 1 && total == 50;
        last_done = done;
      });
  CHECK(ordered);
  CHECK(last_done == 50);
  for (auto& s : seen) CHECK(s == 1);
  CHECK_THROWS_WITH_AS(run_with_workers(10, 3, [](std::size_t i) { if (i == 4) flas::fail("task 4 broke"); }),
                       doctest::Contains("task 4 broke"), flas::Error);
  run_with_workers(0, 2, [](std::size_t) { FAIL("no task expected"); });
}

TEST_CASE("config from the environment") {
  ::setenv("FLAS_JUDGE_BASE_URL", "http://127.0.0.1:9/v1", 1);
  ::setenv("FLAS_JUDGE_MODEL", "env-model", 1);
  ::unsetenv("FLAS_JUDGE_API_KEY");
  ::setenv("OPENAI_API_KEY", "openai-key", 1);
  ChatClientConfig config = ChatClientConfig::from_environment();
  CHECK(config.base_url == "http://127.0.0.1:9/v1");
  CHECK(config.model == "env-model");
  CHECK(config.api_key == "openai-key");
  ::setenv("FLAS_JUDGE_API_KEY", "judge-key", 1);
  CHECK(ChatClientConfig::from_environment().api_key == "judge-key");
  ::unsetenv("FLAS_JUDGE_API_KEY");
  ::unsetenv("OPENAI_API_KEY");
  CHECK_THROWS_WITH_AS(ChatClientConfig::from_environment(), doctest::Contains("FLAS_JUDGE_API_KEY"), flas::Error);
  CHECK(ChatClientConfig::from_environment(false).api_key.empty());
  ::unsetenv("FLAS_JUDGE_BASE_URL");
  ::unsetenv("FLAS_JUDGE_MODEL");
}
