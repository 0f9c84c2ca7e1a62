// Request validation, steering-spec parsing, streamed text (stop sequences, UTF-8) and the API key
// check: each malformed request class gets its status and a message naming the field.
#include <doctest/doctest.h>

#include <string>

#include "flas/io/tokenizer.hpp"
#include "flas/serve/auth.hpp"
#include "flas/serve/request.hpp"
#include "flas/serve/text_stream.hpp"

using namespace flas;
using namespace flas::serve;

namespace {
const SteeringDefaults with_flow{true, 4.0f, 3};

// The ApiError a body raises (status 0: none).
std::pair<int, std::string> refusal(const std::string& body, Endpoint ep = Endpoint::chat, SteeringDefaults s = with_flow) {
  try {
    parse_completion_request(parse_body(body), ep, s);
  } catch (const ApiError& e) {
    return {e.status(), e.what()};
  }
  return {0, ""};
}
void check_refused(const std::string& body, const std::string& field_in_message, Endpoint ep = Endpoint::chat,
                   SteeringDefaults s = with_flow) {
  const auto [status, message] = refusal(body, ep, s);
  INFO(body, " -> ", status, " ", message);
  CHECK(status == 400);
  CHECK(message.find(field_in_message) != std::string::npos);
}
constexpr const char* hello = R"("messages": [{"role": "user", "content": "hi"}])";
}  // namespace

TEST_CASE("a valid chat request with steering parses with defaults filled in") {
  const auto r = parse_completion_request(
      parse_body(std::string("{") + hello + R"(, "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 11,
                 "stop": ["\n"], "stream": true, "stream_options": {"include_usage": true},
                 "steering": {"concept": "the ocean", "flowtime": 2.5}})"),
      Endpoint::chat, with_flow);
  CHECK(r.messages.size() == 1);
  CHECK(*r.max_tokens == 7);
  CHECK(r.sampling.temperature == doctest::Approx(0.5));
  CHECK(r.sampling.top_p == doctest::Approx(0.9));
  CHECK(r.sampling.seed == 11);
  CHECK(r.stop == std::vector<std::string>{"\n"});
  CHECK(r.stream);
  CHECK(r.include_usage);
  REQUIRE(r.steering);
  CHECK(r.steering->concept_text == "the ocean");
  CHECK(r.steering->flowtime == 2.5f);
  CHECK(r.steering->steps == 3);  // the flow's default
  CHECK(!parse_completion_request(parse_body(std::string("{") + hello + "}"), Endpoint::chat, with_flow).steering);
}

