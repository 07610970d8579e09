// Continuous batching: one engine thread owns the model and runs every
// request's sequence in one shared batch. Each step it
//   1. admits waiting requests while the batch has room (starting each from
//      the longest cached prefix of its prompt),
//   2. drops sequences whose client went away,
//   3. gives prefilling sequences their next prompt chunk (at most
//      prefill_rows_per_step rows in all, but always at least one chunk) and
//      every decoding sequence its last sampled token,
//   4. runs one Model::forward_batch over all of them (the weights are read
//      once for the whole batch),
//   5. samples each sequence's next token with its own seeded sampler,
//      streams the text and retires the finished ones.
//
// A sequence's prompt chunks depend only on its own prompt (chunk size and
// message boundaries), never on what else is in the batch, and forward_batch
// equals per-sequence forward bit for bit, so a request with a fixed seed
// gives the same tokens alone or in any batch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "model/generator.h"
#include "model/model.h"
#include "server/channel.h"
#include "server/metrics.h"
#include "server/prefix_cache.h"
#include "server/prompt.h"
#include "text/tokenizer.h"

namespace aviary::server {

struct SchedulerOptions {
  int32_t max_batch = 16;                // sequences running at once
  int32_t max_queue = 64;                // requests waiting beyond those; more are refused (429)
  int64_t prefill_chunk = 128;           // prompt tokens one sequence feeds per step
  int64_t prefill_rows_per_step = 128;   // prompt tokens all sequences feed per step (at least one chunk)
};

class Scheduler {
 public:
  // `cache` may be null (no prefix cache). Model, tokenizer, metrics and
  // cache must outlive the scheduler. Nothing runs until start().
  Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options, ServerMetrics& metrics,
            PrefixCache* cache);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  // Ends the engine thread; requests still running or waiting fail with
  // "the server is shutting down".
  void stop();

  // Queues a request; its text, then its end, arrive on the returned
  // channel. Throws ApiError 429 when max_batch + max_queue requests are
  // already in the system. gen.cancel is replaced by the channel's flag.
  std::shared_ptr<RequestChannel> submit(PreparedPrompt prompt, GenerationOptions gen);

 private:
  struct Sequence;

  void run();
  void admit_waiting();
  void drop_cancelled();
  void step();
  void after_forward(Sequence& seq);
  void sample_next(Sequence& seq);
  void finish_generation(Sequence& seq, const std::string& tail, int32_t last_token);
  void start_closing(Sequence& seq, int32_t last_token);
  void end_with_finish(Sequence& seq);
  void end_with_failure(Sequence& seq, std::string message);
  void retire(std::list<std::unique_ptr<Sequence>>::iterator it);
  void free_place();
  void tell_end(Sequence& seq);
  size_t next_chunk_end(const Sequence& seq) const;

  const Model& model_;
  const Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  ServerMetrics& metrics_;
  PrefixCache* cache_;

  std::mutex mutex_;  // guards waiting_, in_system_, stopping_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  int64_t in_system_ = 0;  // waiting + running
  bool stopping_ = false;

  std::list<std::unique_ptr<Sequence>> running_;  // engine thread only, in admission order
  std::thread engine_;
};

}  // namespace aviary::server
