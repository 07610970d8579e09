// Model::forward_batch against Model::forward: for every generation, a batch of
// independent sequences (decode steps, prefill chunks of any length, items
// longer than a chunk) must leave every state and logits row bit for bit as
// running each item alone does.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/test_util.h"
#include "model/model.h"
#include "util/error.h"

namespace aviary {
namespace {

// One sequence of a test batch: where it starts and what it feeds.
struct Job {
  State start;
  std::vector<int32_t> tokens;
  bool want_logits = true;
};

// What one job ends with.
struct Outcome {
  std::vector<float> state;
  std::vector<float> logits;  // empty when not wanted
};

// Exact equality of two float arrays; names the first differing element.
void expect_bitwise_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (got.empty() || std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0) return;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": first difference at " << i << ": " << got[i] << " vs " << want[i];
      return;
    }
}

class BatchForward : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = load_model(test::case_model_path(GetParam()));
    V_ = size_t(model_->config().vocab_size);
  }

  std::vector<int32_t> random_tokens(size_t n) {
    std::uniform_int_distribution<int32_t> d(0, int32_t(V_) - 1);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = d(rng_);
    return t;
  }

  // Starting states: the zero state for `variant` 0, else one advanced by a
  // prefix of 1 + variant % 9 tokens (computed once per variant).
  State start_state(int variant) {
    while (starts_.size() <= size_t(variant)) {
      State s = model_->new_state();
      std::vector<float> unused;
      if (!starts_.empty()) model_->forward(random_tokens(1 + starts_.size() % 9), s, unused);
      starts_.push_back(std::move(s));
    }
    return starts_[size_t(variant)];
  }

  Job job(size_t n_tokens, int variant, bool want_logits = true) {
    return Job{start_state(variant), random_tokens(n_tokens), want_logits};
  }

  // Each job alone through forward().
  std::vector<Outcome> run_alone(const std::vector<Job>& jobs) const {
    std::vector<Outcome> out;
    for (const Job& j : jobs) {
      State s = j.start;
      std::vector<float> logits;
      model_->forward(j.tokens, s, logits);
      out.push_back({{s.raw().begin(), s.raw().end()}, j.want_logits ? logits : std::vector<float>{}});
    }
    return out;
  }

  // All jobs in one forward_batch call.
  std::vector<Outcome> run_batch(const std::vector<Job>& jobs) const {
    std::vector<State> states;
    for (const Job& j : jobs) states.push_back(j.start);
    std::vector<Outcome> out(jobs.size());
    std::vector<Model::BatchItem> items;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].want_logits) out[i].logits.assign(V_, -1.f);
      items.push_back({jobs[i].tokens, &states[i], jobs[i].want_logits ? out[i].logits.data() : nullptr});
    }
    model_->forward_batch(items);
    for (size_t i = 0; i < jobs.size(); ++i) out[i].state.assign(states[i].raw().begin(), states[i].raw().end());
    return out;
  }

  void expect_batch_equals_alone(const std::vector<Job>& jobs) {
    const auto want = run_alone(jobs);
    const auto got = run_batch(jobs);
    for (size_t i = 0; i < jobs.size(); ++i) {
      const std::string what = "item " + std::to_string(i) + " of " + std::to_string(jobs.size()) + " (" +
                               std::to_string(jobs[i].tokens.size()) + " tokens)";
      expect_bitwise_equal(got[i].state, want[i].state, what + " state");
      expect_bitwise_equal(got[i].logits, want[i].logits, what + " logits");
    }
  }

  std::unique_ptr<Model> model_;
  size_t V_ = 0;
  std::mt19937 rng_{12345};
  std::vector<State> starts_;
};

TEST_P(BatchForward, MixedLengthsEqualEachAlone) {
  expect_batch_equals_alone({job(1, 0), job(3, 1), job(17, 2), job(130, 3)});
  expect_batch_equals_alone({job(130, 0), job(17, 4, false), job(1, 5), job(3, 0), job(1, 6)});
  expect_batch_equals_alone({job(5, 7), job(1, 0, false), job(140, 8), job(2, 1), job(17, 0), job(3, 2)});
}

