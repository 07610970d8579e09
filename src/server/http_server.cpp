// The HTTP side of `aviary serve`: routes, API keys, JSON errors, and
// turning a request's channel into a JSON body or a stream of SSE events.
#include <httplib.h>
#include <openssl/crypto.h>

#include <chrono>
#include <ctime>
#include <random>
#include <thread>

#include "server/api_error.h"
#include "server/prompt.h"
#include "server/request.h"
#include "server/responses.h"
#include "server/server.h"
#include "util/file_util.h"

namespace aviary::server {

using nlohmann::json;

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(e.to_json().dump(), "application/json");
}

// Routes as metric labels (unknown paths are one label, not one each).
std::string route_label(const std::string& path) {
  for (const char* known : {"/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions"})
    if (path == known) return path;
  return "other";
}

bool key_matches(const std::string& given, const std::string& key) {
  return given.size() == key.size() && CRYPTO_memcmp(given.data(), key.data(), key.size()) == 0;
}

}  // namespace

struct Server::Handlers {
  explicit Handlers(Server& server) : s(server) {}

  Server& s;
  std::mutex seed_mutex;
  std::mt19937_64 seeds{std::random_device{}()};
  std::atomic<uint64_t> next_id{1};

  uint64_t random_seed() {
    std::lock_guard lock(seed_mutex);
    return seeds();
  }

  bool authorized(const httplib::Request& req) const {
    if (s.options_.api_keys.empty()) return true;
    const std::string header = req.get_header_value("Authorization");
    static constexpr std::string_view kBearer = "Bearer ";
    if (header.rfind(kBearer, 0) != 0) return false;
    const std::string given = header.substr(kBearer.size());
    bool ok = false;
    for (const std::string& key : s.options_.api_keys) ok |= key_matches(given, key);
    return ok;
  }

  void models(httplib::Response& res) const {
    const json m = {{"id", s.options_.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "aviary"}};
    res.set_content(json({{"object", "list"}, {"data", json::array({m})}}).dump(), "application/json");
  }

  // Parses, validates, tokenizes and queues a request; ApiError on any problem.
  void generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    const json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) throw bad_request("the request body is not valid JSON");
    const int32_t vocab = int32_t(s.model_.config().vocab_size);
    const ApiRequest r = chat ? parse_chat_request(body, vocab, random_seed())
                              : parse_completion_request(body, vocab, random_seed());
    if (!r.model.empty() && r.model != s.options_.model_name)
      throw ApiError(404, "the model '" + r.model + "' does not exist (this server has '" + s.options_.model_name + "')",
                     "model", "model_not_found");
    PreparedPrompt prompt = chat ? prepare_chat_prompt(r, s.tokenizer_) : prepare_completion_prompt(r, s.tokenizer_);
    const int64_t limit = s.options_.max_prompt_tokens;
    if (limit > 0 && int64_t(prompt.tokens.size()) > limit)
      throw ApiError(400, "the prompt has " + std::to_string(prompt.tokens.size()) +
                              " tokens, more than this server's limit of " + std::to_string(limit),
                     chat ? "messages" : "prompt", "context_length_exceeded");
    ResponseContext ctx{chat, std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id++),
                        int64_t(std::time(nullptr)), s.options_.model_name};
    const std::string prefix = chat ? prompt.assistant_prefix : "";
    auto channel = s.scheduler_.submit(std::move(prompt), r.gen);
    if (r.stream) stream(res, std::move(ctx), std::move(channel), prefix, r.include_usage);
    else whole(res, ctx, *channel, prefix);
  }

  // Waits for the whole reply. (cpp-httplib 0.11 cannot tell that a client
  // of a non-streamed request left; the reply runs to its end.)
  static void whole(httplib::Response& res, const ResponseContext& ctx, RequestChannel& channel,
                    const std::string& prefix) {
    ChatContentView view(prefix);
    std::string text;
    ChannelEvent e;
    for (;;) {
      if (!channel.next(e, kPoll)) continue;
      if (e.kind == ChannelEvent::Kind::Text) {
        text += ctx.chat ? view.push(std::move(e.text)) : e.text;
      } else if (e.kind == ChannelEvent::Kind::Failed) {
        throw ApiError(500, e.text);
      } else {
        if (ctx.chat) text += view.push("");
        res.set_content(completion_json(ctx, text, e.stop, e.usage).dump(-1, ' ', false, json::error_handler_t::replace),
                        "application/json");
        return;
      }
    }
  }

  // Server-sent events: one chunk per text piece, a final chunk with the
  // finish_reason, the usage chunk when asked for, then [DONE]. A failed
  // write (the client left) cancels the generation.
  static void stream(httplib::Response& res, ResponseContext ctx, std::shared_ptr<RequestChannel> channel,
                     const std::string& prefix, bool include_usage) {
    struct StreamState {
      ResponseContext ctx;
      std::shared_ptr<RequestChannel> channel;
      ChatContentView view;
      bool include_usage;
      bool first = true;
    };
    auto st = std::make_shared<StreamState>(StreamState{std::move(ctx), channel, ChatContentView(prefix), include_usage});
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](size_t, httplib::DataSink& sink) {
          ChannelEvent e;
          if (!st->channel->next(e, kPoll)) {
            if (sink.is_writable()) return true;
            st->channel->cancel();
            return false;
          }
          std::string out;
          if (e.kind == ChannelEvent::Kind::Text) {
            const std::string text = st->ctx.chat ? st->view.push(std::move(e.text)) : e.text;
            if (text.empty() && !st->first) return true;
            out = sse_event(chunk_json(st->ctx, text, nullptr, st->first, st->include_usage));
            st->first = false;
          } else if (e.kind == ChannelEvent::Kind::Failed) {
            out = sse_event(ApiError(500, e.text).to_json()) + kSseDone;
          } else {
            out = sse_event(chunk_json(st->ctx, "", &e.stop, st->first, st->include_usage));
            if (st->include_usage) out += sse_event(usage_chunk_json(st->ctx, e.usage));
            out += kSseDone;
          }
          if (!sink.write(out.data(), out.size())) {
            st->channel->cancel();
            return false;
          }
          if (e.kind != ChannelEvent::Kind::Text) sink.done();
          return true;
        },
        [st](bool success) {
          if (!success) st->channel->cancel();
        });
  }
};

