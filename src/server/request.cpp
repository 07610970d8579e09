#include "server/request.h"

#include <cmath>

#include "server/api_error.h"

namespace aviary::server {

using nlohmann::json;

std::string ApiError::type() const {
  switch (status_) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status_ >= 500 ? "server_error" : "invalid_request_error";
  }
}

json ApiError::to_json() const {
  json e = {{"message", what()}, {"type", type()}, {"param", nullptr}, {"code", nullptr}};
  if (!param_.empty()) e["param"] = param_;
  if (!code_.empty()) e["code"] = code_;
  return {{"error", e}};
}

namespace {

const char* json_type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void wrong_type(const std::string& name, const char* expected, const json& v) {
  throw bad_request(name + " must be " + expected + ", not " + json_type_name(v), name);
}

// A field that is absent or null counts as not given.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number_in(const json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number()) wrong_type(name, "a number", v);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw bad_request(name + " must be between " + json(lo).dump() + " and " + json(hi).dump() + ", not " + v.dump(),
                      name);
  return x;
}

int64_t integer_in(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    wrong_type(name, "an integer", v);
  const double x = v.get<double>();
  if (!(x >= double(lo) && x <= double(hi)))
    throw bad_request(name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " +
                          v.dump(),
                      name);
  return int64_t(x);
}

bool boolean(const json& v, const std::string& name) {
  if (!v.is_boolean()) wrong_type(name, "a boolean", v);
  return v.get<bool>();
}

std::string string_of(const json& v, const std::string& name) {
  if (!v.is_string()) wrong_type(name, "a string", v);
  return v.get<std::string>();
}

std::vector<std::string> stop_strings(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) throw bad_request("stop takes at most 4 strings", "stop");
    for (const json& s : v) out.push_back(string_of(s, "stop"));
  } else {
    wrong_type("stop", "a string or an array of strings", v);
  }
  for (const std::string& s : out)
    if (s.empty()) throw bad_request("stop strings must not be empty", "stop");
  return out;
}

std::vector<std::pair<int32_t, float>> logit_bias(const json& v, int32_t vocab_size) {
  if (!v.is_object()) wrong_type("logit_bias", "an object mapping token ids to biases", v);
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, bias] : v.items()) {
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || id < 0 || id >= vocab_size)
      throw bad_request("logit_bias: '" + key + "' is not a token id (0.." + std::to_string(vocab_size - 1) + ")",
                        "logit_bias");
    out.emplace_back(int32_t(id), float(number_in(bias, "logit_bias", -100, 100)));
  }
  return out;
}

// The fields both endpoints share.
void parse_common(const json& body, ApiRequest& r, int32_t vocab_size, uint64_t random_seed) {
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  if (const json* v = field(body, "model")) r.model = string_of(*v, "model");
  if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) wrong_type("stream_options", "an object", *v);
    if (const json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "stream_options.include_usage");
  }
  if (const json* v = field(body, "n"); v && integer_in(*v, "n", 1, 128) != 1)
    throw bad_request("n must be 1: this server returns one choice per request (send several requests, "
                      "with different seeds, for several choices)",
                      "n");
  GenerationOptions& g = r.gen;
  const char* max_name = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (const json* v = field(body, max_name)) g.max_tokens = int32_t(integer_in(*v, max_name, 0, 1 << 20));
  SamplerParams& s = g.sampling;
  if (const json* v = field(body, "temperature")) s.temperature = float(number_in(*v, "temperature", 0, 2));
  if (const json* v = field(body, "top_p")) s.top_p = float(number_in(*v, "top_p", 0, 1));
  if (const json* v = field(body, "top_k")) s.top_k = int32_t(integer_in(*v, "top_k", 0, vocab_size));
  if (const json* v = field(body, "presence_penalty")) s.presence_penalty = float(number_in(*v, "presence_penalty", -2, 2));
  if (const json* v = field(body, "frequency_penalty"))
    s.frequency_penalty = float(number_in(*v, "frequency_penalty", -2, 2));
  if (const json* v = field(body, "penalty_decay")) s.penalty_decay = float(number_in(*v, "penalty_decay", 0, 1));
  s.seed = random_seed;
  if (const json* v = field(body, "seed")) {
    if (!v->is_number_integer()) wrong_type("seed", "an integer", *v);
    s.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
  }
  if (const json* v = field(body, "stop")) g.stop_strings = stop_strings(*v);
  if (const json* v = field(body, "logit_bias")) g.logit_bias = logit_bias(*v, vocab_size);
  try {
    validate_sampler_params(s, vocab_size);
  } catch (const Error& e) {
    throw bad_request(e.what());
  }
}

