#include "server/scheduler.h"

#include <malloc.h>

#include <algorithm>
#include <cassert>
#include <optional>

#include "server/api_error.h"
#include "util/error.h"

namespace aviary::server {

// One request's sequence in the batch.
struct Scheduler::Sequence {
  enum class Phase { Prefill, Decode, Closing };

  PreparedPrompt prompt;
  GenerationOptions gen;
  std::shared_ptr<RequestChannel> channel;

  std::optional<State> state;
  std::vector<float> logits;
  std::unique_ptr<TokenStepper> stepper;
  Phase phase = Phase::Prefill;
  size_t fed = 0;                 // prompt tokens in the state
  size_t cached = 0;              // of which came from the cache
  size_t store_at = 0;            // store the state once `fed` reaches this (0: never)
  std::vector<int32_t> pending;   // Decode: the sampled token; Closing: it plus "\n\n"
  std::string shown;              // the reply text streamed so far
  std::string closing_key;        // Closing: the cache key of the state after it
  size_t chunk_end = 0;           // Prefill: where this step's chunk ends
  std::optional<ChannelEvent> end;  // how it ended, told to the client once its place is free
};

Scheduler::Scheduler(const Model& model, const Tokenizer& tokenizer, SchedulerOptions options, ServerMetrics& metrics,
                     PrefixCache* cache)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics), cache_(cache) {
  if (options_.max_batch < 1) throw Error("serve: the batch must hold at least one sequence");
  if (options_.max_queue < 0) throw Error("serve: the queue length must not be negative");
  if (options_.prefill_chunk < 1) throw Error("serve: the prefill chunk must be at least one token");
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  if (!engine_.joinable()) engine_ = std::thread([this] { run(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (engine_.joinable()) engine_.join();
  // Whatever is left (never started, or stopped mid-way) ends with an error.
  for (auto& seq : running_) seq->channel->fail("the server is shutting down");
  running_.clear();
  std::lock_guard lock(mutex_);
  for (auto& seq : waiting_) seq->channel->fail("the server is shutting down");
  waiting_.clear();
  in_system_ = 0;
  metrics_.queue_length = 0;
  metrics_.running = 0;
}

std::shared_ptr<RequestChannel> Scheduler::submit(PreparedPrompt prompt, GenerationOptions gen) {
  if (prompt.tokens.empty()) throw Error("serve: a prompt needs at least one token");
  auto seq = std::make_unique<Sequence>();
  seq->channel = std::make_shared<RequestChannel>();
  gen.cancel = seq->channel->cancel_flag();
  seq->prompt = std::move(prompt);
  seq->gen = std::move(gen);
  std::shared_ptr<RequestChannel> channel = seq->channel;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw ApiError(503, "the server is shutting down");
    if (in_system_ >= int64_t(options_.max_batch) + options_.max_queue)
      throw ApiError(429, "too many requests at once (" + std::to_string(in_system_) + " running or waiting); retry later",
                     "", "rate_limit_exceeded");
    ++in_system_;
    waiting_.push_back(std::move(seq));
    metrics_.queue_length = int64_t(waiting_.size());
  }
  wake_.notify_one();
  return channel;
}

void Scheduler::run() {
  bool busy = false;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (busy && waiting_.empty() && running_.empty()) {
        // Going idle: hand the memory of finished requests (freed by many
        // HTTP threads, so spread over malloc arenas) back to the system.
        lock.unlock();
        malloc_trim(0);
        lock.lock();
        busy = false;
      }
      wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !running_.empty(); });
      if (stopping_) return;
    }
    busy = true;
    admit_waiting();
    drop_cancelled();
    if (!running_.empty()) step();
  }
}