Server::Server(const Model& model, const Tokenizer& tokenizer, ServerOptions options, std::unique_ptr<PrefixCache> cache)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)), cache_(std::move(cache)),
      scheduler_(model, tokenizer, options_.scheduler, metrics_, cache_.get()),
      http_(std::make_unique<httplib::Server>()), handlers_(std::make_unique<Handlers>(*this)) {
  httplib::Server& http = *http_;
  // Every waiting or running request holds an HTTP thread, and idle
  // keep-alive connections hold some too.
  const size_t threads = size_t(options_.scheduler.max_batch) + size_t(options_.scheduler.max_queue) + 16;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(size_t(64) << 20);
  Handlers& h = *handlers_;

  http.set_pre_routing_handler([&h](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health" || h.authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "a valid API key is required: send the header 'Authorization: Bearer <key>'", "",
                             "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.prometheus_text(cache_ ? cache_->metrics_text() : ""), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [&h](const httplib::Request&, httplib::Response& res) { h.models(res); });
  auto generation_route = [&h](bool chat) {
    return [&h, chat](const httplib::Request& req, httplib::Response& res) {
      try {
        h.generate(req, res, chat);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, ApiError(400, e.what()));
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
      }
    };
  };
  http.Post("/v1/completions", generation_route(false));
  http.Post("/v1/chat/completions", generation_route(true));
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string what = res.status == 404 ? "no such route: " + req.method + " " + req.path
                                               : "the request failed (HTTP " + std::to_string(res.status) + ")";
    send_error(res, ApiError(res.status, what));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_request(route_label(req.path), res.status);
  });
}

Server::~Server() { stop(); }

int Server::bind() {
  const int port = options_.port == 0 ? http_->bind_to_any_port(options_.host)
                                      : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port < 0)
    throw Error("serve: cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                " (address in use, or not an address of this machine)");
  return port;
}

void Server::listen() {
  scheduler_.start();
  // Dekker-style handshake with stop(): either stop() sees `listening_` and
  // keeps stopping the socket until listen returns, or this sees the request.
  listening_ = true;
  if (!stop_requested_) http_->listen_after_bind();
  listen_done_ = true;
}

void Server::stop() {
  stop_requested_ = true;
  // httplib's stop() does nothing until its listen loop runs, so a signal
  // right after start-up must retry until the loop has seen it.
  while (listening_ && !listen_done_) {
    http_->stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  scheduler_.stop();
}

std::vector<std::string> read_api_key_file(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::string> keys;
  size_t i = 0;
  while (i <= text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string line = text.substr(i, j - i);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos && line[start] != '#') keys.push_back(line.substr(start));
    i = j + 1;
  }
  if (keys.empty()) throw error_in(path, "no API key in this file (one key per line)");
  return keys;
}

}  // namespace aviary::server
