#include "model/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "util/error.h"

namespace aviary {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Logits whose softmax is the given distribution (up to fp32 rounding).
std::vector<float> logits_of(std::initializer_list<double> probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(float(std::log(p)));
  return logits;
}

// Expects fn to throw aviary::Error whose message contains every fragment.
void expect_error(const std::function<void()>& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no aviary::Error thrown";
  } catch (const Error& e) {
    for (const std::string& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << " lacks " << f;
  }
}

// Neutral parameters: plain softmax sampling, no penalties.
SamplerParams plain(uint64_t seed = 1) {
  SamplerParams p;
  p.top_p = 1.0f;
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  p.seed = seed;
  return p;
}

// Counts draws of a seeded sampler over fixed logits.
std::vector<int> histogram(const SamplerParams& params, const std::vector<float>& logits,
                           int draws) {
  Sampler sampler(params, int32_t(logits.size()));
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> step = logits;
    ++counts[size_t(sampler.sample(step))];
  }
  return counts;
}

double chi_square(const std::vector<int>& counts, const std::vector<double>& expected_p,
                  int draws) {
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected_p[i] == 0) continue;
    const double e = expected_p[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST(Sampler, DefaultsAreTheOfficialPipelineArgs) {
  const SamplerParams p;
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_p, 0.85f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.presence_penalty, 0.2f);
  EXPECT_EQ(p.frequency_penalty, 0.2f);
  EXPECT_EQ(p.penalty_decay, 0.996f);
  EXPECT_TRUE(p.banned_tokens.empty());
  EXPECT_TRUE(p.stop_tokens.empty());
}

TEST(SampleFromLogits, TemperatureZeroIsArgmaxWithTiesToLowestId) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f};
  for (double u : {0.0, 0.5, 0.999999})
    EXPECT_EQ(sample_from_logits(logits, 0.0f, 1.0f, 0, u), 1);
  const std::vector<float> banned_top = {-kInf, 0.5f, 0.25f};
  EXPECT_EQ(sample_from_logits(banned_top, 0.0f, 0.85f, 0, 0.9), 1);
}

TEST(SampleFromLogits, TopPKeepsTokensUntilTheMassIsReached) {
  // 0.5 + 0.25 >= 0.7: cutoff 0.25, tokens {0, 1} left with weights 2/3, 1/3.
  const auto logits = logits_of({0.5, 0.25, 0.15, 0.1});
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.7f, 0, 0.0), 0);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.7f, 0, 0.66), 0);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.7f, 0, 0.67), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.7f, 0, 0.999999), 1);
  // 0.5 + 0.25 + 0.15 >= 0.8: token 2 joins, total 0.9, its share starts at 0.75/0.9.
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.8f, 0, 0.83), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.8f, 0, 0.84), 2);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.8f, 0, 0.999999), 2);
}

TEST(SampleFromLogits, TopPStopsAtAPositionThatReachesItExactly) {
  // Exactly representable: 0.5, 0.25, 0.125, 0.125. The cumulative sum hits
  // 0.75 exactly at position 1 and the official test is >=, so only {0, 1}.
  const auto logits = logits_of({0.5, 0.25, 0.125, 0.125});
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.75f, 0, 0.999999), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.76f, 0, 0.999999), 3);
}

TEST(SampleFromLogits, TopPKeepsEveryTokenTiedWithTheCutoff) {
  // 4/11, then three tokens at 2/11 (equal logits, so equal probabilities), 1/11.
  // The sum reaches 0.5 at the first 2/11; all three ties survive, 1/11 does not.
  const auto logits = logits_of({4, 2, 2, 2, 1});
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.5f, 0, 0.39), 0);  // weights 4,2,2,2 / 10
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.5f, 0, 0.41), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.5f, 0, 0.79), 2);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.5f, 0, 0.81), 3);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.5f, 0, 0.999999), 3);
}

TEST(SampleFromLogits, TopPZeroKeepsOnlyTheTopTokenAndItsTies) {
  const std::vector<float> logits = {1.0f, 5.0f, 5.0f, 2.0f};
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.0f, 0, 0.49), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.0f, 0, 0.51), 2);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.0f, 0, 0.999999), 2);
}

