#include "server/metrics.h"

namespace aviary::server {

void ServerMetrics::count_request(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, int64_t value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::to_string(value) + "\n";
}

}  // namespace

std::string ServerMetrics::prometheus_text(const std::string& extra) const {
  std::string out =
      "# HELP aviary_http_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE aviary_http_requests_total counter\n";
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, n] : requests_)
      out += "aviary_http_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) +
             "\"} " + std::to_string(n) + "\n";
  }
  metric(out, "aviary_prompt_tokens_total", "counter", "Prompt tokens of admitted requests, cached ones included.",
         prompt_tokens);
  metric(out, "aviary_prefill_tokens_total", "counter", "Prompt tokens fed to the model.", prefilled_tokens);
  metric(out, "aviary_cached_prompt_tokens_total", "counter", "Prompt tokens skipped thanks to the prefix cache.",
         cached_tokens);
  metric(out, "aviary_completion_tokens_total", "counter", "Generated tokens.", completion_tokens);
  metric(out, "aviary_prefix_cache_hits_total", "counter", "Requests that started from a cached prefix state.",
         cache_hits);
  metric(out, "aviary_prefix_cache_misses_total", "counter", "Cacheable requests that found no cached prefix.",
         cache_misses);
  metric(out, "aviary_prefix_cache_stores_total", "counter", "States stored in the prefix cache.", cache_stores);
  metric(out, "aviary_generations_finished_total", "counter", "Generations that ran to their end.", finished);
  metric(out, "aviary_generations_cancelled_total", "counter", "Generations stopped because the client went away.",
         cancelled);
  metric(out, "aviary_generations_failed_total", "counter", "Generations that failed with an error.", failed);
  metric(out, "aviary_batch_steps_total", "counter", "Batched forward passes.", steps);
  metric(out, "aviary_batch_rows_total", "counter", "Token rows carried by the batched forward passes.", step_rows);
  metric(out, "aviary_queue_length", "gauge", "Requests waiting for a place in the batch.", queue_length);
  metric(out, "aviary_running_sequences", "gauge", "Sequences in the running batch.", running);
  metric(out, "aviary_batch_size", "gauge", "Sequences in the last forward pass.", last_batch_size);
  metric(out, "aviary_batch_size_max", "gauge", "The most sequences in one forward pass so far.", max_batch_size);
  return out + extra;
}

}  // namespace aviary::server
