// Request parsing and validation, chat rendering and the response shapes.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "server/api_error.h"
#include "server/prompt.h"
#include "server/request.h"
#include "server/responses.h"
#include "server/server.h"

namespace aviary::server {
namespace {

using nlohmann::json;

constexpr int32_t kVocab = 65536;

// The ApiError a parse throws (status and param), or status 0.
std::pair<int, std::string> parse_error(const json& body, bool chat = false) {
  try {
    chat ? parse_chat_request(body, kVocab, 1) : parse_completion_request(body, kVocab, 1);
  } catch (const ApiError& e) {
    return {e.status(), e.param()};
  }
  return {0, ""};
}

TEST(ServerRequest, CompletionFieldsAndDefaults) {
  const ApiRequest r = parse_completion_request(
      json::parse(R"({"model":"m","prompt":"Hi","max_tokens":5,"temperature":0.5,"top_p":0.9,"top_k":3,
                     "presence_penalty":0.1,"frequency_penalty":0.2,"penalty_decay":0.99,"stop":["a","bc"],
                     "seed":42,"logit_bias":{"11":-100,"12":2.5},"stream":true,
                     "stream_options":{"include_usage":true}})"),
      kVocab, 7);
  EXPECT_FALSE(r.chat);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_EQ(r.gen.max_tokens, 5);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(r.gen.sampling.penalty_decay, 0.99f);
  EXPECT_EQ(r.gen.sampling.seed, 42u);
  EXPECT_EQ(r.gen.stop_strings, (std::vector<std::string>{"a", "bc"}));
  ASSERT_EQ(r.gen.logit_bias.size(), 2u);
  EXPECT_EQ(r.gen.logit_bias[0].first, 11);
  EXPECT_FLOAT_EQ(r.gen.logit_bias[0].second, -100.f);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);

  const ApiRequest d = parse_completion_request(json::parse(R"({"prompt":[1,2,3]})"), kVocab, 7);
  EXPECT_EQ(d.gen.max_tokens, kDefaultCompletionMaxTokens);
  EXPECT_EQ(d.gen.sampling.seed, 7u);  // the random seed when none is given
  EXPECT_TRUE(d.prompt_ids_given);
  EXPECT_EQ(d.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
}

TEST(ServerRequest, ChatFields) {
  const ApiRequest r = parse_chat_request(
      json::parse(R"({"messages":[{"role":"system","content":"Be brief."},
                                  {"role":"user","content":[{"type":"text","text":"Hi"}]}],
                     "reasoning_effort":"high"})"),
      kVocab, 1);
  EXPECT_TRUE(r.chat);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "Hi");
  EXPECT_EQ(r.think, ThinkMode::On);
  EXPECT_EQ(r.think_length, ThinkLength::Long);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, chat_sampler_defaults().top_p);
  EXPECT_EQ(r.gen.stop_strings.back(), "\n\n");
  EXPECT_EQ(parse_chat_request(json::parse(R"({"messages":[{"role":"user","content":"x"}],"think":false})"), kVocab, 1)
                .think,
            ThinkMode::Off);
}

TEST(ServerRequest, BadInputNamesTheParameter) {
  EXPECT_EQ(parse_error(json::parse(R"([1,2])")).first, 400);
  EXPECT_EQ(parse_error(json::parse(R"({})")), (std::pair<int, std::string>{400, "prompt"}));
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","max_tokens":"5"})")).second, "max_tokens");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","max_tokens":-1})")).second, "max_tokens");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","temperature":3})")).second, "temperature");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","top_p":"a"})")).second, "top_p");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","stream":1})")).second, "stream");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","stop":[""]})")).second, "stop");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","stop":5})")).second, "stop");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","seed":1.5})")).second, "seed");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","n":2})")).second, "n");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","logit_bias":{"abc":1}})")).second, "logit_bias");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","logit_bias":{"70000":1}})")).second, "logit_bias");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","logit_bias":{"5":500}})")).second, "logit_bias");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":[1,70000]})")).second, "prompt");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":{"a":1}})")).second, "prompt");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"x","model":5})")).second, "model");
  EXPECT_EQ(parse_error(json::parse(R"({"messages":"hi"})"), true).second, "messages");
  EXPECT_EQ(parse_error(json::parse(R"({"messages":[]})"), true).second, "messages");
  EXPECT_EQ(parse_error(json::parse(R"({"messages":[{"role":"robot","content":"x"}]})"), true).second, "messages");
  EXPECT_EQ(parse_error(json::parse(R"({"messages":[{"role":"assistant","content":"x"}]})"), true).second,
            "messages");
  EXPECT_EQ(parse_error(json::parse(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"})"), true)
                .second,
            "reasoning_effort");
  EXPECT_EQ(parse_error(json::parse(R"({"prompt":"ok","max_tokens":3})")).first, 0);
}

