// The terminal side of `aviary chat`. With a person at a terminal: GNU
// readline line editing and history, colours, and Ctrl-C that stops the
// current reply, or clears the line at the prompt (a second Ctrl-C in a row
// quits). Otherwise (stdin or stdout not a terminal): plain lines from
// stdin, no prompt, no colours, and Ctrl-C keeps its default meaning.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

namespace aviary::cli {

class ChatTerminal {
 public:
  // Interactive when both stdin and stdout are terminals.
  static bool detect_interactive();

  explicit ChatTerminal(bool interactive);
  ~ChatTerminal();  // restores the previous SIGINT handling
  ChatTerminal(const ChatTerminal&) = delete;
  ChatTerminal& operator=(const ChatTerminal&) = delete;

  bool interactive() const { return interactive_; }

  // The next input line without its line ending; nullopt at end of input
  // (Ctrl-D, EOF) or when Ctrl-C is pressed twice in a row at the prompt.
  std::optional<std::string> read_line();

  // Set by Ctrl-C (interactive only); a reply polls it. begin_reply() clears
  // it, so only a Ctrl-C pressed after the message was entered stops it.
  const std::atomic<bool>* cancel_flag() const;
  void begin_reply();

  // Output helpers: text on stdout (flushed at once), and notes, which go to
  // stdout in colour when interactive but to stderr otherwise so that piped
  // output holds only the replies.
  void write(std::string_view text);
  void note(std::string_view text);
  void error(std::string_view text);
  // `text` in dim/colour when colours are on, else unchanged.
  std::string dim(std::string_view text) const;

 private:
  bool interactive_;
  bool colour_;
};

}  // namespace aviary::cli