std::vector<int32_t> token_ids(const json& v, int32_t vocab_size) {
  std::vector<int32_t> ids;
  for (const json& id : v) ids.push_back(int32_t(integer_in(id, "prompt", 0, vocab_size - 1)));
  return ids;
}

void parse_prompt(const json& body, ApiRequest& r, int32_t vocab_size) {
  const json* v = field(body, "prompt");
  if (!v) throw bad_request("prompt is required", "prompt");
  if (v->is_string()) {
    r.prompt = v->get<std::string>();
  } else if (v->is_array() && !v->empty() && (*v)[0].is_number()) {
    r.prompt_ids = token_ids(*v, vocab_size);
    r.prompt_ids_given = true;
  } else if (v->is_array()) {
    if (v->size() != 1) throw bad_request("prompt: one prompt per request (an array of exactly one string)", "prompt");
    r.prompt = string_of((*v)[0], "prompt");
  } else {
    wrong_type("prompt", "a string, an array of one string, or an array of token ids", *v);
  }
}

ChatMessage::Role role_of(const json& v, size_t index) {
  const std::string name = "messages[" + std::to_string(index) + "].role";
  const std::string role = string_of(v, name);
  if (role == "system" || role == "developer") return ChatMessage::Role::System;
  if (role == "user") return ChatMessage::Role::User;
  if (role == "assistant") return ChatMessage::Role::Assistant;
  throw bad_request(name + ": '" + role + "' is not a role this server knows (system, developer, user, assistant)",
                    "messages");
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string content_of(const json& v, size_t index) {
  const std::string name = "messages[" + std::to_string(index) + "].content";
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) wrong_type(name, "a string or an array of text parts", v);
  std::string text;
  for (const json& part : v) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text"))
      throw bad_request(name + ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported", "messages");
    text += string_of(part["text"], name + ".text");
  }
  return text;
}

void parse_messages(const json& body, ApiRequest& r) {
  const json* v = field(body, "messages");
  if (!v) throw bad_request("messages is required", "messages");
  if (!v->is_array()) wrong_type("messages", "an array", *v);
  if (v->empty()) throw bad_request("messages must not be empty", "messages");
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    if (!m.is_object()) wrong_type("messages[" + std::to_string(i) + "]", "an object", m);
    if (!m.contains("role")) throw bad_request("messages[" + std::to_string(i) + "].role is required", "messages");
    const json content = m.value("content", json());
    r.messages.push_back({role_of(m["role"], i), content.is_null() ? "" : content_of(content, i)});
  }
  if (r.messages.back().role != ChatMessage::Role::User)
    throw bad_request("the last message must be the user's (the reply follows it)", "messages");
}

// G1 reasoning: "think": true|false, or OpenAI's reasoning_effort
// (none/minimal: off; low, medium, high: on with that length hint).
void parse_thinking(const json& body, ApiRequest& r) {
  if (const json* v = field(body, "think")) r.think = boolean(*v, "think") ? ThinkMode::On : ThinkMode::Off;
  if (const json* v = field(body, "reasoning_effort")) {
    const std::string e = string_of(*v, "reasoning_effort");
    if (e == "none" || e == "minimal") r.think = ThinkMode::Off;
    else if (e == "low") r.think = ThinkMode::On, r.think_length = ThinkLength::Short;
    else if (e == "medium") r.think = ThinkMode::On, r.think_length = ThinkLength::Medium;
    else if (e == "high") r.think = ThinkMode::On, r.think_length = ThinkLength::Long;
    else throw bad_request("reasoning_effort must be none, minimal, low, medium or high", "reasoning_effort");
  }
}

}  // namespace

ApiRequest parse_completion_request(const json& body, int32_t vocab_size, uint64_t random_seed) {
  ApiRequest r;
  r.gen.max_tokens = kDefaultCompletionMaxTokens;
  parse_common(body, r, vocab_size, random_seed);
  parse_prompt(body, r, vocab_size);
  return r;
}

ApiRequest parse_chat_request(const json& body, int32_t vocab_size, uint64_t random_seed) {
  ApiRequest r;
  r.chat = true;
  r.gen.max_tokens = kDefaultChatMaxTokens;
  r.gen.sampling = chat_sampler_defaults();
  parse_common(body, r, vocab_size, random_seed);
  parse_messages(body, r);
  parse_thinking(body, r);
  r.gen.stop_strings.push_back("\n\n");  // a reply ends its turn at a blank line, as in the official chat
  return r;
}

}  // namespace aviary::server
