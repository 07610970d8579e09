#include "server/prompt.h"

#include "server/api_error.h"
#include "text/utf8.h"

namespace aviary::server {

std::vector<std::string> render_chat_segments(const ApiRequest& r) {
  std::vector<std::string> segments;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    const ChatMessageIn& m = r.messages[i];
    if (m.role == ChatMessage::Role::Assistant) {
      segments.push_back("Assistant: " + utf8_replace_invalid(m.content) + "\n\n");
      continue;
    }
    const std::string text = clean_chat_message(m.content);
    if (text.empty())
      throw bad_request("messages[" + std::to_string(i) + "].content is empty (after removing blank space)",
                        "messages");
    if (m.role == ChatMessage::Role::System) {
      segments.push_back(system_turn_text(text));
    } else {
      // user_turn_text ends with "\n\nAssistant:<prefix>"; only its user part
      // is this message's segment, so that the same message renders the same
      // segment whether or not it is the last one (with thinking on, each
      // carries the length hint, as each turn did when it was sent).
      const std::string turn = user_turn_text(text, r.think, r.think_length);
      segments.push_back(turn.substr(0, turn.rfind("Assistant:")));
    }
  }
  segments.push_back(std::string("Assistant:") + assistant_turn_prefix(r.think));
  return segments;
}

namespace {

void append_segment(PreparedPrompt& p, const std::string& text, const std::vector<int32_t>& ids) {
  p.tokens.insert(p.tokens.end(), ids.begin(), ids.end());
  p.boundary_texts.push_back((p.boundary_texts.empty() ? "" : p.boundary_texts.back()) + text);
  p.boundary_tokens.push_back(p.tokens.size());
}

}  // namespace

PreparedPrompt prepare_chat_prompt(const ApiRequest& r, const Tokenizer& tokenizer) {
  PreparedPrompt p;
  p.cacheable = true;
  const std::vector<std::string> segments = render_chat_segments(r);
  for (const std::string& s : segments) append_segment(p, s, tokenizer.encode(s));
  p.assistant_prefix = assistant_turn_prefix(r.think);
  p.history_text = p.boundary_texts.size() > 1 ? p.boundary_texts[p.boundary_texts.size() - 2] : "";
  return p;
}

PreparedPrompt prepare_completion_prompt(const ApiRequest& r, const Tokenizer& tokenizer) {
  PreparedPrompt p;
  if (r.prompt_ids_given) {
    append_segment(p, tokenizer.decode_bytes(r.prompt_ids), r.prompt_ids);
  } else {
    if (!is_valid_utf8(r.prompt)) throw bad_request("prompt is not valid UTF-8", "prompt");
    append_segment(p, r.prompt, tokenizer.encode(r.prompt));
  }
  if (p.tokens.empty()) p.tokens.push_back(kEndOfTextId), p.boundary_tokens.back() = 1;
  return p;
}

std::string reply_content(const std::string& assistant_prefix, const std::string& shown) {
  std::string content = assistant_prefix + shown;
  if (!content.empty() && content[0] == ' ') content.erase(0, 1);
  return content;
}

std::string reply_cache_key(const PreparedPrompt& p, const std::string& content) {
  return p.history_text + "Assistant: " + content + "\n\n";
}

}  // namespace aviary::server
