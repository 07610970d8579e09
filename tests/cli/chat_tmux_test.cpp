// `aviary chat` at a real terminal, as a person uses it: the program runs in
// a tmux pane (private server socket, fixed size), keys are typed with
// send-keys and the screen is read back with capture-pane. Every wait polls
// the screen with a bounded timeout; nothing depends on timing otherwise.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <thread>

#include "cli/chat_test_util.h"
#include "common/test_util.h"

namespace aviary {
namespace {

struct Shell {
  int status = -1;
  std::string out;
};

Shell shell(const std::string& command) {
  Shell r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool tmux_installed() { return shell("tmux -V").status == 0; }

// One tmux server of our own, killed when the test ends however it ends.
class Tmux {
 public:
  Tmux() {
    static int counter = 0;
    socket_ = "aviary-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    // Keep the pane after the program exits, to read its last screen.
    test::write_bytes(dir_ / "tmux.conf", "set -g remain-on-exit on\nset -g status off\n");
  }
  ~Tmux() {
    // The server leaves its socket file behind: remove it too.
    const std::string socket = tmux("display-message -p '#{socket_path}'").out;
    tmux("kill-server");
    std::error_code ignored;
    if (socket.rfind("/", 0) == 0 && socket.back() == '\n')
      std::filesystem::remove(socket.substr(0, socket.size() - 1), ignored);
  }

  Shell tmux(const std::string& args) const {
    return shell("tmux -L " + socket_ + " -f " + quote((dir_ / "tmux.conf").string()) + " " + args);
  }
  // Runs the program under a shell that records its exit status in a file:
  // tmux's own #{pane_dead_status} proved unreliable (a pane's process was
  // at times never reaped). The shell catches SIGINT (a caught signal is
  // reset to its default in the program it starts) so that the Ctrl-C the
  // terminal sends to both does not end the shell.
  void start(const std::vector<std::string>& argv) const {
    std::string cmd = "trap : INT; ";
    for (const auto& a : argv) cmd += quote(a) + " ";
    cmd += "; echo $? > " + quote(status_file());
    const Shell r = tmux("new-session -d -s chat -x 100 -y 40 " + quote(cmd));
    ASSERT_EQ(r.status, 0) << r.out;
  }
  void type(const std::string& text) const { tmux("send-keys -t chat -l " + quote(text)); }
  void key(const std::string& name) const { tmux("send-keys -t chat " + name); }
  std::string screen() const { return tmux("capture-pane -p -J -t chat").out; }
  bool running() const { return !std::filesystem::exists(status_file()); }
  // The program's exit status once it has ended, else "".
  std::string exit_status() const {
    if (!std::filesystem::exists(status_file())) return "";
    const std::string s = test::read_bytes(status_file());
    return s.size() > 1 && s.back() == '\n' ? s.substr(0, s.size() - 1) : "";
  }
  // Polls until the program has exited; its status, or "" after `seconds`.
  std::string wait_for_exit(int seconds = 60) const {
    std::string status;
    wait_for([&](const std::string&) { return !(status = exit_status()).empty(); }, seconds);
    return status;
  }

  // Polls the screen until `done` holds, for at most `seconds`.
  bool wait_for(const std::function<bool(const std::string&)>& done, int seconds = 60) const {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (done(screen())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string status_file() const { return (dir_ / "status").string(); }

  test::TempDir dir_;
  std::string socket_;
};

std::vector<std::string> screen_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string l = s.substr(start, nl - start);
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out.push_back(l);
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// The program waits at an empty prompt.
bool at_prompt(const std::string& s) {
  const auto l = screen_lines(s);
  return !l.empty() && l.back() == ">";
}
bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::vector<std::string> chat_command() {
  return {AVIARY_CLI_PATH, "chat", "-m", test::chat_model(), "--vocab", test::chat_vocab(),
          "--ban", test::chat_ban_list(), "-n", "1000000", "--seed", "5"};
}

#define SKIP_WITHOUT_TMUX() \
  if (!tmux_installed()) GTEST_SKIP() << "tmux is not installed: the real-terminal chat test needs it"

TEST(ChatTmux, CtrlCStopsALongReplyThenUndoAndQuit) {
  SKIP_WITHOUT_TMUX();
  Tmux t;
  t.start(chat_command());
  ASSERT_TRUE(t.wait_for([](const std::string& s) { return has(s, "/help lists the commands") && at_prompt(s); }))
      << t.screen();

  t.type("hello there");
  t.key("Enter");
  // The reply streams on the lines after the message (it would run for a
  // million tokens: only Ctrl-C ends it).
  ASSERT_TRUE(t.wait_for([](const std::string& s) {
    const auto l = screen_lines(s);
    const auto it = std::find(l.begin(), l.end(), "> hello there");
    return it != l.end() && it + 1 != l.end() && (it + 1)->size() > 20;
  })) << t.screen();
  t.key("C-c");
  ASSERT_TRUE(t.wait_for([](const std::string& s) { return has(s, "[stopped]") && at_prompt(s); })) << t.screen();
  EXPECT_TRUE(t.running()) << "Ctrl-C during a reply must not end the program";

  t.type("/undo");
  t.key("Enter");
  ASSERT_TRUE(t.wait_for([](const std::string& s) { return has(s, "(undone)") && at_prompt(s); })) << t.screen();

  // Ctrl-C at the prompt abandons the line typed so far.
  t.type("a draft");
  t.key("C-c");
  ASSERT_TRUE(t.wait_for([](const std::string& s) { return has(s, "> a draft^C") && at_prompt(s); })) << t.screen();

  t.type("/quit");
  t.key("Enter");
  EXPECT_EQ(t.wait_for_exit(), "0") << t.screen();
  const std::string s = t.screen();
  EXPECT_FALSE(has(s, "error")) << s;
  EXPECT_FALSE(has(s, "User:")) << "the prompt format is never shown: " << s;
}

TEST(ChatTmux, CtrlCTwiceAtThePromptQuits) {
  SKIP_WITHOUT_TMUX();
  Tmux t;
  t.start(chat_command());
  ASSERT_TRUE(t.wait_for(at_prompt)) << t.screen();
  t.key("C-c");
  ASSERT_TRUE(t.wait_for([](const std::string& s) { return has(s, "Ctrl-C again") && at_prompt(s); })) << t.screen();
  EXPECT_TRUE(t.running());
  t.key("C-c");
  EXPECT_EQ(t.wait_for_exit(), "0") << t.screen();
}

TEST(ChatTmux, CtrlDQuits) {
  SKIP_WITHOUT_TMUX();
  Tmux t;
  t.start(chat_command());
  ASSERT_TRUE(t.wait_for(at_prompt)) << t.screen();
  t.key("C-d");
  EXPECT_EQ(t.wait_for_exit(), "0") << t.screen();
}

}  // namespace
}  // namespace aviary