TEST(SampleFromLogits, TopPOneKeepsEveryToken) {
  // 1000 x 0.001 may sum to just under 1 in floating point: still all kept.
  const std::vector<float> logits(1000, 0.0f);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 0, 0.0), 0);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 0, 0.9995), 999);
}

TEST(SampleFromLogits, TopKKeepsTheKMostLikely) {
  // Tokens 1 (0.4) and 3 (0.3) survive: boundary at 0.4 / 0.7.
  const auto logits = logits_of({0.1, 0.4, 0.2, 0.3});
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.0), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.57), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.58), 3);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.999999), 3);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 1, 0.999999), 1);
}

TEST(SampleFromLogits, TopKTiesAtTheBoundaryGoToTheLowestIds) {
  const std::vector<float> logits = {1.0f, 2.0f, 2.0f, 2.0f, 0.0f};
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.49), 1);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.51), 2);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 2, 0.999999), 2);
}

TEST(SampleFromLogits, TopKAtLeastTheVocabularyIsOff) {
  const auto logits = logits_of({0.2, 0.2, 0.2, 0.2, 0.2});
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 5, 0.999999), 4);
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 1.0f, 50, 0.999999), 4);
}

TEST(SampleFromLogits, TopPAndTopKBothCut) {
  // top_p 0.8 alone keeps {0, 1, 2}; top_k 2 then drops token 2.
  const auto logits = logits_of({0.5, 0.25, 0.15, 0.1});
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.8f, 2, 0.999999), 1);
  // top_k 3 alone would keep token 2; top_p 0.7 drops it.
  EXPECT_EQ(sample_from_logits(logits, 1.0f, 0.7f, 3, 0.999999), 1);
}

TEST(SampleFromLogits, TemperatureRaisesProbabilitiesToOneOverT) {
  // T = 0.5: weights 0.25, 0.0625, 0.015625, 0.015625; boundaries at
  // 0.7273, 0.9091, 0.9545 of the total.
  const auto logits = logits_of({0.5, 0.25, 0.125, 0.125});
  EXPECT_EQ(sample_from_logits(logits, 0.5f, 1.0f, 0, 0.72), 0);
  EXPECT_EQ(sample_from_logits(logits, 0.5f, 1.0f, 0, 0.73), 1);
  EXPECT_EQ(sample_from_logits(logits, 0.5f, 1.0f, 0, 0.90), 1);
  EXPECT_EQ(sample_from_logits(logits, 0.5f, 1.0f, 0, 0.92), 2);
  EXPECT_EQ(sample_from_logits(logits, 0.5f, 1.0f, 0, 0.96), 3);
}

TEST(SampleFromLogits, TemperatureAppliesAfterTheTopPCut) {
  // Official order: top-p 0.75 on the untempered {0.5, 0.25, ...} keeps
  // {0, 1}; T = 2 then gives weights sqrt(0.5), sqrt(0.25): boundary 0.5858.
  // (Tempering first would flatten the distribution and keep all four.)
  const auto logits = logits_of({0.5, 0.25, 0.125, 0.125});
  EXPECT_EQ(sample_from_logits(logits, 2.0f, 0.75f, 0, 0.58), 0);
  EXPECT_EQ(sample_from_logits(logits, 2.0f, 0.75f, 0, 0.59), 1);
  EXPECT_EQ(sample_from_logits(logits, 2.0f, 0.75f, 0, 0.999999), 1);
}

TEST(SampleFromLogits, TinyTemperatureStillSamplesTheTopToken) {
  // p^(1/T) underflows every weight in fp32; the top token must still win.
  const std::vector<float> logits = {-50.0f, 0.0f, -1.0f};
  EXPECT_EQ(sample_from_logits(logits, 0.001f, 1.0f, 0, 0.999999), 1);
}