void Scheduler::admit_waiting() {
  std::vector<std::unique_ptr<Sequence>> admitted;
  {
    std::lock_guard lock(mutex_);
    while (!waiting_.empty() && running_.size() + admitted.size() < size_t(options_.max_batch)) {
      admitted.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    metrics_.queue_length = int64_t(waiting_.size());
  }
  for (auto& seq : admitted) {
    try {
      seq->stepper = std::make_unique<TokenStepper>(tokenizer_, int32_t(model_.config().vocab_size), seq->gen);
    } catch (const Error& e) {
      end_with_failure(*seq, e.what());
      free_place();
      tell_end(*seq);
      continue;
    }
    const PreparedPrompt& p = seq->prompt;
    const size_t n = p.boundary_texts.size();
    if (cache_ && p.cacheable && n >= 2) {
      // Never the whole prompt: at least one token is fed, so logits exist.
      const std::span<const std::string> prefixes(p.boundary_texts.data(), n - 1);
      if (auto hit = cache_->lookup(prefixes)) {
        seq->state = std::move(hit->second);
        seq->fed = seq->cached = p.boundary_tokens[hit->first];
        ++metrics_.cache_hits;
      } else {
        ++metrics_.cache_misses;
      }
      // The end of the last complete message: the next turn's prefix.
      if (seq->fed < p.boundary_tokens[n - 2]) seq->store_at = p.boundary_tokens[n - 2];
    }
    if (!seq->state) seq->state = model_.new_state();
    seq->logits.resize(size_t(model_.config().vocab_size));
    metrics_.prompt_tokens += int64_t(p.tokens.size());
    metrics_.cached_tokens += int64_t(seq->cached);
    running_.push_back(std::move(seq));
  }
  metrics_.running = int64_t(running_.size());
}

// Every retired sequence has its end recorded (end_with_*). Its place is
// freed and its end counted before its client is told, so that whoever
// hears of the end (a client sending its next request to a full server, a
// /metrics scrape) finds the place free and the end counted.
void Scheduler::retire(std::list<std::unique_ptr<Sequence>>::iterator it) {
  const std::unique_ptr<Sequence> seq = std::move(*it);
  running_.erase(it);
  metrics_.running = int64_t(running_.size());
  free_place();
  tell_end(*seq);
}

void Scheduler::free_place() {
  std::lock_guard lock(mutex_);
  --in_system_;
}

void Scheduler::tell_end(Sequence& seq) {
  assert(seq.end && "a sequence ends through end_with_finish or end_with_failure first");
  ChannelEvent& end = *seq.end;
  if (end.kind == ChannelEvent::Kind::Failed) ++metrics_.failed;
  else ++(end.stop == StopReason::Cancelled ? metrics_.cancelled : metrics_.finished);
  seq.channel->end(std::move(end));
}

void Scheduler::drop_cancelled() {
  for (auto it = running_.begin(); it != running_.end();) {
    Sequence& seq = **it;
    const bool gone = seq.phase != Sequence::Phase::Closing && seq.channel->cancelled();
    if (!gone) { ++it; continue; }
    seq.stepper->cancel();
    end_with_finish(seq);
    retire(it++);
  }
}

size_t Scheduler::next_chunk_end(const Sequence& seq) const {
  size_t end = std::min(seq.prompt.tokens.size(), seq.fed + size_t(options_.prefill_chunk));
  if (seq.store_at > seq.fed) end = std::min(end, seq.store_at);
  return end;
}

void Scheduler::step() {
  std::vector<Model::BatchItem> items;
  std::vector<Sequence*> in_pass;
  int64_t prefill_budget = options_.prefill_rows_per_step;
  bool any_prefill = false;
  for (auto& ptr : running_) {
    Sequence& seq = *ptr;
    std::span<const int32_t> tokens;
    if (seq.phase == Sequence::Phase::Prefill) {
      seq.chunk_end = next_chunk_end(seq);
      const int64_t rows = int64_t(seq.chunk_end - seq.fed);
      if (any_prefill && rows > prefill_budget) continue;  // waits for a later step
      prefill_budget -= rows;
      any_prefill = true;
      tokens = std::span<const int32_t>(seq.prompt.tokens).subspan(seq.fed, seq.chunk_end - seq.fed);
    } else {
      tokens = seq.pending;
    }
    items.push_back({tokens, &*seq.state, seq.logits.data()});
    in_pass.push_back(&seq);
  }
  int64_t rows = 0;
  for (const auto& item : items) rows += int64_t(item.tokens.size());
  try {
    model_.forward_batch(items);
  } catch (const Error& e) {
    // A model error fails every sequence of the pass (their states are now undefined).
    for (auto it = running_.begin(); it != running_.end();) {
      if (std::find(in_pass.begin(), in_pass.end(), it->get()) == in_pass.end()) { ++it; continue; }
      end_with_failure(**it, e.what());
      retire(it++);
    }
    return;
  }
  ++metrics_.steps;
  metrics_.step_rows += rows;
  metrics_.last_batch_size = int64_t(items.size());
  if (int64_t(items.size()) > metrics_.max_batch_size) metrics_.max_batch_size = int64_t(items.size());

  for (Sequence* seq : in_pass) after_forward(*seq);
  for (auto it = running_.begin(); it != running_.end();) {
    const bool over = (*it)->stepper->done() && (*it)->pending.empty();
    if (over) retire(it++);
    else ++it;
  }
}

void Scheduler::after_forward(Sequence& seq) {
  switch (seq.phase) {
    case Sequence::Phase::Prefill:
      metrics_.prefilled_tokens += int64_t(seq.chunk_end - seq.fed);
      seq.fed = seq.chunk_end;
      if (cache_ && seq.store_at != 0 && seq.fed == seq.store_at) {
        const auto& b = seq.prompt.boundary_tokens;
        const size_t index = size_t(std::find(b.begin(), b.end(), seq.fed) - b.begin());
        cache_->store(seq.prompt.boundary_texts[index], *seq.state);
        ++metrics_.cache_stores;
      }
      if (seq.fed < seq.prompt.tokens.size()) return;
      seq.phase = Sequence::Phase::Decode;
      sample_next(seq);
      return;
    case Sequence::Phase::Decode:
      seq.pending.clear();
      sample_next(seq);
      return;
    case Sequence::Phase::Closing:
      cache_->store(seq.closing_key, *seq.state);
      ++metrics_.cache_stores;
      seq.pending.clear();
      end_with_finish(seq);
      return;
  }
}

void Scheduler::sample_next(Sequence& seq) {
  TokenStepper::Step step;
  try {
    step = seq.stepper->next(seq.logits);
  } catch (const Error& e) {
    seq.stepper->cancel();
    end_with_failure(seq, e.what());
    return;
  }
  seq.shown += step.text;
  seq.channel->push_text(std::move(step.text));
  if (step.token >= 0) {
    seq.pending.assign(1, step.token);
    ++metrics_.completion_tokens;
  }
  if (step.done) finish_generation(seq, step.tail, step.token);
}

void Scheduler::finish_generation(Sequence& seq, const std::string& tail, int32_t last_token) {
  seq.shown += tail;
  seq.channel->push_text(tail);
  seq.pending.clear();  // the last token needs feeding only for the cache
  if (cache_ && seq.prompt.cacheable && seq.stepper->stop() != StopReason::Cancelled) start_closing(seq, last_token);
  // With a closing step to run, the client hears of the end after it, so
  // that its next turn finds the reply's state in the cache.
  if (seq.phase != Sequence::Phase::Closing) end_with_finish(seq);
}

// The end is only recorded here: tell_end() counts it and tells the client,
// once the place is free.
void Scheduler::end_with_finish(Sequence& seq) {
  ChannelEvent& end = seq.end.emplace();
  end.kind = ChannelEvent::Kind::Finished;
  end.stop = seq.stepper->stop();
  end.usage = {int64_t(seq.prompt.tokens.size()), int64_t(seq.stepper->tokens().size()), int64_t(seq.cached)};
}

void Scheduler::end_with_failure(Sequence& seq, std::string message) {
  ChannelEvent& end = seq.end.emplace();
  end.kind = ChannelEvent::Kind::Failed;
  end.text = std::move(message);
}

// After a chat reply: the state after the reply and a closing "\n\n" is
// what the next turn's prompt starts with, keyed by the text that turn will
// render. Stored only when that text is exactly what the state has seen (not
// when a stop string ended mid-token, or a user stop string cut the reply).
void Scheduler::start_closing(Sequence& seq, int32_t last_token) {
  const std::string raw = tokenizer_.decode_bytes(seq.stepper->tokens());
  const std::string closing = raw.size() >= 2 && raw.ends_with("\n\n") ? "" : "\n\n";
  const std::string key = reply_cache_key(seq.prompt, reply_content(seq.prompt.assistant_prefix, seq.shown));
  if (key != seq.prompt.text() + raw + closing) return;
  if (last_token >= 0) seq.pending.push_back(last_token);
  const std::vector<int32_t> close = tokenizer_.encode(closing);
  seq.pending.insert(seq.pending.end(), close.begin(), close.end());
  if (seq.pending.empty()) {  // the state has seen all of it already
    cache_->store(key, *seq.state);
    ++metrics_.cache_stores;
    return;
  }
  seq.closing_key = key;
  seq.phase = Sequence::Phase::Closing;
}

}  // namespace aviary::server
