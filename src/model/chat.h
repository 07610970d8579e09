// A chat with an RWKV model that keeps the recurrent state between turns:
// each turn feeds only its own new tokens, never the history again, so a
// turn costs the same however long the conversation is.
//
// The text follows the official RWKV World / G1 chat format (BlinkDL/RWKV-LM
// RWKV-v7/RWKV7-G1x-templates.txt; ChatRWKV API_DEMO_CHAT.py):
//
//   System: <system prompt>\n\n            (optional, first)
//   User: <message>\n\nAssistant:<prefix><reply>\n\n   (per turn)
//
// where <prefix> selects G1 reasoning: "" (plain), " <think" (thinking on)
// or " <think></think" (thinking off: an empty thought). A reply ends at the
// first "\n\n" (fed to the model, not shown) or at end-of-text, and a turn
// always ends with "\n\n" in the state, so the next turn starts cleanly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "model/generator.h"
#include "model/model.h"
#include "model/state.h"
#include "text/tokenizer.h"

namespace aviary {

// How the assistant's turn opens (G1 models; "Plain" suits every model).
enum class ThinkMode { Plain, On, Off };

// The official think-length hint appended to the user's message when
// thinking is on: " (think a bit)", " (think)", " (think a lot)".
enum class ThinkLength { Unspecified, Short, Medium, Long };

// The official chat sampling (ChatRWKV API_DEMO_CHAT.py): temperature 1.0,
// top-p 0.3, presence and frequency penalties 0.5, decay 0.996.
SamplerParams chat_sampler_defaults();

struct ChatOptions {
  GenerationOptions generation = [] {
    GenerationOptions g;
    g.max_tokens = 4096;  // per reply; the official demo has no practical limit
    g.sampling = chat_sampler_defaults();
    return g;
  }();
  std::string system;  // optional system prompt, cleaned like a message
  ThinkMode think = ThinkMode::Plain;
  ThinkLength think_length = ThinkLength::Unspecified;
  // Undo snapshots (each holds a copy of the state) are dropped oldest first
  // beyond this much memory; the newest one is always kept.
  size_t undo_memory_bytes = size_t(1) << 30;
};

// The official cleaning of a System or User message (clean_txt in
// RWKV7-G1x-templates.txt): CRLF -> LF, every run of two or more newlines ->
// one newline (a blank line would end the turn), then strip surrounding
// whitespace as Python's str.strip() does. Invalid UTF-8 becomes U+FFFD.
std::string clean_chat_message(std::string_view text);

// What follows "Assistant:" to open a reply in `mode`: "", " <think" or
// " <think></think".
const char* assistant_turn_prefix(ThinkMode mode);

// The exact text fed for a turn (`message` already cleaned).
std::string system_turn_text(std::string_view message);
std::string user_turn_text(std::string_view message, ThinkMode think, ThinkLength length);

struct ChatMessage {
  enum class Role { System, User, Assistant };
  Role role;
  std::string text;  // cleaned message, or the reply as shown
};

struct ChatReply {
  std::string text;  // what the sink received: the reply as shown
  GenerationResult generation;  // generated tokens, timings, stop reason (logits go to the session)
  std::vector<int32_t> closing_tokens;  // fed after the reply to end the turn with "\n\n"
};

class ChatSession {
 public:
  // Starts from the model's zero state (and the system prompt, if any).
  // The model and tokenizer must outlive the session.
  ChatSession(const Model& model, const Tokenizer& tokenizer, ChatOptions options = {});

  // Streams the reply to `user_text` through `sink` (returning false stops
  // it, as does options.generation.cancel). A stopped reply keeps what was
  // generated: the state holds exactly those tokens, then "\n\n" closes the
  // turn. Throws aviary::Error if the cleaned message is empty.
  ChatReply reply(std::string_view user_text, const TextSink& sink);

  // Back to the initial state, then the system prompt. Undoable.
  void reset();
  // Reverts the last reply, reset, system change or state replacement:
  // state, logits, transcript and messages exactly as they were. False when
  // there is nothing to undo.
  bool undo();
  // Sets (or clears, with "") the system prompt and starts the conversation
  // over with it, since a system turn belongs at the start. Undoable.
  void set_system(std::string_view text);
  void set_thinking(bool on) { options_.think = on ? ThinkMode::On : ThinkMode::Off; }
  void set_think_mode(ThinkMode mode) { options_.think = mode; }
  void set_think_length(ThinkLength length) { options_.think_length = length; }
  // Sampling, token limit and cancel flag for the replies that follow.
  GenerationOptions& generation() { return options_.generation; }

  // Where reset() returns to: a saved state instead of the zero state.
  // `history` are the tokens that produced it if known, `token_count` how
  // many there were (-1 unknown). Resets the conversation (not undoable).
  void set_initial_state(State state, std::vector<int32_t> history = {}, int64_t token_count = -1);
  // Continues the conversation from another state (e.g. a loaded file);
  // the messages start over. Undoable.
  void replace_state(State state, std::vector<int32_t> history = {}, int64_t token_count = -1);

  const State& state() const { return state_; }
  // The logits after the last token fed (empty right after a replaced state
  // whose history is unknown, or a fresh zero state).
  const std::vector<float>& logits() const { return logits_; }
  // Every token fed since the state was last set (zero state, initial state
  // or replacement), including that state's known history.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Tokens the state has seen in all, or -1 when its history is unknown.
  int64_t token_count() const;
  // The exact text of tokens() (UTF-8 errors replaced).
  std::string transcript() const;
  const std::vector<ChatMessage>& messages() const { return messages_; }
  const ChatOptions& options() const { return options_; }
  size_t undo_depth() const { return undo_.size(); }

 private:
  struct Snapshot {
    State state;
    std::vector<float> logits;
    std::vector<int32_t> tokens;
    int64_t unseen_tokens;
    std::vector<ChatMessage> messages;
  };

  void push_undo();
  void start_over();  // initial state + system turn, no undo entry
  void feed(std::string_view text);
  std::vector<int32_t> close_turn(const std::vector<int32_t>& generated);

  const Model& model_;
  const Tokenizer& tokenizer_;
  ChatOptions options_;
  State initial_;
  std::vector<int32_t> initial_tokens_;
  int64_t initial_unseen_ = 0;
  State state_;
  std::vector<float> logits_;
  std::vector<int32_t> tokens_;
  int64_t unseen_tokens_ = 0;  // tokens before tokens_ that the state has seen; -1 unknown
  std::vector<ChatMessage> messages_;
  std::vector<Snapshot> undo_;
  std::mt19937_64 seeds_;  // one sampling seed per reply, from options.generation.sampling.seed
};

}  // namespace aviary
