#include "server/responses.h"

namespace aviary::server {

using nlohmann::json;

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

namespace {

json envelope(const ResponseContext& ctx, const char* object) {
  return {{"id", ctx.id}, {"object", object}, {"created", ctx.created}, {"model", ctx.model}};
}

}  // namespace

json completion_json(const ResponseContext& ctx, const std::string& text, StopReason stop, const Usage& usage) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason(stop)}, {"logprobs", nullptr}};
  json out = envelope(ctx, ctx.chat ? "chat.completion" : "text_completion");
  if (ctx.chat) choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  else choice["text"] = text;
  out["choices"] = json::array({choice});
  out["usage"] = usage_json(usage);
  return out;
}

json chunk_json(const ResponseContext& ctx, const std::string& text, const StopReason* stop, bool first,
                bool with_usage_null) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
  if (stop) choice["finish_reason"] = finish_reason(*stop);
  if (ctx.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !stop)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  json out = envelope(ctx, ctx.chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array({choice});
  if (with_usage_null) out["usage"] = nullptr;
  return out;
}

json usage_chunk_json(const ResponseContext& ctx, const Usage& usage) {
  json out = envelope(ctx, ctx.chat ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

std::string sse_event(const json& data) {
  return "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string ChatContentView::push(std::string piece) {
  if (started_) return piece;
  piece = prefix_ + piece;
  if (piece.empty()) return piece;
  started_ = true;
  if (piece[0] == ' ') piece.erase(0, 1);
  return piece;
}

}  // namespace aviary::server
