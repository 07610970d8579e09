// `aviary chat` through pipes, as a script uses it: one message per line on
// stdin, only the replies on stdout, notes and errors on stderr.
#include <gtest/gtest.h>

#include <algorithm>

#include "cli/chat_test_util.h"
#include "common/test_util.h"
#include "model/state_file.h"

namespace aviary {
namespace {

using test::run_cli;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) out.push_back(s.substr(start, nl - start));
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

std::vector<std::string> chat_args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"chat", "-m", test::chat_model(), "--vocab", test::chat_vocab(),
                                "--ban", test::chat_ban_list(), "-n", "12"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(ChatCli, PipedConversationPrintsOnlyTheReplies) {
  const std::string input =
      "Hello there\n"
      "\n"
      "/undo\n"
      "   second message  \n"
      "/think on\n"
      "/system Be brief.\n"
      "third\n"
      "//slash message\n"
      "/help\n"
      "/quit\n"
      "never read\n";
  const auto r = run_cli(chat_args({"--seed", "7"}), input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;  // one line per message; commands print nothing here
  for (const auto& l : out) {
    EXPECT_FALSE(l.empty());
    EXPECT_EQ(l.find("User:"), std::string::npos) << l;
    EXPECT_EQ(l.find('\x1b'), std::string::npos) << "no colours in a pipe: " << l;
    EXPECT_NE(l.rfind("> ", 0), 0u) << "no prompt in a pipe: " << l;
  }
  EXPECT_EQ(out[2].rfind("<think", 0), 0u) << "thinking on shows the opened thought: " << out[2];
  EXPECT_NE(r.err.find("(undone)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/save FILE"), std::string::npos) << "the help goes to stderr: " << r.err;
  // The same seed repeats the conversation.
  EXPECT_EQ(run_cli(chat_args({"--seed", "7"}), input).out, r.out);
}

TEST(ChatCli, OnePromptAndStats) {
  const auto r = run_cli(chat_args({"-p", "Hi", "--seed", "1", "--stats"}), "ignored\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out).size(), 1u) << r.out;
  EXPECT_NE(r.err.find("12 reply tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
}

// Greedy replies depend only on the state, so a conversation continued from
// a saved state must say exactly what the uninterrupted one says.
TEST(ChatCli, SaveThenLoadContinuesTheConversation) {
  test::TempDir tmp;
  const std::string file = (tmp / "chat.state").string();
  const std::vector<std::string> greedy = {"--temperature", "0"};
  const auto whole = run_cli(chat_args(greedy), "first message\nsecond message\n");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const auto want = lines(whole.out);
  ASSERT_EQ(want.size(), 2u) << whole.out;

  const auto saved = run_cli(chat_args(greedy), "first message\n/save " + file + "\n");
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  EXPECT_EQ(lines(saved.out), std::vector<std::string>{want[0]});
  const StateFileInfo info = read_state_file_info(file);
  EXPECT_EQ(info.extras.text.rfind("User: first message\n\nAssistant:", 0), 0u) << info.extras.text;
  EXPECT_EQ(info.extras.token_count, int64_t(info.extras.tokens.size()));

  const auto loaded = run_cli(chat_args(greedy), "/load " + file + "\nsecond message\n");
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  EXPECT_EQ(lines(loaded.out), std::vector<std::string>{want[1]});

  auto from_flag = chat_args(greedy);
  from_flag.insert(from_flag.end(), {"--state", file});
  const auto started = run_cli(from_flag, "second message\n/reset\nsecond message\n");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(lines(started.out), (std::vector<std::string>{want[1], want[1]})) << "reset returns to --state";

  // /undo after /load returns to the conversation before it.
  const auto undone = run_cli(chat_args(greedy), "first message\n/load " + file + "\n/undo\n/undo\nfirst message\n");
  ASSERT_EQ(undone.exit_code, 0) << undone.err;
  EXPECT_EQ(lines(undone.out), (std::vector<std::string>{want[0], want[0]}));
}

TEST(ChatCli, ErrorsEndAScriptWithStatus1) {
  const auto missing = run_cli(chat_args({}), "/load /nonexistent/chat.state\nhello\n");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(missing.out.empty()) << "nothing after the failed command runs: " << missing.out;
  EXPECT_NE(missing.err.find("/nonexistent/chat.state"), std::string::npos) << missing.err;

  const auto unknown = run_cli(chat_args({}), "/frobnicate\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("unknown command /frobnicate"), std::string::npos) << unknown.err;

  const auto think = run_cli(chat_args({}), "/think sideways\n");
  EXPECT_EQ(think.exit_code, 1);

  EXPECT_EQ(run_cli(chat_args({"--think", "--no-think"}), "").exit_code, 2);
  EXPECT_EQ(run_cli(chat_args({"--top-p", "3"}), "hi\n").exit_code, 1);
}

}  // namespace
}  // namespace aviary
