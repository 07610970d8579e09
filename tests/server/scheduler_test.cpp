// The continuous-batching scheduler on the tiny World model: the same
// request gives the same tokens alone, in a batch and through generate();
// cancellation; the queue limit; prefix-cache use by a second chat turn.
#include <gtest/gtest.h>

#include <map>

#include "common/test_util.h"
#include "server/api_error.h"
#include "server/scheduler.h"

namespace aviary::server {
namespace {

using nlohmann::json;

const char* kCase = "v7_world_L2_C64_V65536_bf16";

struct Fixture {
  std::unique_ptr<Model> model = load_model(test::case_model_path(kCase));
  std::unique_ptr<Tokenizer> tokenizer =
      load_tokenizer((test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string());
};

Fixture& fx() {
  static Fixture f;
  return f;
}

struct Outcome {
  std::string text;
  StopReason stop = StopReason::Length;
  Usage usage;
  std::string error;
};

// Everything until the end, or "timed out" after a minute. `spin` polls
// without sleeping, to look as soon as the end arrives.
Outcome collect(RequestChannel& channel, bool spin = false) {
  Outcome o;
  ChannelEvent e;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    const auto wait = spin ? std::chrono::milliseconds(0) : std::chrono::milliseconds(60000);
    while (!channel.next(e, wait)) {
      if (!spin || std::chrono::steady_clock::now() >= deadline) {
        o.error = "timed out";
        return o;
      }
    }
    if (e.kind == ChannelEvent::Kind::Text) o.text += e.text;
    else if (e.kind == ChannelEvent::Kind::Failed) { o.error = e.text; return o; }
    else { o.stop = e.stop; o.usage = e.usage; return o; }
  }
}

GenerationOptions sampling(uint64_t seed, int32_t max_tokens) {
  GenerationOptions g;
  g.max_tokens = max_tokens;
  g.sampling.seed = seed;
  g.sampling.temperature = 1.0f;
  g.sampling.top_p = 0.9f;
  return g;
}

PreparedPrompt completion(const std::string& text) {
  ApiRequest r;
  r.prompt = text;
  return prepare_completion_prompt(r, *fx().tokenizer);
}

const std::vector<std::string> kPrompts = {
    "The quick brown fox", "Once upon a time, in a land far away, there lived a", "1 2 3 4 5",
    "Q: What is the capital of France?\nA:", "def fibonacci(n):"};

std::vector<Outcome> run_all(SchedulerOptions options, const std::vector<size_t>& which, bool together,
                             ServerMetrics& metrics) {
  Scheduler scheduler(*fx().model, *fx().tokenizer, options, metrics, nullptr);
  std::vector<Outcome> out;
  if (together) {  // all queued before the engine starts, so they share the batch from step one
    std::vector<std::shared_ptr<RequestChannel>> channels;
    for (size_t i : which) channels.push_back(scheduler.submit(completion(kPrompts[i]), sampling(100 + i, 24)));
    scheduler.start();
    for (auto& c : channels) out.push_back(collect(*c));
  } else {
    scheduler.start();
    for (size_t i : which) out.push_back(collect(*scheduler.submit(completion(kPrompts[i]), sampling(100 + i, 24))));
  }
  return out;
}

TEST(ServerScheduler, SameTextAloneInABatchAndThroughGenerate) {
  const std::vector<size_t> all = {0, 1, 2, 3, 4};
  for (int64_t chunk : {int64_t(3), int64_t(128)}) {
    SchedulerOptions options;
    options.max_batch = 8;
    options.prefill_chunk = chunk;
    options.prefill_rows_per_step = chunk;  // long prompts prefill over several steps, beside decoding ones
    ServerMetrics alone_metrics, batch_metrics;
    const std::vector<Outcome> alone = run_all(options, all, false, alone_metrics);
    const std::vector<Outcome> batch = run_all(options, all, true, batch_metrics);
    EXPECT_GT(batch_metrics.max_batch_size, 1) << "the requests never shared a pass";
    EXPECT_EQ(alone_metrics.max_batch_size, 1);
    for (size_t i = 0; i < all.size(); ++i) {
      SCOPED_TRACE("prompt " + std::to_string(i) + ", chunk " + std::to_string(chunk));
      ASSERT_EQ(alone[i].error, "");
      EXPECT_EQ(alone[i].text, batch[i].text);
      EXPECT_EQ(alone[i].usage.completion_tokens, batch[i].usage.completion_tokens);
      EXPECT_EQ(alone[i].stop, batch[i].stop);
      if (chunk == Model::kChunkTokens) {  // the same chunks as generate() feeds
        State state = fx().model->new_state();
        const PreparedPrompt p = completion(kPrompts[i]);
        std::string text;
        const GenerationResult r = generate(*fx().model, *fx().tokenizer, state, p.tokens, sampling(100 + i, 24),
                                            [&](std::string_view t) { text += t; return true; });
        EXPECT_EQ(text, alone[i].text);
        EXPECT_EQ(int64_t(r.tokens.size()), alone[i].usage.completion_tokens);
      }
    }
  }
}

TEST(ServerScheduler, UsageAndLimits) {
  ServerMetrics metrics;
  Scheduler scheduler(*fx().model, *fx().tokenizer, {}, metrics, nullptr);
  scheduler.start();
  GenerationOptions g = sampling(1, 5);
  g.stop_at_end_of_text = false;
  const Outcome o = collect(*scheduler.submit(completion("Hello"), g));
  EXPECT_EQ(o.stop, StopReason::Length);
  EXPECT_EQ(o.usage.completion_tokens, 5);
  EXPECT_EQ(o.usage.prompt_tokens, int64_t(completion("Hello").tokens.size()));
  const Outcome zero = collect(*scheduler.submit(completion("Hello"), sampling(1, 0)));
  EXPECT_EQ(zero.usage.completion_tokens, 0);
  EXPECT_EQ(zero.text, "");
}

TEST(ServerScheduler, CancelStopsTheGeneration) {
  ServerMetrics metrics;
  Scheduler scheduler(*fx().model, *fx().tokenizer, {}, metrics, nullptr);
  scheduler.start();
  GenerationOptions g = sampling(3, 100000);
  g.stop_at_end_of_text = false;
  auto channel = scheduler.submit(completion("Tell me a long story."), g);
  ChannelEvent e;
  ASSERT_TRUE(channel->next(e, std::chrono::milliseconds(60000)));
  channel->cancel();
  Outcome o = collect(*channel);
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.stop, StopReason::Cancelled);
  EXPECT_LT(o.usage.completion_tokens, 100000);
  EXPECT_EQ(metrics.cancelled, 1);
  // The engine is free again: a new request runs.
  EXPECT_EQ(collect(*scheduler.submit(completion("Hi"), sampling(1, 2))).error, "");
}

// Room for one running request and `max_queue` waiting ones.
SchedulerOptions one_place(int32_t max_queue) {
  SchedulerOptions options;
  options.max_batch = 1;
  options.max_queue = max_queue;
  return options;
}

TEST(ServerScheduler, FullQueueIsRefusedWith429) {
  ServerMetrics metrics;
  Scheduler scheduler(*fx().model, *fx().tokenizer, one_place(1), metrics, nullptr);
  auto a = scheduler.submit(completion("a"), sampling(1, 2));
  auto b = scheduler.submit(completion("b"), sampling(1, 2));
  try {
    scheduler.submit(completion("c"), sampling(1, 2));
    FAIL() << "no 429";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 429);
  }
  scheduler.start();
  EXPECT_EQ(collect(*a).error, "");
  EXPECT_EQ(collect(*b).error, "");
  EXPECT_EQ(collect(*scheduler.submit(completion("c"), sampling(1, 2))).error, "");  // room again
}