TEST(SampleFromLogits, RejectsUnusableInput) {
  const std::vector<float> nan = {0.0f, std::nanf("")};
  const std::vector<float> pos_inf = {0.0f, kInf};
  const std::vector<float> all_banned = {-kInf, -kInf};
  const std::vector<float> empty;
  const std::vector<float> ok = {0.0f, 1.0f};
  expect_error([&] { sample_from_logits(nan, 1.0f, 1.0f, 0, 0.5); }, {"token 1", "nan"});
  expect_error([&] { sample_from_logits(pos_inf, 1.0f, 1.0f, 0, 0.5); }, {"token 1", "inf"});
  expect_error([&] { sample_from_logits(all_banned, 1.0f, 1.0f, 0, 0.5); }, {"-inf"});
  expect_error([&] { sample_from_logits(empty, 1.0f, 1.0f, 0, 0.5); }, {"no logits"});
  expect_error([&] { sample_from_logits(ok, 1.0f, 1.0f, 0, 1.0); }, {"uniform01", "1"});
  expect_error([&] { sample_from_logits(ok, -1.0f, 1.0f, 0, 0.5); }, {"temperature", "-1"});
}

// The definition transcribed directly (full stable sort, no shortcuts), with
// the same fp32 softmax and the same draw, to check the optimised sampler.
int32_t reference_sample(const std::vector<float>& logits, float temperature, float top_p,
                         int32_t top_k, double u) {
  const size_t n = logits.size();
  const float max = *std::max_element(logits.begin(), logits.end());
  std::vector<float> p(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(logits[i] - max);
  for (float& x : p) x = float(x / sum);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  float cutoff = 0;  // top_p >= 1, or a sum that never reaches top_p: keep all
  double cumulative = 0;
  for (size_t r = 0; r < n && top_p < 1; ++r)
    if ((cumulative += p[order[r]]) >= top_p) {
      cutoff = p[order[r]];
      break;
    }
  std::vector<double> w(n, 0.0);
  for (size_t r = 0; r < n; ++r)
    if (p[order[r]] >= cutoff && (top_k == 0 || r < size_t(top_k))) w[order[r]] = p[order[r]];
  if (temperature != 1.0f)
    for (double& x : w)
      if (x > 0) x = std::exp((std::log(x) - std::log(double(p[order[0]]))) / double(temperature));
  double total = 0;
  for (double x : w) total += x;
  double acc = 0;
  int32_t last = -1;
  for (size_t i = 0; i < n; ++i) {
    if (w[i] <= 0) continue;
    acc += w[i];
    last = int32_t(i);
    if (acc > u * total) break;
  }
  return last;
}

TEST(SampleFromLogits, MatchesTheDirectDefinitionOnRandomLogits) {
  std::mt19937_64 rng(31337);
  auto uniform = [&] { return double(rng() >> 11) * 0x1.0p-53; };
  int cases = 0;
  for (size_t vocab : {size_t(7), size_t(300), size_t(5000)})
    for (double spread : {0.3, 2.0, 8.0, 30.0})
      for (bool coarse : {false, true}) {  // coarse: rounded logits, many ties
        std::vector<float> logits(vocab);
        for (float& l : logits) {
          l = float(spread * (uniform() + uniform() + uniform() - 1.5));
          if (coarse) l = std::round(l);
          if (uniform() < 0.05) l = -kInf;  // some banned tokens
        }
        logits[0] = 0.0f;  // never all banned
        for (float top_p : {0.0f, 0.3f, 0.85f, 0.99f, 1.0f})
          for (int32_t top_k : {0, 1, 3, 40})
            for (float temperature : {1.0f, 0.6f, 1.7f}) {
              const double u = uniform();
              ASSERT_EQ(sample_from_logits(logits, temperature, top_p, top_k, u),
                        reference_sample(logits, temperature, top_p, top_k, u))
                  << "vocab " << vocab << " spread " << spread << " top_p " << top_p << " top_k "
                  << top_k << " T " << temperature << " u " << u;
              ++cases;
            }
      }
  EXPECT_EQ(cases, 3 * 4 * 2 * 5 * 4 * 3);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  const std::vector<float> logits(1000, 0.0f);
  auto run = [&](uint64_t seed) {
    SamplerParams params;  // official defaults, penalties included
    params.seed = seed;
    Sampler sampler(params, 1000);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 300; ++i) {
      std::vector<float> step = logits;
      tokens.push_back(sampler.sample(step));
    }
    return tokens;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Sampler, SeededSequenceIsFixedAcrossPlatforms) {
  // Uniform over 100 tokens: token = floor(u * 100) with u from the top 53
  // bits of std::mt19937_64(2024), which the C++ standard fully specifies.
  Sampler sampler(plain(2024), 100);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 10; ++i) {
    std::vector<float> step(100, 0.0f);
    tokens.push_back(sampler.sample(step));
  }
  EXPECT_EQ(tokens, (std::vector<int32_t>{61, 79, 26, 33, 0, 14, 93, 56, 23, 53}));
}

