// The Redis tier's connection: binary-safe GET/SET/EXISTS over hiredis with
// a connect and command timeout. A Redis that is down or hung never fails or
// stalls a request for long: a failed command drops the connection, answers
// "absent", warns once per outage, and reconnection is tried again at most
// once per kRetryInterval, so the requests in between are immediate misses.
// Thread-safe (one connection, one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;
struct redisReply;

namespace aviary {

struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user, password;  // AUTH when a password is given

  std::string describe() const { return host + ":" + std::to_string(port) + (db ? "/" + std::to_string(db) : ""); }
};

// "redis://[[user]:password@]host[:port][/db]" or "host:port". Throws
// aviary::Error naming the URL and what is wrong with it.
RedisAddress parse_redis_url(const std::string& url);

class RedisClient {
 public:
  using Warn = std::function<void(const std::string&)>;
  static constexpr std::chrono::milliseconds kRetryInterval{1000};

  // Connects at once (a Redis that is down is warned about, not thrown).
  RedisClient(RedisAddress address, std::chrono::milliseconds timeout, Warn warn);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // The value, or nothing when absent or Redis is unreachable.
  std::optional<std::string> get(const std::string& key);
  // For each key whether it exists, in one round trip (all false when unreachable).
  std::vector<bool> exists(std::span<const std::string> keys);
  // SET, with an expiry when ttl_seconds > 0. False when it did not happen.
  bool set(const std::string& key, std::string_view value, int ttl_seconds);
  bool del(const std::string& key);
  // Failed commands and connection attempts, for the cache's stats.
  uint64_t errors() const;

 private:
  struct ReplyDeleter {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

  bool ensure_connected();  // with mutex_ held
  bool connect();
  void fail(const std::string& what);
  Reply command(const std::vector<std::string_view>& args);
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string_view>>& commands);

  RedisAddress address_;
  std::chrono::milliseconds timeout_;
  Warn warn_;
  mutable std::mutex mutex_;
  redisContext* context_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
  bool warned_down_ = false;
  bool warned_reply_error_ = false;
  uint64_t errors_ = 0;
};

}  // namespace aviary
