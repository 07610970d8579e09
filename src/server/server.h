// The server layer: `aviary serve`, an OpenAI-compatible HTTP API over the
// model layer.
//
//   GET  /health               {"status": "ok"} (no API key needed)
//   GET  /metrics              Prometheus text: requests, tokens, queue, batch, cache
//   GET  /v1/models            the one model served
//   POST /v1/completions       text completion, streamed (SSE) or not
//   POST /v1/chat/completions  chat in the official RWKV World/G1 format
//
// Requests run on the continuous-batching Scheduler (one engine thread owns
// the model); HTTP threads only parse, tokenize, wait and write. Errors use
// OpenAI's error JSON with the matching status (400, 401, 404, 429, 503).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "server/prefix_cache.h"
#include "server/scheduler.h"
#include "text/tokenizer.h"

namespace httplib {
class Server;
}

namespace aviary::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                     // 0: any free port (bind() says which)
  std::vector<std::string> api_keys;   // empty: no authentication
  std::string model_name = "rwkv";     // the id clients name in "model"
  int64_t max_prompt_tokens = 32768;   // longer prompts are refused (400); 0 = no limit
  SchedulerOptions scheduler;
};

class Server {
 public:
  // `cache` may be null (no prefix cache). Model and tokenizer must outlive it.
  Server(const Model& model, const Tokenizer& tokenizer, ServerOptions options, std::unique_ptr<PrefixCache> cache);
  ~Server();

  // Binds the listening socket; returns the port. Throws aviary::Error if it cannot.
  int bind();
  // Serves until stop() (from another thread or a signal watcher).
  void listen();
  void stop();

  ServerMetrics& metrics() { return metrics_; }

 private:
  struct Handlers;

  const Model& model_;
  const Tokenizer& tokenizer_;
  ServerOptions options_;
  std::unique_ptr<PrefixCache> cache_;
  ServerMetrics metrics_;
  Scheduler scheduler_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Handlers> handlers_;
  std::atomic<bool> stop_requested_{false}, listening_{false}, listen_done_{false};
};

// Reads API keys from a file: one per line; blank lines and lines starting
// with '#' are skipped. Throws aviary::Error naming the file if it cannot be
// read or holds no key.
std::vector<std::string> read_api_key_file(const std::string& path);

}  // namespace aviary::server
