// The prefix state cache: longest-prefix lookup, the memory tier's LRU byte
// budget, the disk tier (restarts, damage, its own budget) and the Redis tier
// shared by replicas, against a real redis-server that each test starts.
#include "server/state_cache.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/test_util.h"
#include "model/model.h"
#include "model/state_file.h"
#include "server/state_cache_memory.h"
#include "server/state_cache_redis.h"
#include "util/error.h"

namespace aviary {
namespace {

namespace fs = std::filesystem;
using test::error_of;

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

const std::string kFp32 = "v7_tiny_L2_C128_V1000_fp32", kBf16 = "v7_tiny_L2_C128_V1000_bf16";

const Model& model_of(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  auto& m = models[name];
  if (!m) m = load_model(test::case_model_path(name));
  return *m;
}
const Model& fp32() { return model_of(kFp32); }

// The state after the first `n` tokens of the model's reference case.
State advanced(const Model& model, const std::string& name, size_t n) {
  const auto tokens = test::case_tokens(name);
  State state = model.new_state();
  std::vector<float> logits;
  model.forward({tokens.data(), std::min(n, tokens.size())}, state, logits);
  return state;
}
State advanced(size_t n) { return advanced(fp32(), kFp32, n); }

std::vector<float> floats(const State& s) { return {s.raw().begin(), s.raw().end()}; }

// Collects warnings instead of printing them.
struct Warnings {
  std::shared_ptr<std::vector<std::string>> list = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
  std::function<void(const std::string&)> sink() {
    return [list = list, mutex = mutex](const std::string& m) {
      std::lock_guard lock(*mutex);
      list->push_back(m);
    };
  }
  size_t count_of(const std::string& part) const {
    std::lock_guard lock(*mutex);
    return size_t(
        std::count_if(list->begin(), list->end(), [&](const auto& m) { return m.find(part) != std::string::npos; }));
  }
  std::string all() const {
    std::lock_guard lock(*mutex);
    std::string s;
    for (const auto& m : *list) s += m + "\n";
    return s;
  }
};

StateCacheOptions memory_only(size_t bytes, Warnings* w = nullptr) {
  StateCacheOptions o;
  o.memory_bytes = bytes;
  if (w) o.warn = w->sink();
  return o;
}

StateCacheOptions disk_only(const fs::path& dir, Warnings* w = nullptr) {
  StateCacheOptions o;
  o.memory_bytes = 0;
  o.disk_dir = dir.string();
  if (w) o.warn = w->sink();
  return o;
}

const std::vector<std::string> kTurns = {"User: hi\n\n", "User: hi\n\nAssistant: hello\n\n",
                                         "User: hi\n\nAssistant: hello\n\nUser: more\n\n"};

// --- memory tier -----------------------------------------------------------

TEST(StateCache, TheLongestCachedPrefixWinsWhateverTheOrder) {
  StateCache cache(fp32(), memory_only(size_t(1) << 26));
  const State s1 = advanced(2), s2 = advanced(4);
  cache.store(kTurns[0], s1);
  cache.store(kTurns[1], s2);
  auto hit = cache.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 1u);
  EXPECT_EQ(floats(hit->second), floats(s2));
  const std::vector<std::string> shuffled = {kTurns[2], kTurns[0], kTurns[1]};
  hit = cache.lookup(shuffled);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 2u);
  const auto st = cache.stats();
  EXPECT_EQ(st.lookups, 2u);
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.memory_hits, 2u);
  EXPECT_EQ(st.stores, 2u);
  EXPECT_EQ(st.memory_entries, 2u);
}

TEST(StateCache, UnknownPrefixesMiss) {
  StateCache cache(fp32(), memory_only(size_t(1) << 26));
  cache.store(kTurns[0], advanced(2));
  EXPECT_FALSE(cache.lookup(std::vector<std::string>{"something else", kTurns[0] + "x"}));
  EXPECT_FALSE(cache.lookup({}));
  const std::string with_nul("User: hi\0\n\n", 11);  // arbitrary bytes are keys too
  EXPECT_FALSE(cache.lookup(std::vector<std::string>{with_nul}));
  const auto st = cache.stats();
  EXPECT_EQ(st.misses, 3u);
  EXPECT_EQ(st.hits, 0u);
}

TEST(StateCache, TheHitIsACopy) {
  StateCache cache(fp32(), memory_only(size_t(1) << 26));
  const State s = advanced(3);
  cache.store(kTurns[0], s);
  auto hit = cache.lookup(std::vector<std::string>{kTurns[0]});
  ASSERT_TRUE(hit);
  std::vector<float> logits;
  fp32().forward(std::vector<int32_t>{1, 2}, hit->second, logits);  // the caller continues from it
  EXPECT_EQ(floats(cache.lookup(std::vector<std::string>{kTurns[0]})->second), floats(s));
}

