// Parsing and validating the JSON bodies of /v1/completions and
// /v1/chat/completions into what the scheduler runs. Every problem is an
// ApiError (400) naming the parameter, so a client learns what to fix.
//
// Sampling defaults: completions use the official RWKV pipeline defaults
// (temperature 1, top_p 0.85, penalties 0.2, decay 0.996), chat uses the
// official chat sampling (top_p 0.3, penalties 0.5); any field given wins.
// `n` must be 1 (several choices per request are refused with a 400: run
// several requests with different seeds instead).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/chat.h"
#include "model/generator.h"

namespace aviary::server {

struct ChatMessageIn {
  ChatMessage::Role role;
  std::string content;  // as sent (cleaning happens when rendering)
};

struct ApiRequest {
  bool chat = false;
  std::string model;  // empty: not given
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  GenerationOptions gen;       // max_tokens, sampling (with seed), stop strings, logit_bias
  // completions: the prompt as text, or as token ids when prompt_ids_given
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  bool prompt_ids_given = false;
  // chat
  std::vector<ChatMessageIn> messages;
  ThinkMode think = ThinkMode::Plain;
  ThinkLength think_length = ThinkLength::Unspecified;
};

// Defaults when a request does not say.
inline constexpr int32_t kDefaultCompletionMaxTokens = 16;  // as OpenAI's completions
inline constexpr int32_t kDefaultChatMaxTokens = 1024;

// Parses a request body (already valid JSON). `vocab_size` bounds token ids
// (logit_bias, prompt ids); `random_seed` is used when no seed is given.
ApiRequest parse_completion_request(const nlohmann::json& body, int32_t vocab_size, uint64_t random_seed);
ApiRequest parse_chat_request(const nlohmann::json& body, int32_t vocab_size, uint64_t random_seed);

}  // namespace aviary::server