TEST_P(BatchForward, ItemLongerThanAChunk) {
  const size_t C = size_t(Model::kChunkTokens);
  expect_batch_equals_alone({job(1, 1), job(2 * C + 37, 2), job(3, 0), job(C, 3), job(C + 1, 0), job(1, 4)});
  expect_batch_equals_alone({job(3 * C, 0)});
}

TEST_P(BatchForward, DecodeBatchesOfOneToForty) {
  for (size_t n = 1; n <= 40; ++n) {
    SCOPED_TRACE("batch of " + std::to_string(n));
    std::vector<Job> jobs;
    const std::vector<int32_t> same = random_tokens(1);
    for (size_t i = 0; i < n; ++i) {
      const bool same_token = (n + i) % 2 == 0;  // some share one token (and maybe a start state)
      Job j = job(1, int((i * 7 + n) % 5), /*want_logits=*/i % 3 != 1);
      if (same_token) j.tokens = same;
      jobs.push_back(std::move(j));
    }
    expect_batch_equals_alone(jobs);
  }
}

TEST_P(BatchForward, DecodeBatchLargerThanOnePass) {
  std::vector<Job> jobs;
  for (size_t i = 0; i < size_t(Model::kDecodeRows) + 20; ++i) jobs.push_back(job(1, int(i % 4), i % 10 == 0));
  expect_batch_equals_alone(jobs);
}

TEST_P(BatchForward, EmptyBatchDoesNothing) { EXPECT_NO_THROW(model_->forward_batch({})); }

// Sequence mode equals token-by-token mode exactly, not just within rounding.
TEST_P(BatchForward, SequenceModeEqualsTokenByTokenBitwise) {
  const auto tokens = random_tokens(size_t(Model::kChunkTokens) + 9);
  State seq = start_state(3), rnn = seq;
  std::vector<float> all, step, by_token;
  model_->forward(tokens, seq, all, /*all_positions=*/true);
  for (int32_t t : tokens) {
    model_->forward({&t, 1}, rnn, step);
    by_token.insert(by_token.end(), step.begin(), step.end());
  }
  expect_bitwise_equal(all, by_token, "logits");
  expect_bitwise_equal({seq.raw().begin(), seq.raw().end()}, {rnn.raw().begin(), rnn.raw().end()}, "state");
}

TEST_P(BatchForward, RejectsBadItems) {
  State a = model_->new_state(), b = model_->new_state();
  const std::vector<int32_t> toks = {1, 2};
  const std::vector<int32_t> none;
  std::vector<float> logits(V_);
  using Items = std::vector<Model::BatchItem>;
  auto error = [&](const Items& items) { return test::error_of([&] { model_->forward_batch(items); }); };

  EXPECT_EQ(error({{toks, &a, nullptr}, {none, &b, nullptr}}), "forward_batch: item 1: no tokens given");
  EXPECT_EQ(error({{toks, nullptr, logits.data()}}), "forward_batch: item 0: no state given (null)");
  EXPECT_EQ(error({{toks, &a, nullptr}, {toks, &b, nullptr}, {toks, &a, nullptr}}),
            "forward_batch: items 0 and 2 share one State; every item needs its own");
  const std::vector<int32_t> bad = {0, int32_t(V_)};
  EXPECT_EQ(error({{toks, &a, nullptr}, {bad, &b, nullptr}}),
            "forward_batch: item 1: token id " + std::to_string(V_) + " at position 1 is outside the model's "
            "vocabulary of " + std::to_string(V_));
  State other({{"x", {3}}});
  EXPECT_NE(error({{toks, &other, nullptr}}).find("forward_batch: item 0: the state has 3 floats"), std::string::npos);
  // Nothing was run: the states are untouched.
  const State zero = model_->new_state();
  EXPECT_EQ(std::memcmp(a.raw().data(), zero.raw().data(), a.raw().size_bytes()), 0);
}

TEST_P(BatchForward, ForwardRejectsAStateOfAnotherModel) {
  State other({{"x", {3}}});
  std::vector<float> logits;
  const std::vector<int32_t> toks = {1};
  EXPECT_NE(test::error_of([&] { model_->forward(toks, other, logits); }).find("forward: the state has 3 floats"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(AllCases, BatchForward, ::testing::ValuesIn(test::refdata_cases()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace aviary