TEST(StateCache, MemoryTierEvictsTheLeastRecentlyUsedByBytes) {
  const State s = advanced(2);
  const size_t entry = MemoryStateLru::cost(std::string(64, 'k'), s);
  StateCache cache(fp32(), memory_only(2 * entry + entry / 2));  // room for two
  cache.store("a", advanced(1));
  cache.store("b", advanced(2));
  ASSERT_TRUE(cache.lookup(std::vector<std::string>{"a"}));  // "a" is now the most recent
  cache.store("c", advanced(3));                             // evicts "b"
  EXPECT_TRUE(cache.lookup(std::vector<std::string>{"a"}));
  EXPECT_FALSE(cache.lookup(std::vector<std::string>{"b"}));
  EXPECT_TRUE(cache.lookup(std::vector<std::string>{"c"}));
  const auto st = cache.stats();
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_EQ(st.memory_entries, 2u);
  EXPECT_EQ(st.memory_bytes, 2 * entry);
  EXPECT_LE(st.memory_bytes, 2 * entry + entry / 2);
}

TEST(StateCache, AStateLargerThanTheMemoryBudgetIsNotKept) {
  StateCache cache(fp32(), memory_only(1000));
  cache.store("a", advanced(1));
  EXPECT_FALSE(cache.lookup(std::vector<std::string>{"a"}));
  EXPECT_EQ(cache.stats().memory_bytes, 0u);
}

TEST(StateCache, StoringAStateOfAnotherLayoutIsAnError) {
  StateCache cache(fp32(), memory_only(size_t(1) << 26));
  const auto& v4 = model_of("v4_tiny_L2_C128_V1000_fp32");
  EXPECT_HAS(error_of([&] { cache.store("a", v4.new_state()); }), "does not have the layout");
}

TEST(StateCache, ConcurrentStoresAndLookupsAreSafe) {
  test::TempDir tmp;
  StateCacheOptions o = disk_only(tmp.path());
  o.memory_bytes = 3 * MemoryStateLru::cost(std::string(64, 'k'), advanced(1));  // forces evictions
  StateCache cache(fp32(), o);
  const std::vector<State> states = {advanced(1), advanced(2), advanced(3), advanced(4)};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const size_t k = size_t(t + i) % states.size();
        cache.store("p" + std::to_string(k), states[k]);
        auto hit = cache.lookup(std::vector<std::string>{"p" + std::to_string((k + 1) % states.size())});
        if (hit) {
          EXPECT_EQ(floats(hit->second), floats(states[(k + 1) % states.size()]));
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.stats().stores, 40u);
}

// --- disk tier -------------------------------------------------------------

TEST(StateCacheDisk, SurvivesARestartAndIsPromotedIntoMemory) {
  test::TempDir tmp;
  const State s = advanced(4);
  StateCacheOptions o = disk_only(tmp.path());
  o.memory_bytes = size_t(1) << 26;
  {
    StateCache first(fp32(), o);
    first.store(kTurns[1], s);
    EXPECT_TRUE(fs::exists(first.disk_path_of(kTurns[1])));
  }
  StateCache restarted(fp32(), o);
  auto hit = restarted.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 1u);
  EXPECT_EQ(floats(hit->second), floats(s));
  EXPECT_EQ(restarted.stats().disk_hits, 1u);
  EXPECT_EQ(restarted.stats().memory_entries, 1u);
  fs::remove(restarted.disk_path_of(kTurns[1]));  // now only memory has it
  hit = restarted.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(restarted.stats().memory_hits, 1u);
}

TEST(StateCacheDisk, ALongerPrefixOnDiskBeatsAShorterOneInMemory) {
  test::TempDir tmp;
  StateCacheOptions o = disk_only(tmp.path());
  {
    StateCache writer(fp32(), o);
    writer.store(kTurns[2], advanced(6));
  }
  o.memory_bytes = size_t(1) << 26;
  StateCache cache(fp32(), o);
  cache.store(kTurns[0], advanced(2));
  auto hit = cache.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 2u);
  EXPECT_EQ(cache.stats().disk_hits, 1u);
}