TEST(Sampler, ResetRestartsTheSequenceAndForgetsCounts) {
  SamplerParams params;
  params.seed = 99;
  Sampler sampler(params, 50);
  auto run = [&] {
    std::vector<int32_t> tokens;
    for (int i = 0; i < 40; ++i) {
      std::vector<float> step(50, 0.0f);
      tokens.push_back(sampler.sample(step));
    }
    return tokens;
  };
  const auto first = run();
  sampler.reset();
  for (int32_t t = 0; t < 50; ++t) EXPECT_EQ(sampler.occurrence(t), 0.0);
  EXPECT_EQ(run(), first);
}

TEST(Sampler, EmpiricalFrequenciesMatchTheDistribution) {
  // Fixed seed, so deterministic; the bound is chi-square's 0.1% point.
  const int draws = 20000;
  const auto logits = logits_of({0.4, 0.3, 0.2, 0.1});
  const auto counts = histogram(plain(12345), logits, draws);
  EXPECT_LT(chi_square(counts, {0.4, 0.3, 0.2, 0.1}, draws), 16.27);  // 3 dof
}

TEST(Sampler, EmpiricalFrequenciesWithTopPAndTemperature) {
  // top_p 0.75 keeps {0, 1}; T = 2 gives them sqrt(0.5) : sqrt(0.25).
  SamplerParams params = plain(777);
  params.top_p = 0.75f;
  params.temperature = 2.0f;
  const int draws = 20000;
  const auto counts = histogram(params, logits_of({0.5, 0.25, 0.125, 0.125}), draws);
  EXPECT_EQ(counts[2] + counts[3], 0);
  const double p0 = std::sqrt(0.5) / (std::sqrt(0.5) + 0.5);
  EXPECT_LT(chi_square(counts, {p0, 1 - p0, 0, 0}, draws), 10.83);  // 1 dof
}

TEST(Sampler, BannedTokensAreNeverSampled) {
  SamplerParams params;
  params.banned_tokens = {0, 3};
  params.seed = 5;
  Sampler sampler(params, 5);
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> step = {100.0f, 0.0f, 0.0f, 100.0f, 0.0f};
    const int32_t token = sampler.sample(step);
    EXPECT_NE(token, 0);
    EXPECT_NE(token, 3);
    EXPECT_EQ(step[0], -kInf);
  }
  params.temperature = 0.0f;
  Sampler greedy(params, 5);
  std::vector<float> step = {100.0f, 0.0f, 1.0f, 100.0f, 0.0f};
  EXPECT_EQ(greedy.sample(step), 2);
}

TEST(Sampler, PenaltiesUseTheDecayedCounts) {
  SamplerParams params;  // presence 0.2, frequency 0.2, decay 0.996
  Sampler sampler(params, 5);
  sampler.accept(2);
  sampler.accept(2);
  sampler.accept(4);
  // Official order: decay all counts, then add the new token.
  const double d = 0.996f;
  const double c2 = (1.0 * d + 1.0) * d;
  EXPECT_DOUBLE_EQ(sampler.occurrence(2), c2);
  EXPECT_DOUBLE_EQ(sampler.occurrence(4), 1.0);
  EXPECT_EQ(sampler.occurrence(0), 0.0);

  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  sampler.apply_penalties(logits);
  const double presence = 0.2f, frequency = 0.2f;
  EXPECT_FLOAT_EQ(logits[2], float(1.0 - (presence + c2 * frequency)));
  EXPECT_FLOAT_EQ(logits[4], float(1.0 - (presence + 1.0 * frequency)));
  for (int i : {0, 1, 3}) EXPECT_EQ(logits[size_t(i)], 1.0f);
}

