// The JSON bodies OpenAI's API answers with: whole completions, streamed
// chunks (server-sent events) and usage.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "server/channel.h"

namespace aviary::server {

// What every response object of one request shares.
struct ResponseContext {
  bool chat = false;
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

nlohmann::json usage_json(const Usage& usage);

// The whole (non-streamed) response.
nlohmann::json completion_json(const ResponseContext& ctx, const std::string& text, StopReason stop,
                               const Usage& usage);

// A streamed chunk with `text` (chat: as a content delta; `first` adds the
// role), and the finish_reason when `stop` is given. `with_usage_null` adds
// "usage": null, as OpenAI does when the final usage chunk is asked for.
nlohmann::json chunk_json(const ResponseContext& ctx, const std::string& text, const StopReason* stop, bool first,
                          bool with_usage_null);
// The final chunk of stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseContext& ctx, const Usage& usage);

// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& data);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// Chat content as returned: the assistant prefix, then the streamed text,
// without the one leading space that follows "Assistant:".
class ChatContentView {
 public:
  explicit ChatContentView(std::string assistant_prefix) : prefix_(std::move(assistant_prefix)) {}
  std::string push(std::string piece);

 private:
  std::string prefix_;
  bool started_ = false;
};

}  // namespace aviary::server