TEST(StateCacheDisk, DamagedEntriesAreMissesWarnedAboutOnce) {
  test::TempDir tmp;
  Warnings w;
  StateCache cache(fp32(), disk_only(tmp.path(), &w));
  cache.store(kTurns[0], advanced(2));
  cache.store(kTurns[1], advanced(4));
  cache.store(kTurns[2], advanced(6));
  const std::string good = test::read_bytes(cache.disk_path_of(kTurns[0]));
  std::string flipped = good;
  flipped[good.size() / 2] = char(flipped[good.size() / 2] ^ 0x40);
  test::write_bytes(cache.disk_path_of(kTurns[2]), flipped);
  test::write_bytes(cache.disk_path_of(kTurns[1]), good.substr(0, 100));
  // The two longest are damaged: the lookup falls back to the shortest.
  auto hit = cache.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 0u);
  test::write_bytes(cache.disk_path_of(kTurns[0]), "garbage");
  EXPECT_FALSE(cache.lookup(kTurns));
  EXPECT_EQ(cache.stats().bad_entries, 3u);
  EXPECT_EQ(w.count_of("damaged or foreign"), 1u) << w.all();
  EXPECT_FALSE(fs::exists(cache.disk_path_of(kTurns[2]))) << "a damaged entry is removed";
  cache.store(kTurns[2], advanced(6));  // and written afresh by the next store
  EXPECT_EQ(cache.lookup(kTurns)->first, 2u);
}

TEST(StateCacheDisk, AStateOfAnotherModelNeverHits) {
  test::TempDir tmp;
  Warnings w;
  StateCache fp32_cache(fp32(), disk_only(tmp.path()));
  StateCache bf16_cache(model_of(kBf16), disk_only(tmp.path(), &w));
  fp32_cache.store(kTurns[0], advanced(2));
  EXPECT_FALSE(bf16_cache.lookup(kTurns));  // another fingerprint, another key
  EXPECT_NE(fp32_cache.key_of(kTurns[0]), bf16_cache.key_of(kTurns[0]));
  // Even an fp32 entry planted under the bf16 key is refused by its fingerprint.
  fs::copy_file(fp32_cache.disk_path_of(kTurns[0]), bf16_cache.disk_path_of(kTurns[0]));
  EXPECT_FALSE(bf16_cache.lookup(kTurns));
  EXPECT_EQ(bf16_cache.stats().bad_entries, 1u);
  EXPECT_EQ(w.count_of("other weights"), 1u) << w.all();
  EXPECT_TRUE(fp32_cache.lookup(kTurns));
}

TEST(StateCacheDisk, ItsBudgetEvictsTheLeastRecentlyUsedFiles) {
  test::TempDir tmp;
  StateCacheOptions o = disk_only(tmp.path());
  StateCache probe(fp32(), o);
  probe.store("a", advanced(1));
  const size_t entry = fs::file_size(probe.disk_path_of("a"));
  o.disk_bytes = 2 * entry + entry / 2;
  StateCache cache(fp32(), o);
  cache.store("b", advanced(2));
  // File times are coarse; set them so the order is certain: "b" newest,
  // then "a" is read (a hit makes it the most recent), so "b" goes first.
  const auto now = fs::file_time_type::clock::now();
  fs::last_write_time(cache.disk_path_of("a"), now - std::chrono::seconds(200));
  fs::last_write_time(cache.disk_path_of("b"), now - std::chrono::seconds(100));
  ASSERT_TRUE(cache.lookup(std::vector<std::string>{"a"}));
  cache.store("c", advanced(3));
  EXPECT_TRUE(fs::exists(cache.disk_path_of("a")));
  EXPECT_FALSE(fs::exists(cache.disk_path_of("b")));
  EXPECT_TRUE(fs::exists(cache.disk_path_of("c")));
  EXPECT_EQ(cache.stats().disk_evictions, 1u);
}

TEST(StateCacheDisk, OtherFilesInTheDirectoryAreLeftAlone) {
  test::TempDir tmp;
  test::write_bytes(tmp / "notes.txt", std::string(1 << 20, 'x'));
  StateCacheOptions o = disk_only(tmp.path());
  o.disk_bytes = 1;  // nothing of ours fits
  StateCache cache(fp32(), o);
  cache.store("a", advanced(1));
  EXPECT_TRUE(fs::exists(tmp / "notes.txt"));
  EXPECT_FALSE(fs::exists(cache.disk_path_of("a")));
}

TEST(StateCacheDisk, ABadDirectoryIsAClearError) {
  test::TempDir tmp;
  test::write_bytes(tmp / "file", "x");
  EXPECT_HAS(error_of([&] { StateCache(fp32(), disk_only(tmp / "file")); }), (tmp / "file").string());
  EXPECT_HAS(error_of([&] { StateCache(fp32(), disk_only(tmp / "file" / "sub")); }), "cannot create");
  StateCache nested(fp32(), disk_only(tmp / "new" / "nested"));  // created as needed
  EXPECT_TRUE(fs::is_directory(tmp / "new" / "nested"));
}