// A client that heard of its request's end and sends the next one at once
// finds the place free, even on a server with room for one request, and a
// scrape at that moment sees the end counted and nothing running.
TEST(ServerScheduler, TheEndIsToldOnlyOnceThePlaceIsFree) {
  ServerMetrics metrics;
  Scheduler scheduler(*fx().model, *fx().tokenizer, one_place(0), metrics, nullptr);
  scheduler.start();
  for (int64_t i = 1; i <= 40; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    std::shared_ptr<RequestChannel> channel;
    ASSERT_NO_THROW(channel = scheduler.submit(completion("a"), sampling(uint64_t(i), 1)));
    if (i % 2 == 0) channel->cancel();  // every other one by its client, before or during its step
    ASSERT_EQ(collect(*channel, /*spin=*/true).error, "");
    EXPECT_EQ(metrics.running, 0);
    EXPECT_EQ(metrics.finished + metrics.cancelled, i);
  }
}

TEST(ServerScheduler, StopRefusesWaitingRequests) {
  ServerMetrics metrics;
  auto scheduler = std::make_unique<Scheduler>(*fx().model, *fx().tokenizer, SchedulerOptions{}, metrics, nullptr);
  auto channel = scheduler->submit(completion("a"), sampling(1, 2));
  scheduler.reset();  // never started
  EXPECT_NE(collect(*channel).error.find("shutting down"), std::string::npos);
}

// A map standing in for the tiered cache.
class MapCache : public PrefixCache {
 public:
  std::optional<std::pair<size_t, State>> lookup(std::span<const std::string> prefixes) override {
    for (size_t i = prefixes.size(); i-- > 0;)
      if (auto it = states.find(prefixes[i]); it != states.end()) return std::make_pair(i, it->second);
    return std::nullopt;
  }
  void store(const std::string& prefix, const State& state) override { states.insert_or_assign(prefix, state); }
  std::string metrics_text() const override { return ""; }
  std::map<std::string, State> states;
};

