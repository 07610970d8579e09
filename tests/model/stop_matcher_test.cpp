#include "model/stop_matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/error.h"

namespace aviary {
namespace {

struct Outcome {
  std::vector<std::string> emitted;  // per push, then the flush if not stopped
  bool stopped = false;
  std::string joined() const {
    std::string all;
    for (const std::string& s : emitted) all += s;
    return all;
  }
};

// Feeds the pieces in order, stopping at the first stop like a generation loop.
Outcome feed(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher matcher(stops);
  Outcome out;
  for (const std::string& piece : pieces) {
    StopMatcher::Result r = matcher.push(piece);
    out.emitted.push_back(r.text);
    if (r.stopped) {
      out.stopped = true;
      return out;
    }
  }
  out.emitted.push_back(matcher.flush());
  return out;
}

std::vector<std::string> bytes_of(const std::string& text) {
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  return pieces;
}

TEST(StopMatcher, WithoutStopStringsEverythingPassesThrough) {
  StopMatcher matcher({});
  EXPECT_EQ(matcher.push("hello").text, "hello");
  EXPECT_FALSE(matcher.push(" world").stopped);
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, StopInsideOnePushEmitsOnlyTheTextBefore) {
  StopMatcher matcher({"\nUser:"});
  const auto r = matcher.push("Hi there\nUser: more");
  EXPECT_EQ(r.text, "Hi there");
  EXPECT_TRUE(r.stopped);
  EXPECT_TRUE(matcher.stopped());
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, StopSplitAcrossPushesIsHeldThenDropped) {
  StopMatcher matcher({"\nUser:"});
  auto r = matcher.push("Hello\nUs");
  EXPECT_EQ(r.text, "Hello");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(matcher.held(), "\nUs");
  r = matcher.push("er");
  EXPECT_EQ(r.text, "");
  EXPECT_FALSE(r.stopped);
  r = matcher.push(": bye");
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, AFalseStartIsReleasedOnTheNextPush) {
  StopMatcher matcher({"\nUser:"});
  EXPECT_EQ(matcher.push("Hello\nUs").text, "Hello");
  const auto r = matcher.push("ually fine");
  EXPECT_EQ(r.text, "\nUsually fine");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(matcher.held(), "");
}

TEST(StopMatcher, HoldsOnlyTheTailThatCouldStillMatch) {
  StopMatcher matcher({"abcd"});
  EXPECT_EQ(matcher.push("xxabc").text, "xx");
  EXPECT_EQ(matcher.held(), "abc");
  // "abcab": "abc" failed, but "ab" may still start a match.
  EXPECT_EQ(matcher.push("ab").text, "abc");
  EXPECT_EQ(matcher.held(), "ab");
}

TEST(StopMatcher, SelfOverlappingPrefixIsFound) {
  // "aaab" contains "aab" starting at 1: the first 'a' is safe, the rest is not.
  const Outcome out = feed({"aab"}, {"a", "a", "a", "b", "tail"});
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.joined(), "a");
  EXPECT_EQ(out.emitted, (std::vector<std::string>{"", "", "a", ""}));
}

TEST(StopMatcher, FirstStopStringToCompleteWins) {
  // "\n\n" completes before "###" would.
  EXPECT_EQ(feed({"###", "\n\n"}, {"a\n\n###"}).joined(), "a");
  EXPECT_EQ(feed({"###", "\n\n"}, {"a###\n\n"}).joined(), "a");
  // "c" completes before the longer "abcde" could; the stream cannot wait.
  EXPECT_EQ(feed({"abcde", "c"}, {"xabcde"}).joined(), "xab");
  // Same last byte: the longer stop string, starting earlier, wins.
  EXPECT_EQ(feed({"bc", "abc"}, {"xabc"}).joined(), "x");
}

TEST(StopMatcher, ResultDoesNotDependOnHowTheTextIsSplit) {
  const std::vector<std::vector<std::string>> stop_sets = {
      {"\nUser:"}, {"aab"}, {"###", "\n\n"}, {"abcde", "c"}, {"bc", "abc"}, {"ab", "ba"}};
  const std::vector<std::string> texts = {"Hello\nUsually\nUser: x", "aaaab", "a#b##\n#\n\nz",
                                          "xxabcdexc", "zabcq", "no match here", "bbaab"};
  for (const auto& stops : stop_sets) {
    for (const std::string& text : texts) {
      const Outcome whole = feed(stops, {text});
      const Outcome bytes = feed(stops, bytes_of(text));
      EXPECT_EQ(bytes.joined(), whole.joined()) << text;
      EXPECT_EQ(bytes.stopped, whole.stopped) << text;
      for (size_t i = 0; i <= text.size(); ++i) {
        for (size_t j = i; j <= text.size(); ++j) {
          const Outcome split =
              feed(stops, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
          EXPECT_EQ(split.joined(), whole.joined()) << text << " split at " << i << "," << j;
          EXPECT_EQ(split.stopped, whole.stopped) << text << " split at " << i << "," << j;
        }
      }
    }
  }
}

TEST(StopMatcher, FlushReleasesTheHeldTailOnce) {
  StopMatcher matcher({"\nUser:"});
  EXPECT_EQ(matcher.push("The end\nUse").text, "The end");
  EXPECT_EQ(matcher.flush(), "\nUse");
  EXPECT_EQ(matcher.flush(), "");
  EXPECT_EQ(matcher.held(), "");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcher, NothingIsEmittedAfterAStopUntilReset) {
  StopMatcher matcher({"END"});
  EXPECT_TRUE(matcher.push("abcEN").text == "abc");
  EXPECT_TRUE(matcher.push("Dxyz").stopped);
  const auto after = matcher.push("more");
  EXPECT_EQ(after.text, "");
  EXPECT_TRUE(after.stopped);
  EXPECT_EQ(matcher.flush(), "");
  matcher.reset();
  EXPECT_FALSE(matcher.stopped());
  EXPECT_EQ(matcher.push("again").text, "again");
}

TEST(StopMatcher, Utf8StopStringsHoldWholeCharacters) {
  StopMatcher matcher({"\xE3\x80\x82\n"});  // "。\n"
  // "好。" then "\n": the held tail starts at the lead byte of "。".
  EXPECT_EQ(matcher.push("\xE5\xA5\xBD\xE3\x80\x82").text, "\xE5\xA5\xBD");
  const auto r = matcher.push("\n");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
}

TEST(StopMatcher, RejectsAnEmptyStopString) {
  EXPECT_THROW(StopMatcher({"ok", ""}), Error);
}

}  // namespace
}  // namespace aviary