TEST(Sampler, PenaltiesSteerGreedyDecoding) {
  // Token 0 leads by 0.1; once used it pays 0.4 and token 1 wins; the next
  // step token 1 pays 0.4 while token 0's count has decayed to 0.996.
  SamplerParams params;
  params.temperature = 0.0f;
  Sampler sampler(params, 3);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 3; ++i) {
    std::vector<float> step = {1.0f, 0.9f, 0.0f};
    tokens.push_back(sampler.sample(step));
  }
  EXPECT_EQ(tokens, (std::vector<int32_t>{0, 1, 0}));
}

TEST(Sampler, StopTokensAreReportedButNotCounted) {
  SamplerParams params;
  params.temperature = 0.0f;
  params.stop_tokens = {2};
  Sampler sampler(params, 3);
  std::vector<float> step = {0.0f, 0.0f, 5.0f};
  EXPECT_EQ(sampler.sample(step), 2);
  EXPECT_TRUE(sampler.is_stop_token(2));
  EXPECT_FALSE(sampler.is_stop_token(1));
  EXPECT_FALSE(sampler.is_stop_token(-1));
  EXPECT_EQ(sampler.occurrence(2), 0.0);
  std::vector<float> again = {0.0f, 0.0f, 5.0f};
  sampler.apply_penalties(again);
  EXPECT_EQ(again[2], 5.0f);
}

TEST(Sampler, UnweightedTokensPayOnlyThePresencePenalty) {
  SamplerParams params;
  params.unweighted_tokens = {3};
  Sampler sampler(params, 4);
  sampler.accept(3);
  sampler.accept(3);
  EXPECT_EQ(sampler.occurrence(3), 0.0);
  std::vector<float> logits(4, 0.0f);
  sampler.apply_penalties(logits);
  EXPECT_EQ(logits[3], float(0.0 - double(0.2f)));
  EXPECT_EQ(logits[0], 0.0f);
}

TEST(Sampler, RejectsInvalidParameters) {
  auto with = [](const std::function<void(SamplerParams&)>& edit, int32_t vocab = 10) {
    return [=] {
      SamplerParams p;
      edit(p);
      Sampler s(p, vocab);
    };
  };
  expect_error(with([](SamplerParams& p) { p.temperature = -0.5f; }), {"temperature", "-0.5"});
  expect_error(with([](SamplerParams& p) { p.temperature = std::nanf(""); }), {"temperature"});
  expect_error(with([](SamplerParams& p) { p.top_p = 1.5f; }), {"top_p", "1.5"});
  expect_error(with([](SamplerParams& p) { p.top_p = -0.25f; }), {"top_p", "-0.25"});
  expect_error(with([](SamplerParams& p) { p.top_k = -3; }), {"top_k", "-3"});
  expect_error(with([](SamplerParams& p) { p.presence_penalty = -1; }), {"presence_penalty", "-1"});
  expect_error(with([](SamplerParams& p) { p.frequency_penalty = -2; }),
               {"frequency_penalty", "-2"});
  expect_error(with([](SamplerParams& p) { p.penalty_decay = 1.25f; }), {"penalty_decay", "1.25"});
  expect_error(with([](SamplerParams& p) { p.penalty_decay = -0.5f; }), {"penalty_decay", "-0.5"});
  expect_error(with([](SamplerParams& p) { p.banned_tokens = {1, 10}; }), {"banned_tokens", "10"});
  expect_error(with([](SamplerParams& p) { p.stop_tokens = {-1}; }), {"stop_tokens", "-1"});
  expect_error(with([](SamplerParams& p) { p.unweighted_tokens = {12}; }),
               {"unweighted_tokens", "12"});
  expect_error(with([](SamplerParams&) {}, 0), {"vocab_size", "0"});
}

TEST(Sampler, RejectsMisusedCalls) {
  Sampler sampler(SamplerParams{}, 4);
  std::vector<float> short_logits(3, 0.0f);
  expect_error([&] { sampler.sample(short_logits); }, {"3 logits", "4 tokens"});
  expect_error([&] { sampler.accept(4); }, {"token 4"});
  expect_error([&] { sampler.occurrence(-1); }, {"token -1"});
}

}  // namespace
}  // namespace aviary