TEST_CASE("each malformed request class is a 400 naming its field") {
  CHECK(refusal("{not json").first == 400);
  CHECK(refusal("{not json").second.find("not valid JSON") != std::string::npos);
  CHECK(refusal("[1, 2]").second.find("JSON object") != std::string::npos);
  check_refused("{}", "messages");
  check_refused(R"({"messages": "hi"})", "messages");
  check_refused(R"({"messages": [{"content": "hi"}]})", "messages[0].role");
  check_refused(R"({"messages": [{"role": "robot", "content": "hi"}]})", "messages[0].role");
  check_refused(R"({"messages": [{"role": "user"}]})", "messages[0].content");
  check_refused(R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content");
  check_refused(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0]");
  check_refused(std::string("{") + hello + R"(, "max_tokens": "ten"})", "max_tokens");
  check_refused(std::string("{") + hello + R"(, "max_tokens": 0})", "max_tokens");
  check_refused(std::string("{") + hello + R"(, "temperature": 3})", "temperature");
  check_refused(std::string("{") + hello + R"(, "temperature": "hot"})", "temperature");
  check_refused(std::string("{") + hello + R"(, "top_p": 0})", "top_p");
  check_refused(std::string("{") + hello + R"(, "seed": -1})", "seed");
  check_refused(std::string("{") + hello + R"(, "n": 2})", "n");
  check_refused(std::string("{") + hello + R"(, "stream": "yes"})", "stream");
  check_refused(std::string("{") + hello + R"(, "stop": ["a", "b", "c", "d", "e"]})", "stop");
  check_refused(std::string("{") + hello + R"(, "stop": [1]})", "stop[0]");
  check_refused(std::string("{") + hello + R"(, "model": 3})", "model");
  check_refused(R"({"prompt": 42})", "prompt", Endpoint::completion);
  check_refused(R"({})", "prompt", Endpoint::completion);
}

TEST_CASE("steering: each malformed field is a 400 naming it") {
  auto with = [](const std::string& steering) { return std::string("{") + hello + R"(, "steering": )" + steering + "}"; };
  check_refused(with(R"("the ocean")"), "steering");
  check_refused(with(R"({})"), "steering.concept");
  check_refused(with(R"({"concept": 3})"), "steering.concept");
  check_refused(with(R"({"concept": "   "})"), "steering.concept");
  check_refused(with(R"({"concept": "x", "flowtime": -1})"), "steering.flowtime");
  check_refused(with(R"({"concept": "x", "flowtime": "strong"})"), "steering.flowtime");
  check_refused(with(R"({"concept": "x", "flowtime": 1000})"), "steering.flowtime");
  check_refused(with(R"({"concept": "x", "steps": 0})"), "steering.steps");
  check_refused(with(R"({"concept": "x", "steps": 2.5})"), "steering.steps");
  check_refused(with(R"({"concept": "x", "strength": 2})"), "steering.strength");
  check_refused(with(R"({"concept": "x"})"), "without a flow", Endpoint::chat, SteeringDefaults{});
  CHECK(refusal(with("null")).first == 0);  // null: unsteered
}

TEST_CASE("chat prompt: one user message is exactly the CLI's template; system folds into the first user turn") {
  CHECK(chat_prompt_text({{"user", "How do I rent a car?"}}) == io::gemma_chat_prompt("How do I rent a car?"));
  CHECK(chat_prompt_text({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}}) ==
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
}

TEST_CASE("streamed text holds back a possible stop sequence and unfinished UTF-8, and ends before a stop") {
  const auto tok = io::Tokenizer::load(std::string(FLAS_PROJECT_MODELS) + "/tiny-gemma2-chat");
  const auto ids = tok.encode("Hello world. The end");
  std::string whole;
  for (auto id : ids) whole += tok.decode_piece(id);
  {
    TextStream s(tok, {});
    std::string out;
    for (auto id : ids) out += s.feed(id);
    CHECK(out + s.flush() == whole);
  }
  {
    TextStream s(tok, {". The"});
    std::string out;
    for (auto id : ids) {
      out += s.feed(id);
      CHECK(out.find('.') == std::string::npos);  // never released before the stop is ruled out
    }
    CHECK(s.stopped());
    CHECK(out + s.flush() == whole.substr(0, whole.find(". The")));
  }
  // "é" is two bytes: the first alone is held back, both together are released.
  const std::string e_acute = "\xC3\xA9";
  CHECK(utf8_complete_end("a\xC3", 0, 2) == 1);
  CHECK(utf8_complete_end("a" + e_acute, 0, 3) == 3);
  CHECK(dump_json(nlohmann::json("\xC3")).size() > 2);  // invalid UTF-8 is replaced, not thrown
}

TEST_CASE("the API key is compared whole, in constant time, after 'Bearer '") {
  CHECK(authorized("", ""));
  CHECK(authorized("anything", ""));
  CHECK(authorized("Bearer s3cret", "s3cret"));
  CHECK(authorized("bearer s3cret", "s3cret"));
  CHECK(!authorized("Bearer s3cre", "s3cret"));
  CHECK(!authorized("Bearer s3cret2", "s3cret"));
  CHECK(!authorized("s3cret", "s3cret"));
  CHECK(!authorized("", "s3cret"));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK(!constant_time_equal("abc", "abd"));
  CHECK(!constant_time_equal("abc", "ab"));
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(!is_loopback_host("0.0.0.0"));
}