TEST(StateCacheDisk, AFailedWriteIsWarnedAboutNotThrown) {
  test::TempDir tmp;
  Warnings w;
  StateCacheOptions o = disk_only(tmp / "cache", &w);
  o.memory_bytes = size_t(1) << 26;
  StateCache cache(fp32(), o);
  fs::remove_all(tmp / "cache");
  cache.store("a", advanced(1));
  cache.store("b", advanced(1));
  EXPECT_EQ(w.count_of("cannot write to the disk tier"), 1u) << w.all();
  EXPECT_TRUE(cache.lookup(std::vector<std::string>{"a"}));  // memory still has it
}

// --- Redis tier ------------------------------------------------------------

TEST(RedisUrl, FormsAndErrors) {
  auto a = parse_redis_url("redis://cache.local:7000/3");
  EXPECT_EQ(a.host, "cache.local");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.db, 3);
  a = parse_redis_url("127.0.0.1:6380");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 0);
  a = parse_redis_url("redis://:s3cret@h");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.password, "s3cret");
  EXPECT_EQ(parse_redis_url("redis://[::1]:7001").host, "::1");
  EXPECT_HAS(error_of([] { parse_redis_url("http://h:1"); }), "unsupported Redis URL scheme");
  EXPECT_HAS(error_of([] { parse_redis_url("redis://h:port"); }), "bad Redis port 'port'");
  EXPECT_HAS(error_of([] { parse_redis_url("h:70000"); }), "out of range");
  EXPECT_HAS(error_of([] { parse_redis_url("redis://:6379"); }), "needs a host");
  EXPECT_HAS(error_of([] { parse_redis_url("redis://h:1/x"); }), "database number");
  StateCacheOptions o;
  o.redis_url = "redis://h:nope";
  EXPECT_HAS(error_of([&] { StateCache(fp32(), o); }), "redis://h:nope");
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(uint16_t(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A private redis-server on a free port, killed by the destructor.
class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";

  RedisServer() {
    if (::access(kBinary, X_OK) != 0) return;
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) start_on(free_port());
  }
  ~RedisServer() { stop(); }

  bool running() const { return pid_ > 0; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  void start_on(int port) {
    const std::string p = std::to_string(port);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(kBinary, "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--daemonize", "no", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid < 0) return;
    for (int i = 0; i < 500; ++i) {                         // up to 10 s for it to listen
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return;  // died (the port was taken meanwhile?)
      if (accepts_connections(port)) {
        pid_ = pid;
        port_ = port;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  pid_t pid_ = -1;
  int port_ = 0;
};

#define START_REDIS(server)                                                                          \
  RedisServer server;                                                                                \
  if (!server.running()) {                                                                           \
    if (std::getenv("CI")) FAIL() << "cannot start " << RedisServer::kBinary << " (required in CI)"; \
    GTEST_SKIP() << "no " << RedisServer::kBinary << " to test the Redis tier against";              \
  }

StateCacheOptions redis_only(const RedisServer& server, Warnings* w = nullptr) {
  StateCacheOptions o;
  o.memory_bytes = 0;
  o.redis_url = server.url();
  o.redis_timeout_ms = 500;
  if (w) o.warn = w->sink();
  return o;
}

// Runs `f` on another thread and fails the test if it has not returned
// within a generous bound: a hang check, not a speed test.
template <class F>
auto returns_within_a_minute(F f) {
  auto result = std::async(std::launch::async, std::move(f));
  EXPECT_EQ(result.wait_for(std::chrono::seconds(60)), std::future_status::ready) << "hung";
  return result.get();
}

TEST(StateCacheRedis, ReplicasContinueEachOthersConversations) {
  START_REDIS(server);
  test::TempDir tmp;
  StateCache replica_a(fp32(), redis_only(server));
  StateCacheOptions o = redis_only(server);
  o.memory_bytes = size_t(1) << 26;
  o.disk_dir = tmp.path().string();
  StateCache replica_b(fp32(), o);
  const State s = advanced(4);
  replica_a.store(kTurns[1], s);
  auto hit = replica_b.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 1u);
  EXPECT_EQ(floats(hit->second), floats(s));
  EXPECT_EQ(replica_b.stats().redis_hits, 1u);
  // Promoted into replica B's memory and disk tiers.
  EXPECT_TRUE(fs::exists(replica_b.disk_path_of(kTurns[1])));
  ASSERT_TRUE(replica_b.lookup(kTurns));
  EXPECT_EQ(replica_b.stats().memory_hits, 1u);
  // And back the other way.
  replica_b.store(kTurns[2], advanced(6));
  hit = replica_a.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 2u);
  EXPECT_EQ(floats(hit->second), floats(advanced(6)));
}

TEST(StateCacheRedis, ADamagedOrForeignEntryIsAMiss) {
  START_REDIS(server);
  Warnings w;
  StateCache cache(fp32(), redis_only(server, &w));
  RedisClient direct(parse_redis_url(server.url()), std::chrono::seconds(2), [](const std::string&) {});
  const std::string key = StateCache::kRedisKeyPrefix + cache.key_of(kTurns[0]);
  ASSERT_TRUE(direct.set(key, "not a state", 0));
  EXPECT_FALSE(cache.lookup(kTurns));
  const auto& bf16 = model_of(kBf16);
  ASSERT_TRUE(direct.set(key, serialize_state_file(bf16, advanced(bf16, kBf16, 2)), 0));
  EXPECT_FALSE(cache.lookup(kTurns));
  EXPECT_EQ(cache.stats().bad_entries, 2u);
  EXPECT_EQ(w.count_of("damaged or foreign"), 1u) << w.all();
}

TEST(StateCacheRedis, EntriesGetTheConfiguredExpiry) {
  START_REDIS(server);
  StateCacheOptions o = redis_only(server);
  o.redis_ttl_seconds = 100;
  StateCache with_ttl(fp32(), o);
  with_ttl.store(kTurns[0], advanced(2));
  StateCache without(fp32(), redis_only(server));
  without.store(kTurns[1], advanced(4));
  auto ttl_of = [&](const std::string& prefix) {
    redisContext* c = redisConnect("127.0.0.1", server.port());
    EXPECT_TRUE(c && !c->err);
    const std::string key = StateCache::kRedisKeyPrefix + with_ttl.key_of(prefix);
    auto* r = static_cast<redisReply*>(redisCommand(c, "TTL %b", key.data(), key.size()));
    const long long ttl = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ttl;
  };
  const long long ttl = ttl_of(kTurns[0]);
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 100);
  EXPECT_EQ(ttl_of(kTurns[1]), -1) << "no expiry";
}

TEST(StateCacheRedis, ARedisThatStopsMakesMissesNotErrors) {
  START_REDIS(server);
  Warnings w;
  StateCache cache(fp32(), redis_only(server, &w));
  cache.store(kTurns[0], advanced(2));
  ASSERT_TRUE(cache.lookup(kTurns));
  server.stop();
  returns_within_a_minute([&] {
    for (int i = 0; i < 5; ++i) {
      EXPECT_FALSE(cache.lookup(kTurns));
      cache.store(kTurns[1], advanced(4));  // no throw, no SIGPIPE
    }
  });
  EXPECT_EQ(w.count_of("unreachable"), 1u) << w.all();
  EXPECT_GE(cache.stats().redis_errors, 1u);
  EXPECT_EQ(cache.stats().misses, 5u);
}

TEST(StateCacheRedis, AHungRedisTimesOutAndIsUsedAgainWhenBack) {
  START_REDIS(server);
  Warnings w;
  StateCache cache(fp32(), redis_only(server, &w));
  cache.store(kTurns[0], advanced(2));
  server.pause();
  returns_within_a_minute([&] {
    EXPECT_FALSE(cache.lookup(kTurns));  // the command times out
    EXPECT_FALSE(cache.lookup(kTurns));  // and the next ones do not wait again
  });
  EXPECT_EQ(w.count_of("unreachable"), 1u) << w.all();
  server.resume();
  std::this_thread::sleep_for(RedisClient::kRetryInterval + std::chrono::milliseconds(200));
  const auto hit = cache.lookup(kTurns);
  ASSERT_TRUE(hit);
  EXPECT_EQ(w.count_of("reachable again"), 1u) << w.all();
}

TEST(StateCacheRedis, ARedisDownAtStartIsAWarningNotAnError) {
  Warnings w;
  StateCacheOptions o;
  o.memory_bytes = 0;
  o.redis_url = "127.0.0.1:" + std::to_string(free_port());  // nothing listens there
  o.warn = w.sink();
  StateCache cache(fp32(), o);
  EXPECT_FALSE(cache.lookup(kTurns));
  cache.store(kTurns[0], advanced(2));
  EXPECT_EQ(w.count_of("unreachable"), 1u) << w.all();
}

}  // namespace
}  // namespace aviary
