// The thread-safe link between one request's HTTP handler (the consumer)
// and the engine thread (the producer): text pieces in order, then exactly
// one end (finished with usage, or failed), plus a cancel flag the handler
// sets when its client goes away.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "model/generator.h"

namespace aviary::server {

struct Usage {
  int64_t prompt_tokens = 0;      // the whole prompt, cached part included
  int64_t completion_tokens = 0;  // generated tokens
  int64_t cached_tokens = 0;      // prompt tokens skipped thanks to the prefix cache
};

struct ChannelEvent {
  enum class Kind { Text, Finished, Failed } kind = Kind::Text;
  std::string text;  // Text: a piece of the reply; Failed: the error message
  StopReason stop = StopReason::Length;
  Usage usage;
};

// OpenAI's finish_reason: "length" at the token limit, otherwise "stop".
inline const char* finish_reason(StopReason r) { return r == StopReason::Length ? "length" : "stop"; }

class RequestChannel {
 public:
  // Producer side (engine thread).
  void push_text(std::string text) {
    if (text.empty()) return;
    ChannelEvent e;
    e.text = std::move(text);
    push(std::move(e));
  }
  // The end (Finished or Failed) as one event, e.g. one recorded earlier.
  void end(ChannelEvent e) { push(std::move(e)); }
  void fail(std::string message) {
    ChannelEvent e;
    e.kind = ChannelEvent::Kind::Failed;
    e.text = std::move(message);
    push(std::move(e));
  }

  // Consumer side: the next event, waiting up to `timeout`; false if none came.
  bool next(ChannelEvent& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
    out = std::move(events_.front());
    events_.pop_front();
    return true;
  }

  // The client went away: the engine stops this request at its next step.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  const std::atomic<bool>* cancel_flag() const { return &cancelled_; }

 private:
  void push(ChannelEvent e) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<ChannelEvent> events_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace aviary::server
