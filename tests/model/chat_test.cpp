// ChatSession: the official chat format, and a state carried turn by turn
// that is exactly (bit for bit) the state of the whole transcript run at once.
#include <gtest/gtest.h>

#include <atomic>

#include "common/test_util.h"
#include "model/chat.h"
#include "util/error.h"

namespace aviary {
namespace {

// The official rule, re.sub(r'\n{2,}', '\n', txt.replace('\r\n','\n')).strip()
// (RWKV-LM RWKV-v7/RWKV7-G1x-templates.txt); expectations computed with Python.
TEST(ChatFormat, CleanMessageFollowsTheOfficialRule) {
  const std::pair<std::string, std::string> cases[] = {
      {"  hi  ", "hi"},
      {"a\n\nb", "a\nb"},
      {"a\n\n\n\nb", "a\nb"},
      {"a\r\n\r\nb", "a\nb"},
      {"\n\nhi\n\n", "hi"},
      {"a\r\nb", "a\nb"},
      {"line1\nline2", "line1\nline2"},
      {"a \n \n b", "a \n \n b"},  // no two newlines in a row: kept
      {"x\r\r\ny", "x\r\ny"},
      {"\t\v\f\r\n", ""},
      {"\u3000hi\u00a0", "hi"},        // Python strips Unicode spaces
      {"\x1chi\x1f", "hi"},            // and the ASCII separators
      {"\u2028a\u200bb\u2029", "a\u200bb"},  // U+200B is not a space
      {"\xc2\x85x", "x"},
      {"bad \xff byte", "bad \xef\xbf\xbd byte"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(clean_chat_message(in), want) << testing::PrintToString(in);
}

TEST(ChatFormat, TurnTextsAndThinkPrefixes) {
  EXPECT_EQ(system_turn_text("Be brief."), "System: Be brief.\n\n");
  EXPECT_EQ(user_turn_text("hi", ThinkMode::Plain, ThinkLength::Long), "User: hi\n\nAssistant:");
  EXPECT_EQ(user_turn_text("hi", ThinkMode::On, ThinkLength::Unspecified), "User: hi\n\nAssistant: <think");
  EXPECT_EQ(user_turn_text("hi", ThinkMode::Off, ThinkLength::Long), "User: hi\n\nAssistant: <think></think");
  EXPECT_EQ(user_turn_text("hi", ThinkMode::On, ThinkLength::Short), "User: hi (think a bit)\n\nAssistant: <think");
  EXPECT_EQ(user_turn_text("hi", ThinkMode::On, ThinkLength::Medium), "User: hi (think)\n\nAssistant: <think");
  EXPECT_EQ(user_turn_text("hi", ThinkMode::On, ThinkLength::Long), "User: hi (think a lot)\n\nAssistant: <think");
}

TEST(ChatFormat, OfficialSamplingDefaults) {
  const SamplerParams p = chat_sampler_defaults();
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_p, 0.3f);
  EXPECT_EQ(p.presence_penalty, 0.5f);
  EXPECT_EQ(p.frequency_penalty, 0.5f);
  EXPECT_EQ(p.penalty_decay, 0.996f);
}

std::vector<float> raw(const State& s) { return {s.raw().begin(), s.raw().end()}; }

class Chat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = test::refdata_case("v7_world_L2_C64_V65536_bf16");
    model_ = load_model((dir / "model.pth").string()).release();
    tokenizer_ = load_tokenizer((test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string()).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
  }

  static ChatOptions options(int32_t max_tokens = 16) {
    ChatOptions o;
    o.generation.max_tokens = max_tokens;
    o.generation.sampling.seed = 1234;
    return o;
  }
  static ChatReply say(ChatSession& s, const std::string& text) { return s.reply(text, {}); }

  // The session's final logits and state must equal the whole transcript's.
  static void expect_matches_whole_transcript(const ChatSession& s) {
    State whole = model_->new_state();
    std::vector<float> logits;
    model_->forward(s.tokens(), whole, logits);
    EXPECT_EQ(logits, s.logits());
    EXPECT_EQ(raw(whole), raw(s.state()));
  }

  // Bans every token but `keep`, so the next reply is forced.
  static std::vector<int32_t> all_but(int32_t keep) {
    std::vector<int32_t> ban;
    for (int32_t id = 0; id < int32_t(model_->config().vocab_size); ++id)
      if (id != keep) ban.push_back(id);
    return ban;
  }
  static int32_t single_token(const std::string& text) {
    const auto ids = tokenizer_->encode(text);
    EXPECT_EQ(ids.size(), 1u) << text;
    return ids.at(0);
  }

  static Model* model_;
  static Tokenizer* tokenizer_;
};
Model* Chat::model_ = nullptr;
Tokenizer* Chat::tokenizer_ = nullptr;

TEST_F(Chat, TurnByTurnEqualsTheWholeTranscriptBitwise) {
  ChatOptions o = options();
  o.system = "You are terse.";
  ChatSession s(*model_, *tokenizer_, o);
  say(s, "Hello there");
  s.set_thinking(true);
  say(s, "What is 2+2?\n\nThink.");
  s.set_thinking(false);
  const ChatReply last = say(s, "And 3+3?");
  EXPECT_EQ(last.generation.stop, StopReason::Length);
  EXPECT_EQ(last.generation.tokens.size(), 16u);
  expect_matches_whole_transcript(s);

  // Only each turn's own tokens were fed: the transcript is the official text.
  const std::string t = s.transcript();
  EXPECT_EQ(t.rfind("System: You are terse.\n\nUser: Hello there\n\nAssistant:", 0), 0u) << t;
  EXPECT_NE(t.find("\n\nUser: What is 2+2?\nThink.\n\nAssistant: <think"), std::string::npos) << t;
  EXPECT_NE(t.find("\n\nUser: And 3+3?\n\nAssistant: <think></think"), std::string::npos) << t;
  EXPECT_EQ(t.substr(t.size() - 2), "\n\n");  // every turn is closed
  ASSERT_EQ(s.messages().size(), 7u);
  EXPECT_EQ(s.messages()[3].text, "What is 2+2?\nThink.");
  EXPECT_EQ(s.token_count(), int64_t(s.tokens().size()));
}

TEST_F(Chat, ReplyEndingAtTheBlankLineIsFedButNotShown) {
  ChatSession s(*model_, *tokenizer_, options());
  const int32_t blank = single_token("\n\n");
  s.generation().sampling.banned_tokens = all_but(blank);
  const ChatReply r = say(s, "hi");
  EXPECT_EQ(r.generation.stop, StopReason::StopString);
  EXPECT_EQ(r.generation.tokens, std::vector<int32_t>{blank});
  EXPECT_TRUE(r.closing_tokens.empty());  // the "\n\n" already closed the turn
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(s.transcript(), "User: hi\n\nAssistant:\n\n");
  expect_matches_whole_transcript(s);
}

TEST_F(Chat, EndOfTextEndsTheReplyAndTheTurnIsClosed) {
  ChatSession s(*model_, *tokenizer_, options());
  s.generation().sampling.banned_tokens = all_but(kEndOfTextId);
  const ChatReply r = say(s, "hi");
  EXPECT_EQ(r.generation.stop, StopReason::EndOfText);
  EXPECT_TRUE(r.generation.tokens.empty());
  EXPECT_EQ(r.closing_tokens, tokenizer_->encode("\n\n"));
  EXPECT_EQ(s.transcript(), "User: hi\n\nAssistant:\n\n");
  expect_matches_whole_transcript(s);
}

TEST_F(Chat, CancelledReplyKeepsExactlyTheTokensGenerated) {
  ChatSession s(*model_, *tokenizer_, options());
  say(s, "first");
  s.generation().max_tokens = 1000;
  int pieces = 0;
  const ChatReply r = s.reply("second", [&](std::string_view) { return ++pieces < 3; });
  EXPECT_EQ(r.generation.stop, StopReason::Cancelled);
  EXPECT_EQ(pieces, 3);
  EXPECT_GE(r.generation.tokens.size(), 3u);
  EXPECT_LT(r.generation.tokens.size(), 1000u);
  EXPECT_FALSE(r.closing_tokens.empty());
  expect_matches_whole_transcript(s);

  // The flag a Ctrl-C handler sets: a reply that starts cancelled feeds its
  // prompt, generates nothing and still closes the turn.
  std::atomic<bool> cancel{true};
  s.generation().cancel = &cancel;
  const ChatReply none = say(s, "third");
  EXPECT_EQ(none.generation.stop, StopReason::Cancelled);
  EXPECT_TRUE(none.generation.tokens.empty());
  EXPECT_EQ(s.transcript().substr(s.transcript().size() - 25), "User: third\n\nAssistant:\n\n");
  expect_matches_whole_transcript(s);
}

TEST_F(Chat, UndoRestoresThePreviousTurnExactly) {
  ChatSession s(*model_, *tokenizer_, options());
  EXPECT_FALSE(s.undo());
  say(s, "one");
  const std::vector<float> logits = s.logits(), state = raw(s.state());
  const std::vector<int32_t> tokens = s.tokens();
  const std::string transcript = s.transcript();
  say(s, "two");
  EXPECT_NE(s.logits(), logits);
  ASSERT_TRUE(s.undo());
  EXPECT_EQ(s.logits(), logits);
  EXPECT_EQ(raw(s.state()), state);
  EXPECT_EQ(s.tokens(), tokens);
  EXPECT_EQ(s.transcript(), transcript);
  EXPECT_EQ(s.messages().size(), 2u);
  // Further back: the zero state; and reset / system changes undo as well.
  ASSERT_TRUE(s.undo());
  EXPECT_EQ(raw(s.state()), raw(model_->new_state()));
  EXPECT_TRUE(s.tokens().empty() && s.logits().empty() && s.messages().empty());
  EXPECT_FALSE(s.undo());
  say(s, "three");
  const std::vector<float> before_reset = raw(s.state());
  s.reset();
  s.set_system("New rules.");
  ASSERT_TRUE(s.undo());
  ASSERT_TRUE(s.undo());
  EXPECT_EQ(raw(s.state()), before_reset);
  expect_matches_whole_transcript(s);
}

TEST_F(Chat, ResetReturnsToTheInitialStateAndReplays) {
  ChatOptions o = options();
  o.system = "  Be kind.\n\n ";
  ChatSession s(*model_, *tokenizer_, o);
  const std::vector<float> start = raw(s.state());
  const std::vector<int32_t> start_tokens = s.tokens();
  EXPECT_EQ(s.transcript(), "System: Be kind.\n\n");
  const std::string first = say(s, "hello").text;
  say(s, "more");
  s.reset();
  EXPECT_EQ(raw(s.state()), start);
  EXPECT_EQ(s.tokens(), start_tokens);
  ASSERT_EQ(s.messages().size(), 1u);
  EXPECT_EQ(s.messages()[0].role, ChatMessage::Role::System);
  EXPECT_EQ(say(s, "hello").text, first);  // the same seed gives the same conversation
  expect_matches_whole_transcript(s);
}

TEST_F(Chat, RepliesAreShownWithoutTheThinkClosingOrBlanks) {
  const int32_t gt = single_token(">");
  for (const auto& [mode, shown] : {std::pair{ThinkMode::Plain, ">"}, {ThinkMode::On, "<think>"}, {ThinkMode::Off, ""}}) {
    ChatOptions o = options(1);
    o.think = mode;
    o.generation.sampling.banned_tokens = all_but(gt);
    ChatSession s(*model_, *tokenizer_, o);
    std::string streamed;
    const ChatReply r = s.reply("q", [&](std::string_view t) { return streamed += t, true; });
    EXPECT_EQ(r.text, shown);
    EXPECT_EQ(streamed, shown);
    EXPECT_EQ(s.messages().back().text, shown);
  }
  // Leading and trailing blanks never show, inner ones do.
  ChatOptions o = options(3);
  const int32_t space = single_token(" "), word = single_token("ok");
  ChatSession s(*model_, *tokenizer_, o);
  for (const int32_t keep : {space, word}) {
    s.generation().sampling.banned_tokens = all_but(keep);
    s.generation().max_tokens = 2;
    const ChatReply r = say(s, "q");
    EXPECT_EQ(r.text, keep == space ? "" : "okok");
  }
}

TEST_F(Chat, StartsFromAGivenStateAndKeepsItsHistory) {
  ChatSession a(*model_, *tokenizer_, options());
  say(a, "remember this");
  ChatSession b(*model_, *tokenizer_, options());
  b.set_initial_state(a.state(), a.tokens(), int64_t(a.tokens().size()));
  EXPECT_EQ(b.tokens(), a.tokens());
  say(b, "next");
  State whole = model_->new_state();
  std::vector<float> logits;
  model_->forward(b.tokens(), whole, logits);
  EXPECT_EQ(raw(whole), raw(b.state()));
  b.reset();
  EXPECT_EQ(raw(b.state()), raw(a.state()));

  // Unknown history: only the count (or nothing) is kept.
  b.replace_state(a.state(), {}, 42);
  EXPECT_EQ(b.token_count(), 42);
  say(b, "x");
  EXPECT_EQ(b.token_count(), 42 + int64_t(b.tokens().size()));
  b.replace_state(a.state());
  EXPECT_EQ(b.token_count(), -1);
  ASSERT_TRUE(b.undo());
  EXPECT_EQ(b.token_count(), 42 + int64_t(b.tokens().size()));
  EXPECT_THROW(b.replace_state(State({{"x", {3}}})), Error);
}

TEST_F(Chat, EmptyMessageIsRefusedAndChangesNothing) {
  ChatSession s(*model_, *tokenizer_, options());
  EXPECT_THROW(say(s, " \n\n \t"), Error);
  EXPECT_EQ(s.undo_depth(), 0u);
  EXPECT_TRUE(s.tokens().empty());
  s.generation().sampling.top_p = 2.f;  // invalid: generation throws before feeding
  EXPECT_THROW(say(s, "hi"), Error);
  EXPECT_EQ(s.undo_depth(), 0u);
  EXPECT_EQ(raw(s.state()), raw(model_->new_state()));
}

}  // namespace
}  // namespace aviary
