// aviary serve: the OpenAI-compatible HTTP server (src/server/server.h).
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "model/generator.h"
#include "server/server.h"
#include "util/error.h"

namespace aviary::cli {

namespace {

struct ServeOpts {
  std::string model, vocab, api_key, api_key_file, cache_dir, redis, model_name;
  size_t cache_memory = size_t(1) << 30;
  server::ServerOptions server;
};

void add_flags(CLI::App& app, ServeOpts& o) {
  server::ServerOptions& s = o.server;
  app.add_option("-m,--model", o.model, "checkpoint (.pth or .safetensors)")->required();
  app.add_option("--vocab", o.vocab, "vocabulary (default: the one a GGUF model embeds, else found next to the model)");
  app.add_option("--host", s.host, "address to listen on (0.0.0.0: every interface)")->capture_default_str();
  app.add_option("--port", s.port, "port to listen on; 0 = any free port (printed)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  auto* key = app.add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on every request but /health");
  app.add_option("--api-key-file", o.api_key_file, "like --api-key, with the keys in a file (one per line)")
      ->excludes(key);
  app.add_option("--model-name", o.model_name, "the model id clients use (default: the file's stem)");
  app.add_option("--max-batch", s.scheduler.max_batch, "sequences generated at once")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--max-queue", s.scheduler.max_queue, "requests waiting beyond the batch; more get HTTP 429")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  app.add_option("--max-prompt-tokens", s.max_prompt_tokens, "longer prompts get HTTP 400; 0 = no limit")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--ctx", s.scheduler.prefill_chunk, "prompt tokens a sequence feeds per step (prefill chunk)")
      ->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option("--cache-memory", o.cache_memory, "bytes of states the memory tier of the prefix cache keeps; 0 = off")
      ->capture_default_str();
  app.add_option("--cache-dir", o.cache_dir, "keep prefix-cache states in this directory too (survives restarts)");
  app.add_option("--redis", o.redis, "share prefix-cache states through Redis, e.g. redis://127.0.0.1:6379");
  add_threads_flag(app);
}

// SIGINT/SIGTERM are blocked in every thread and taken by one watcher,
// which stops the server from outside the signal context.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

Action add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOpts>();
  add_flags(app, *o);
  return [=] {
    server::ServerOptions options = o->server;
    if (!o->api_key.empty()) options.api_keys = {o->api_key};
    if (!o->api_key_file.empty()) options.api_keys = server::read_api_key_file(o->api_key_file);
    options.model_name = o->model_name.empty() ? std::filesystem::path(o->model).stem().string() : o->model_name;
    options.scheduler.prefill_rows_per_step = options.scheduler.prefill_chunk;

    const auto model = load_model(o->model);
    const auto tokenizer = model_tokenizer(o->vocab, o->model, *model);
    std::unique_ptr<server::PrefixCache> cache;
    if (o->cache_memory > 0 || !o->cache_dir.empty() || !o->redis.empty())
      cache = server::make_state_cache(*model, {o->cache_memory, o->cache_dir, o->redis});

    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client that left is a failed write, not a dead server
    server::Server server(*model, *tokenizer, options, std::move(cache));
    const int port = server.bind();
    std::atomic<bool> watching{true};
    std::thread watcher([&server, &watching, signals] {
      int sig = 0;
      sigwait(&signals, &sig);
      watching = false;
      server.stop();
    });
    std::printf("aviary serve: listening on http://%s:%d (model '%s')\n", options.host.c_str(), port,
                options.model_name.c_str());
    std::fflush(stdout);
    server.listen();
    // listen() also returns when the server fails; wake the watcher either way.
    if (watching) pthread_kill(watcher.native_handle(), SIGTERM);
    watcher.join();
    std::fprintf(stderr, "aviary serve: stopped\n");
    return 0;
  };
}

}  // namespace aviary::cli