TEST(ServerRequest, ErrorJsonHasOpenAIShape) {
  const json e = ApiError(404, "no such model", "model", "model_not_found").to_json();
  EXPECT_EQ(e["error"]["message"], "no such model");
  EXPECT_EQ(e["error"]["type"], "not_found_error");
  EXPECT_EQ(e["error"]["param"], "model");
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_TRUE(ApiError(400, "x").to_json()["error"]["param"].is_null());
  EXPECT_EQ(ApiError(429, "x").type(), "rate_limit_error");
  EXPECT_EQ(ApiError(401, "x").type(), "authentication_error");
}

ApiRequest chat_of(const char* body) { return parse_chat_request(json::parse(body), kVocab, 1); }

TEST(ServerChatPrompt, RendersTheOfficialFormat) {
  const ApiRequest r = chat_of(R"({"messages":[{"role":"system","content":" Be\n\n\nbrief. "},
      {"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"More\r\n"}]})");
  const std::vector<std::string> s = render_chat_segments(r);
  EXPECT_EQ(s, (std::vector<std::string>{"System: Be\nbrief.\n\n", "User: Hi\n\n", "Assistant: Hello!\n\n",
                                         "User: More\n\n", "Assistant:"}));
  // The last user turn plus "Assistant:" is exactly the official turn text.
  EXPECT_EQ(s[3] + s[4], user_turn_text("More", ThinkMode::Plain, ThinkLength::Unspecified));
}

TEST(ServerChatPrompt, ThinkingPrefixAndHint) {
  const ApiRequest on = chat_of(R"({"messages":[{"role":"user","content":"Q"}],"reasoning_effort":"low"})");
  const std::vector<std::string> s = render_chat_segments(on);
  EXPECT_EQ(s[0] + s[1], user_turn_text("Q", ThinkMode::On, ThinkLength::Short));
  EXPECT_EQ(s[1], "Assistant: <think");
  const ApiRequest off = chat_of(R"({"messages":[{"role":"user","content":"Q"}],"think":false})");
  EXPECT_EQ(render_chat_segments(off).back(), "Assistant: <think></think");
}

TEST(ServerChatPrompt, EmptyMessageIsRefused) {
  const ApiRequest r = chat_of(R"({"messages":[{"role":"user","content":" \n "}]})");
  try {
    render_chat_segments(r);
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("messages[0]"), std::string::npos) << e.what();
  }
}

TEST(ServerChatPrompt, ReplyKeyIsWhatTheNextTurnRenders) {
  const ApiRequest first = chat_of(R"({"messages":[{"role":"user","content":"Hi"}]})");
  PreparedPrompt p;
  p.boundary_texts = {"User: Hi\n\n", "User: Hi\n\nAssistant:"};
  p.history_text = p.boundary_texts[0];
  const std::string content = reply_content("", " Hello there");
  EXPECT_EQ(content, "Hello there");
  const ApiRequest next = chat_of(
      R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello there"},
                      {"role":"user","content":"Again"}]})");
  const std::vector<std::string> s = render_chat_segments(next);
  EXPECT_EQ(reply_cache_key(p, content), s[0] + s[1]);
  EXPECT_EQ(reply_cache_key(p, content), p.text() + " Hello there\n\n");
  EXPECT_EQ(reply_content(" <think", ">a</think>b"), "<think>a</think>b");
}

TEST(ServerResponses, ShapesAndContentView) {
  const ResponseContext chat{true, "chatcmpl-1", 5, "m"};
  const json whole = completion_json(chat, "Hi", StopReason::StopString, {10, 2, 4});
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["content"], "Hi");
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(whole["usage"]["total_tokens"], 12);
  EXPECT_EQ(whole["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  const StopReason length = StopReason::Length;
  const json last = chunk_json({false, "cmpl-1", 5, "m"}, "", &length, false, true);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["usage"].is_null());
  EXPECT_EQ(chunk_json(chat, "", nullptr, true, false)["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(usage_chunk_json(chat, {1, 1, 0})["choices"].size(), 0u);
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");

  ChatContentView view("");
  EXPECT_EQ(view.push(""), "");
  EXPECT_EQ(view.push(" Hello"), "Hello");
  EXPECT_EQ(view.push(" world"), " world");
  ChatContentView think(" <think");
  EXPECT_EQ(think.push(">"), "<think>");
}

TEST(ServerApiKeys, KeyFile) {
  test::TempDir dir;
  test::write_bytes(dir / "keys", "# team keys\nalpha\r\n\n  beta  \n");
  EXPECT_EQ(read_api_key_file((dir / "keys").string()), (std::vector<std::string>{"alpha", "beta"}));
  test::write_bytes(dir / "empty", "# nothing\n\n");
  EXPECT_NE(test::error_of([&] { read_api_key_file((dir / "empty").string()); }).find("no API key"), std::string::npos);
  EXPECT_NE(test::error_of([&] { read_api_key_file((dir / "missing").string()); }).find("missing"), std::string::npos);
}

}  // namespace
}  // namespace aviary::server
