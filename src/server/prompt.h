// A request's prompt as the scheduler feeds it: tokens plus the message
// boundaries, where the text-keyed prefix state cache may start or store.
//
// Chat messages follow the official World/G1 format (model/chat.h): each
// system or user message is cleaned and rendered as "System: ...\n\n" or
// "User: ...\n\n", an assistant message in the history as
// "Assistant: <content>\n\n", and the prompt ends with "Assistant:" plus the
// G1 think prefix. Every segment is tokenized on its own and the tokens
// concatenated, so one text prefix always maps to the same tokens and a
// state cached for it is exactly what feeding it gives.
//
// The reply's content is what follows "Assistant:" with one leading space
// removed; sent back as an assistant message it renders to exactly the text
// the state after the reply (and a closing "\n\n") has seen, so the next
// turn starts from the cached state and feeds only its new message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/request.h"
#include "text/tokenizer.h"

namespace aviary::server {

struct PreparedPrompt {
  std::vector<int32_t> tokens;
  // Message boundaries: after segment i the prompt's text is
  // boundary_texts[i] and its tokens are the first boundary_tokens[i]. The
  // last boundary is the whole prompt.
  std::vector<std::string> boundary_texts;
  std::vector<size_t> boundary_tokens;
  bool cacheable = false;  // chat prompts use the prefix cache
  // Chat: how the assistant's turn opens ("", " <think", " <think></think")
  // and the history text before "Assistant:" (to key the state after the reply).
  std::string assistant_prefix;
  std::string history_text;

  const std::string& text() const { return boundary_texts.back(); }
};

// The segments of a chat prompt, in order (see above). Throws ApiError (400)
// when a system or user message is empty after cleaning.
std::vector<std::string> render_chat_segments(const ApiRequest& request);

PreparedPrompt prepare_chat_prompt(const ApiRequest& request, const Tokenizer& tokenizer);
// A completion prompt: its text (or the given ids) as one segment; an empty
// prompt starts from end-of-text, as `aviary generate` does.
PreparedPrompt prepare_completion_prompt(const ApiRequest& request, const Tokenizer& tokenizer);

// The reply's content as returned: `assistant_prefix` + the text shown,
// without one leading space.
std::string reply_content(const std::string& assistant_prefix, const std::string& shown);

// The text the next request renders for this history and reply: the key of
// the state after the reply and its closing "\n\n".
std::string reply_cache_key(const PreparedPrompt& prompt, const std::string& content);

}  // namespace aviary::server