ApiRequest chat_request(const std::string& messages_json) {
  ApiRequest r = parse_chat_request(json::parse(R"({"messages":)" + messages_json + "}"), 65536, 5);
  r.gen.max_tokens = 12;
  return r;
}

TEST(ServerScheduler, SecondChatTurnStartsFromTheCachedReply) {
  ServerMetrics metrics;
  MapCache cache;
  Scheduler scheduler(*fx().model, *fx().tokenizer, {}, metrics, &cache);
  scheduler.start();
  const ApiRequest first = chat_request(R"([{"role":"user","content":"Hi"}])");
  const PreparedPrompt p1 = prepare_chat_prompt(first, *fx().tokenizer);
  const Outcome o1 = collect(*scheduler.submit(p1, first.gen));
  ASSERT_EQ(o1.error, "");
  EXPECT_EQ(o1.usage.cached_tokens, 0);
  const std::string content = reply_content("", o1.text);

  const ApiRequest second = chat_request(R"([{"role":"user","content":"Hi"},{"role":"assistant","content":)" +
                                         json(content).dump() + R"(},{"role":"user","content":"And then?"}])");
  const PreparedPrompt p2 = prepare_chat_prompt(second, *fx().tokenizer);
  const Outcome o2 = collect(*scheduler.submit(p2, second.gen));
  ASSERT_EQ(o2.error, "");
  EXPECT_EQ(o2.usage.prompt_tokens, int64_t(p2.tokens.size()));
  // At least the first user message came from the cache; with the reply's
  // state stored, everything up to the new user message did.
  EXPECT_GE(o2.usage.cached_tokens, int64_t(p2.boundary_tokens[0]));
  if (cache.states.count(reply_cache_key(p1, content))) {
    EXPECT_EQ(o2.usage.cached_tokens, int64_t(p2.boundary_tokens[1]));
  }
  EXPECT_EQ(metrics.cache_hits, 1);
  EXPECT_EQ(metrics.prefilled_tokens, int64_t(p1.tokens.size() + p2.tokens.size()) - o2.usage.cached_tokens);
}

}  // namespace
}  // namespace aviary::server

namespace aviary::server {
namespace {

// The per-token half of generate() on its own: limits, stop strings, cancel.
TEST(ServerTokenStepper, LimitsStopsAndCancel) {
  const int32_t V = int32_t(fx().model->config().vocab_size);
  std::vector<float> logits(size_t(V), 0.f);
  const auto favour = [&](const std::string& text) {  // one token's text made certain
    std::fill(logits.begin(), logits.end(), 0.f);
    logits[size_t(fx().tokenizer->encode(text).at(0))] = 100.f;
  };
  GenerationOptions g;
  g.max_tokens = 0;
  TokenStepper none(*fx().tokenizer, V, g);
  const TokenStepper::Step s0 = none.next(logits);
  EXPECT_TRUE(s0.done);
  EXPECT_EQ(s0.token, -1);
  EXPECT_EQ(none.stop(), StopReason::Length);

  g.max_tokens = 10;
  g.sampling.temperature = 0;
  g.stop_strings = {"!?"};
  TokenStepper stops(*fx().tokenizer, V, g);
  favour("Hi");
  TokenStepper::Step s = stops.next(logits);
  EXPECT_EQ(s.text, "Hi");
  favour("!");
  s = stops.next(logits);
  EXPECT_EQ(s.text, "");  // could start the stop string: held back
  favour("?");
  s = stops.next(logits);
  EXPECT_TRUE(s.done);
  EXPECT_GE(s.token, 0);  // still to be fed, so the state covers every token
  EXPECT_EQ(s.text + s.tail, "");
  EXPECT_EQ(stops.stop(), StopReason::StopString);
  EXPECT_EQ(stops.tokens().size(), 3u);

  g.stop_strings = {};
  g.max_tokens = 2;
  g.logit_bias = {{fx().tokenizer->encode("Yes").at(0), 1000.f}};
  TokenStepper biased(*fx().tokenizer, V, g);
  favour("No");
  EXPECT_EQ(biased.next(logits).text, "Yes");
  const TokenStepper::Step last = biased.next(logits);
  EXPECT_TRUE(last.done);
  EXPECT_EQ(biased.stop(), StopReason::Length);

  std::atomic<bool> cancel{false};
  g.cancel = &cancel;
  TokenStepper cancelled(*fx().tokenizer, V, g);
  cancel = true;
  EXPECT_TRUE(cancelled.next(logits).done);
  EXPECT_EQ(cancelled.stop(), StopReason::Cancelled);

  g.logit_bias = {{V, 1.f}};
  EXPECT_NE(test::error_of([&] { TokenStepper bad(*fx().tokenizer, V, g); }).find("logit_bias"), std::string::npos);
}

}  // namespace
}  // namespace aviary::server
