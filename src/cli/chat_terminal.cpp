#include "cli/chat_terminal.h"

#include <signal.h>
#include <sys/select.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

// readline.h needs <cstdio> first.
#include <readline/history.h>
#include <readline/readline.h>

namespace aviary::cli {

namespace {

// Written by the SIGINT handler, so it must be lock-free to be signal-safe.
static_assert(std::atomic<bool>::is_always_lock_free);
std::atomic<bool> g_interrupted{false};
struct sigaction g_previous_sigint;

void on_sigint(int) { g_interrupted.store(true, std::memory_order_relaxed); }

// readline's callback interface hands the finished line to a plain function.
struct LineSlot {
  bool ready = false;
  std::optional<std::string> line;
};
LineSlot g_slot;

void on_line(char* line) {
  g_slot.ready = true;
  if (line) {
    g_slot.line = std::string(line);
    if (*line) add_history(line);
    std::free(line);
  } else {
    g_slot.line.reset();  // Ctrl-D on an empty line
  }
  // Leave readline's raw mode now, before the reply streams: the terminal is
  // then back to normal (echo, Ctrl-C as a signal) while the model talks.
  rl_callback_handler_remove();
}

constexpr const char* kPrompt = "> ";
constexpr const char* kColourPrompt = "\001\033[1;32m\002>\001\033[0m\002 ";

// Ctrl-C at the prompt: abandon the line as a shell does and show a fresh prompt.
void clear_line(bool show_hint, const std::string& hint) {
  rl_callback_sigcleanup();  // ends an incremental search or other pending input state
  rl_replace_line("", 0);
  std::fputs("^C", rl_outstream);
  rl_crlf();
  if (show_hint) {
    std::fputs(hint.c_str(), rl_outstream);
    rl_crlf();
  }
  rl_on_new_line();
  rl_redisplay();
}

// Blocks SIGINT except while waiting for input (pselect), so a Ctrl-C is seen
// either before the wait or as its interruption, never lost in between.
class SigintWindow {
 public:
  SigintWindow() {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &saved_);
    wait_mask_ = saved_;
    sigdelset(&wait_mask_, SIGINT);
  }
  ~SigintWindow() { sigprocmask(SIG_SETMASK, &saved_, nullptr); }
  // Waits until stdin is readable; false when interrupted or on error.
  bool wait_for_input() const {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    return pselect(STDIN_FILENO + 1, &fds, nullptr, nullptr, nullptr, &wait_mask_) > 0;
  }

 private:
  sigset_t saved_, wait_mask_;
};

}  // namespace

bool ChatTerminal::detect_interactive() { return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO); }

ChatTerminal::ChatTerminal(bool interactive) : interactive_(interactive) {
  const char* no_colour = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  colour_ = interactive && !(no_colour && *no_colour) && !(term && std::strcmp(term, "dumb") == 0);
  if (!interactive_) return;
  rl_readline_name = "aviary";
  rl_catch_signals = 0;  // Ctrl-C is ours: see read_line() and the reply loop
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a Ctrl-C must interrupt the wait for input
  sigaction(SIGINT, &sa, &g_previous_sigint);
}

ChatTerminal::~ChatTerminal() {
  if (interactive_) sigaction(SIGINT, &g_previous_sigint, nullptr);
}

const std::atomic<bool>* ChatTerminal::cancel_flag() const { return interactive_ ? &g_interrupted : nullptr; }

void ChatTerminal::begin_reply() { g_interrupted.store(false); }

std::optional<std::string> ChatTerminal::read_line() {
  if (!interactive_) {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  g_interrupted.store(false);  // a Ctrl-C that stopped the last reply is spent
  g_slot = {};
  const std::string hint = dim("(press Ctrl-C again or Ctrl-D to quit)");
  SigintWindow window;
  rl_callback_handler_install(colour_ ? kColourPrompt : kPrompt, on_line);
  int presses = 0;  // Ctrl-C presses in a row
  while (!g_slot.ready) {
    if (g_interrupted.exchange(false)) {
      if (++presses >= 2) break;
      clear_line(rl_end == 0, hint);
      continue;
    }
    if (!window.wait_for_input()) {
      if (errno == EINTR) continue;
      break;  // stdin is gone
    }
    presses = 0;
    rl_callback_read_char();
  }
  if (!g_slot.ready) rl_callback_handler_remove();
  if (!g_slot.line) std::fputc('\n', stdout);  // leave the shell a clean line
  std::fflush(stdout);
  return g_slot.ready ? g_slot.line : std::nullopt;
}

void ChatTerminal::write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void ChatTerminal::note(std::string_view text) {
  FILE* out = interactive_ ? stdout : stderr;
  const std::string s = dim(text) + "\n";
  std::fwrite(s.data(), 1, s.size(), out);
  std::fflush(out);
}

void ChatTerminal::error(std::string_view text) {
  const std::string s = (colour_ ? "\033[1;31maviary: error:\033[0m " : "aviary: error: ") + std::string(text) + "\n";
  std::fflush(stdout);
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

std::string ChatTerminal::dim(std::string_view text) const {
  if (!colour_) return std::string(text);
  return "\033[2m" + std::string(text) + "\033[0m";
}

}  // namespace aviary::cli
