#include "model/chat.h"

#include <tuple>
#include <utility>

#include "text/unicode.h"
#include "text/utf8.h"
#include "util/error.h"

namespace aviary {

namespace {

// Python's str.isspace(): Unicode White_Space plus the four ASCII
// separators U+001C..U+001F (bidirectional class B or S).
bool is_python_space(char32_t c) { return unicode::is_space(c) || (c >= 0x1C && c <= 0x1F); }

std::string python_strip(const std::string& s) {
  const std::u32string units = unicode::decode_units(s);
  size_t b = 0, e = units.size();
  while (b < e && is_python_space(units[b])) ++b;
  while (e > b && is_python_space(units[e - 1])) --e;
  std::string out;
  unicode::append_units(out, std::u32string_view(units).substr(b, e - b));
  return out;
}

bool is_blank(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// Turns generated text into the reply as shown: thinking-on replies start
// with the "<think" the prompt opened (the model continues it), thinking-off
// replies lose the ">" that completes the prompt's empty "<think></think",
// and no reply shows leading or trailing blanks. Blanks are held back until
// something follows them, so streaming shows the same text as the end result.
class ReplyView {
 public:
  ReplyView(ThinkMode mode, const TextSink& sink)
      : sink_(sink), prefix_(mode == ThinkMode::On ? "<think" : ""), started_(mode == ThinkMode::On),
        skip_close_(mode == ThinkMode::Off) {}

  bool push(std::string_view piece) {
    std::string out;
    for (char c : piece) {
      if (!started_) {
        if (is_blank(c)) continue;
        if (skip_close_ && c == '>') { skip_close_ = false; continue; }
        started_ = true;
      }
      if (is_blank(c)) { held_ += c; continue; }
      out += held_;
      held_.clear();
      out += c;
    }
    if (out.empty()) return true;
    out.insert(0, prefix_);
    prefix_.clear();
    shown_ += out;
    return !sink_ || sink_(out);
  }

  const std::string& shown() const { return shown_; }

 private:
  const TextSink& sink_;
  std::string prefix_, held_, shown_;
  bool started_, skip_close_;
};

const char* think_hint(ThinkLength length) {
  switch (length) {
    case ThinkLength::Unspecified: return "";
    case ThinkLength::Short: return " (think a bit)";
    case ThinkLength::Medium: return " (think)";
    case ThinkLength::Long: return " (think a lot)";
  }
  return "";
}

size_t snapshot_bytes(const State& s, const std::vector<float>& logits, const std::vector<int32_t>& tokens) {
  return (s.raw().size() + logits.size()) * sizeof(float) + tokens.size() * sizeof(int32_t);
}

}  // namespace

const char* assistant_turn_prefix(ThinkMode mode) {
  switch (mode) {
    case ThinkMode::Plain: return "";
    case ThinkMode::On: return " <think";
    case ThinkMode::Off: return " <think></think";
  }
  return "";
}

SamplerParams chat_sampler_defaults() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_p = 0.3f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.5f;
  p.penalty_decay = 0.996f;
  return p;
}

std::string clean_chat_message(std::string_view text) {
  const std::string valid = utf8_replace_invalid(text);
  std::string s;
  s.reserve(valid.size());
  for (size_t i = 0; i < valid.size(); ++i) {
    const bool crlf = valid[i] == '\r' && i + 1 < valid.size() && valid[i + 1] == '\n';
    if (crlf) continue;  // the '\n' that follows is kept
    if (valid[i] == '\n' && !s.empty() && s.back() == '\n') continue;  // runs of '\n' -> one
    s += valid[i];
  }
  return python_strip(s);
}

std::string system_turn_text(std::string_view message) { return "System: " + std::string(message) + "\n\n"; }

std::string user_turn_text(std::string_view message, ThinkMode think, ThinkLength length) {
  const char* hint = think == ThinkMode::On ? think_hint(length) : "";
  return "User: " + std::string(message) + hint + "\n\nAssistant:" + assistant_turn_prefix(think);
}

ChatSession::ChatSession(const Model& model, const Tokenizer& tokenizer, ChatOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)), initial_(model.new_state()),
      state_(initial_) {
  options_.system = clean_chat_message(options_.system);
  start_over();
}

int64_t ChatSession::token_count() const {
  return unseen_tokens_ < 0 ? -1 : unseen_tokens_ + int64_t(tokens_.size());
}

std::string ChatSession::transcript() const { return utf8_replace_invalid(tokenizer_.decode_bytes(tokens_)); }

void ChatSession::feed(std::string_view text) {
  const std::vector<int32_t> ids = tokenizer_.encode(text);
  if (ids.empty()) return;
  model_.forward(ids, state_, logits_);
  tokens_.insert(tokens_.end(), ids.begin(), ids.end());
}

