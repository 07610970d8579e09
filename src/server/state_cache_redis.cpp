#include "server/state_cache_redis.h"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>

#include "util/error.h"

namespace aviary {

namespace {

int parse_number(const std::string& url, const std::string& text, const char* what, long max) {
  if (text.empty() || text.size() > 10 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(uint8_t(c)); }))
    throw error_in(url, std::string("bad Redis ") + what + " '" + text + "' (expected a number)");
  const long v = std::stol(text);
  if (v > max) throw error_in(url, std::string("Redis ") + what + " " + text + " is out of range");
  return int(v);
}

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{time_t(ms.count() / 1000), suseconds_t(ms.count() % 1000 * 1000)};
}

// hiredis writes to its socket with write(2): a Redis that went away would
// raise SIGPIPE and kill the whole server. Blocking it in this thread for the
// duration of a command turns that into EPIPE; a SIGPIPE raised meanwhile is
// consumed before unblocking.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

}  // namespace

RedisAddress parse_redis_url(const std::string& url) {
  std::string rest = url;
  if (const size_t scheme = rest.find("://"); scheme != std::string::npos) {
    if (rest.substr(0, scheme) != "redis")
      throw error_in(url, "unsupported Redis URL scheme '" + rest.substr(0, scheme) + "://' (expected redis://)");
    rest = rest.substr(scheme + 3);
  }
  RedisAddress a;
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    const std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string::npos)
      throw error_in(url, "a Redis URL's credentials are written user:password@ or :password@");
    a.user = userinfo.substr(0, colon);
    a.password = userinfo.substr(colon + 1);
  }
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) a.db = parse_number(url, db, "database number", 1 << 20);
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest[0] == '[') {  // [IPv6]:port
    const size_t close = rest.find(']');
    if (close == std::string::npos) throw error_in(url, "unterminated '[' in the Redis host");
    a.host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') throw error_in(url, "unexpected text after the Redis host");
  } else {
    const size_t colon = rest.find(':');
    a.host = rest.substr(0, colon);
    rest = colon == std::string::npos ? "" : rest.substr(colon);
  }
  if (!rest.empty()) a.port = parse_number(url, rest.substr(1), "port", 65535);
  if (a.host.empty()) throw error_in(url, "a Redis URL needs a host (redis://host:port[/db] or host:port)");
  if (a.port == 0) throw error_in(url, "Redis port 0 is not a port to connect to");
  return a;
}

void RedisClient::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

RedisClient::RedisClient(RedisAddress address, std::chrono::milliseconds timeout, Warn warn)
    : address_(std::move(address)), timeout_(timeout), warn_(std::move(warn)) {
  std::lock_guard lock(mutex_);
  ensure_connected();
}

RedisClient::~RedisClient() {
  if (context_) redisFree(context_);
}

void RedisClient::fail(const std::string& what) {
  ++errors_;
  if (context_) {
    redisFree(context_);
    context_ = nullptr;
  }
  next_attempt_ = std::chrono::steady_clock::now() + kRetryInterval;
  if (!warned_down_) {
    warned_down_ = true;
    warn_("state cache: Redis at " + address_.describe() + " is unreachable (" + what +
          "); its tier answers misses until it is back");
  }
}

bool RedisClient::connect() {
  context_ = redisConnectWithTimeout(address_.host.c_str(), address_.port, to_timeval(timeout_));
  if (!context_) {
    fail("cannot allocate a connection");
    return false;
  }
  if (context_->err) {
    fail(context_->errstr);
    return false;
  }
  if (redisSetTimeout(context_, to_timeval(timeout_)) != REDIS_OK) {
    fail("cannot set the command timeout");
    return false;
  }
  std::vector<std::vector<std::string_view>> setup;
  const std::string db = std::to_string(address_.db);
  if (!address_.password.empty()) {
    if (address_.user.empty())
      setup.push_back({"AUTH", address_.password});
    else
      setup.push_back({"AUTH", address_.user, address_.password});
  }
  if (address_.db) setup.push_back({"SELECT", db});
  for (const auto& args : setup) {
    Reply r = command(args);
    if (!context_) return false;  // command() failed the connection
    if (r->type == REDIS_REPLY_ERROR) {
      fail(std::string(args[0]) + " refused: " + std::string(r->str, r->len));
      return false;
    }
  }
  if (warned_down_) {
    warned_down_ = false;
    warn_("state cache: Redis at " + address_.describe() + " is reachable again");
  }
  return true;
}

bool RedisClient::ensure_connected() {
  if (context_) return true;
  if (std::chrono::steady_clock::now() < next_attempt_) return false;
  return connect();
}

RedisClient::Reply RedisClient::command(const std::vector<std::string_view>& args) {
  auto replies = pipeline({args});
  return replies.empty() ? nullptr : std::move(replies[0]);
}

std::vector<RedisClient::Reply> RedisClient::pipeline(const std::vector<std::vector<std::string_view>>& commands) {
  SigpipeBlock no_sigpipe;
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_, int(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
      fail(context_->errstr);
      return {};
    }
  }
  std::vector<Reply> replies;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(context_, &r) != REDIS_OK || !r) {
      fail(context_->errstr);  // a timeout reads "Resource temporarily unavailable"
      return {};
    }
    replies.emplace_back(static_cast<redisReply*>(r));
    if (replies.back()->type == REDIS_REPLY_ERROR) {
      ++errors_;
      if (!warned_reply_error_) {
        warned_reply_error_ = true;
        warn_("state cache: Redis at " + address_.describe() +
              " refused a command: " + std::string(replies.back()->str, replies.back()->len));
      }
    }
  }
  return replies;
}

std::optional<std::string> RedisClient::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (!ensure_connected()) return std::nullopt;
  Reply r = command({"GET", key});
  if (!r || r->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(r->str, r->len);
}

std::vector<bool> RedisClient::exists(std::span<const std::string> keys) {
  std::vector<bool> out(keys.size(), false);
  std::lock_guard lock(mutex_);
  if (keys.empty() || !ensure_connected()) return out;
  std::vector<std::vector<std::string_view>> commands;
  for (const auto& k : keys) commands.push_back({"EXISTS", k});
  const auto replies = pipeline(commands);
  for (size_t i = 0; i < replies.size(); ++i)
    out[i] = replies[i]->type == REDIS_REPLY_INTEGER && replies[i]->integer > 0;
  return out;
}

bool RedisClient::set(const std::string& key, std::string_view value, int ttl_seconds) {
  std::lock_guard lock(mutex_);
  if (!ensure_connected()) return false;
  const std::string ttl = std::to_string(ttl_seconds);
  Reply r = ttl_seconds > 0 ? command({"SET", key, value, "EX", ttl}) : command({"SET", key, value});
  return r && r->type == REDIS_REPLY_STATUS;
}

bool RedisClient::del(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (!ensure_connected()) return false;
  Reply r = command({"DEL", key});
  return r && r->type == REDIS_REPLY_INTEGER;
}

uint64_t RedisClient::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

}  // namespace aviary