void ChatSession::start_over() {
  state_ = initial_;
  tokens_ = initial_tokens_;
  unseen_tokens_ = initial_unseen_;
  logits_.clear();
  messages_.clear();
  seeds_.seed(options_.generation.sampling.seed);
  if (options_.system.empty()) return;
  feed(system_turn_text(options_.system));
  messages_.push_back({ChatMessage::Role::System, options_.system});
}

void ChatSession::push_undo() {
  undo_.push_back({state_, logits_, tokens_, unseen_tokens_, messages_});
  // Drop the oldest snapshots beyond the memory budget, keeping the newest.
  size_t total = 0;
  for (const Snapshot& s : undo_) total += snapshot_bytes(s.state, s.logits, s.tokens);
  while (undo_.size() > 1 && total > options_.undo_memory_bytes) {
    total -= snapshot_bytes(undo_.front().state, undo_.front().logits, undo_.front().tokens);
    undo_.erase(undo_.begin());
  }
}

bool ChatSession::undo() {
  if (undo_.empty()) return false;
  Snapshot s = std::move(undo_.back());
  undo_.pop_back();
  state_ = std::move(s.state);
  logits_ = std::move(s.logits);
  tokens_ = std::move(s.tokens);
  unseen_tokens_ = s.unseen_tokens;
  messages_ = std::move(s.messages);
  return true;
}

void ChatSession::reset() {
  push_undo();
  start_over();
}

void ChatSession::set_system(std::string_view text) {
  push_undo();
  options_.system = clean_chat_message(text);
  start_over();
}

namespace {
// A state's history as the session keeps it: the tokens when all are known,
// else only how many there were (-1: not even that).
std::pair<std::vector<int32_t>, int64_t> known_history(std::vector<int32_t> history, int64_t token_count) {
  const bool complete = !history.empty() && (token_count < 0 || token_count == int64_t(history.size()));
  if (complete) return {std::move(history), 0};
  return {{}, token_count};
}
}  // namespace

void ChatSession::set_initial_state(State state, std::vector<int32_t> history, int64_t token_count) {
  if (!state.same_layout(model_.new_state())) throw Error("chat: the initial state does not fit this model");
  initial_ = std::move(state);
  std::tie(initial_tokens_, initial_unseen_) = known_history(std::move(history), token_count);
  undo_.clear();
  start_over();
}

void ChatSession::replace_state(State state, std::vector<int32_t> history, int64_t token_count) {
  if (!state.same_layout(model_.new_state())) throw Error("chat: the state does not fit this model");
  push_undo();
  state_ = std::move(state);
  std::tie(tokens_, unseen_tokens_) = known_history(std::move(history), token_count);
  logits_.clear();
  messages_.clear();
}

std::vector<int32_t> ChatSession::close_turn(const std::vector<int32_t>& generated) {
  // A reply that stopped at "\n\n" already ends the turn (the stop string is
  // fed, only not shown). Otherwise (end-of-text, token limit, cancelled)
  // add what is missing, so the next "User:" follows a blank line.
  const std::string raw = tokenizer_.decode_bytes(generated);
  if (raw.find("\n\n") != std::string::npos) return {};
  const size_t before = tokens_.size();
  feed(!raw.empty() && raw.back() == '\n' ? "\n" : "\n\n");
  return {tokens_.begin() + std::ptrdiff_t(before), tokens_.end()};
}

ChatReply ChatSession::reply(std::string_view user_text, const TextSink& sink) {
  const std::string message = clean_chat_message(user_text);
  if (message.empty()) throw Error("chat: the message is empty");
  const std::vector<int32_t> prompt = tokenizer_.encode(user_turn_text(message, options_.think, options_.think_length));
  GenerationOptions gen = options_.generation;
  gen.stop_strings.push_back("\n\n");
  gen.sampling.seed = seeds_();

  push_undo();
  ChatReply r;
  ReplyView view(options_.think, sink);
  try {
    r.generation = generate(model_, tokenizer_, state_, prompt, gen, [&](std::string_view t) { return view.push(t); });
    tokens_.insert(tokens_.end(), prompt.begin(), prompt.end());
    tokens_.insert(tokens_.end(), r.generation.tokens.begin(), r.generation.tokens.end());
    logits_ = std::move(r.generation.logits);
    r.closing_tokens = close_turn(r.generation.tokens);
  } catch (...) {
    undo();  // nothing of a failed turn stays (bad sampling flags, a throwing sink, ...)
    throw;
  }
  r.text = view.shown();
  messages_.push_back({ChatMessage::Role::User, message});
  messages_.push_back({ChatMessage::Role::Assistant, r.text});
  return r;
}

}  // namespace aviary
